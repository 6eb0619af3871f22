/**
 * The status service: where every request of the recovery repo stands, read without changing
 * anything. The ledger says what ran (done, failed, rolled back), the lock table on the remote
 * say what runs now, and the approval gate (the same one execute runs) says whether the rest
 * may run. Any doubt about approvals shows as "approvals unknown", never as approved.
 */
import { posix } from 'node:path'
import { loadRepoConfig } from '../config/repo.js'
import { isNhiError } from '../errors.js'
import { git, runGit } from '../git/git.js'
import { lastFirstParentChanges, readBlobs, sha256 } from '../git/history.js'
import type { ForgeFactory } from '../approvals/forge.js'
import type { AuditEntry } from '../audit/entry.js'
import { parseSource } from '../spec/parse.js'
import { formatProblem, safeText } from '../spec/problems.js'
import { RecoveryRequest } from '../spec/schema.js'
import { specSemanticProblems } from '../spec/semantic.js'
import { SPECS_DIR } from '../spec/validate.js'
import { readLedgerEntries } from './git-ledger.js'
import { readRemoteLocks, type RemoteLock } from './git-locks.js'
import { describeTarget } from './run-request.js'
import type { GateDecision } from './ports.js'

export const REQUEST_STATES = [
  'awaiting-approval',
  'approvals-unknown',
  'approved',
  'executing',
  'done',
  'failed',
  'rolled-back',
  'expired',
  'invalid',
] as const
export type RequestState = (typeof REQUEST_STATES)[number]

export interface RequestStatus {
  /** The request id; for a spec too broken to read, its path. */
  requestId: string
  path: string
  identity?: string
  action?: string
  provider?: string
  target?: string
  expires?: string
  state: RequestState
  /**
   * Why it is in this state, in words: the gate's reasons, the ledger's outcome, the lock
   * holder; for approvals-unknown, why the approvals could not be checked.
   */
  detail: string
  /** The request's lock on the remote, live or left behind by a dead executor. */
  lock?: { holder: string; expires: string; expired: boolean }
  /** The last ledger entry of the request (retirements aside). */
  lastEntry?: { time: string; action: string; outcome: string; reason: string }
}

/** The last change of an identity's credential that succeeded, from the ledger. */
export interface IdentityRotation {
  identity: string
  requestId: string
  action: string
  provider: string
  target: string
  time: string
  versionBefore?: string
  versionAfter?: string
}

export interface StatusResult {
  /** The commit whose specs are shown. */
  commit: string
  branch?: string
  now: string
  requests: RequestStatus[]
  lastRotations: IdentityRotation[]
  /** What status could not read or check; the states above may be incomplete because of it. */
  warnings: string[]
}

export interface StatusOptions {
  cwd: string
  configPath?: string
  now: Date
  /** Makes the GitHub forge when the policy in force uses GitHub; without it such approvals are unknown. */
  forgeFactory?: ForgeFactory
  /** Identities that run execute besides the config's audit signer; they never count as approvers. */
  executors?: string[]
}

interface SpecAtCommit {
  path: string
  sha256: string
  spec?: RecoveryRequest
  problem?: string
  expired: boolean
}

/** Where every request stands. Reads git, the ledger, the remote's locks and the approvals; writes nothing. */
export async function requestStatus(opts: StatusOptions): Promise<StatusResult> {
  const loaded = loadRepoConfig(opts.cwd, opts.configPath)
  const root = loaded.repoRoot
  const warnings: string[] = []
  const commit = await git(root, ['rev-parse', 'HEAD'])
  const branch = (
    await runGit(root, ['symbolic-ref', '--quiet', '--short', 'HEAD'], { allowFail: true })
  ).stdout
    .toString('utf8')
    .trim()
  const remote = (await hasRemote(root, 'origin')) ? 'origin' : '.'
  await warnOffDefaultBranch(root, branch, warnings)
  await warnUncommitted(root, warnings)

  const specs = await specsAt(root, commit, loaded, opts.now)
  const ledger = await readLedgerEntries({
    repoRoot: root,
    auditPath: loaded.config.audit.path,
    remote: remote === '.' ? false : remote,
  })
  if (ledger.remote === 'unreachable') {
    warnings.push(
      `could not read the ledger on ${remote}; done, failed and rolled-back come from this clone only`,
    )
  }
  let locks: Map<string, RemoteLock> | undefined
  try {
    locks = new Map((await readRemoteLocks(root, remote, opts.now)).map((l) => [l.requestId, l]))
  } catch (err) {
    warnings.push(`could not read the request locks on ${remote} (${reason(err)}); executing is not shown`)
  }

  const byRequest = new Map<string, AuditEntry[]>()
  for (const e of ledger.entries) {
    if (e.action === 'retire') continue
    byRequest.set(e.request.id, [...(byRequest.get(e.request.id) ?? []), e])
  }

  const out: RequestStatus[] = []
  const toGate: Array<{ row: RequestStatus; x: SpecAtCommit & { spec: RecoveryRequest } }> = []
  for (const x of specs) {
    const s = x.spec
    const history = s ? (byRequest.get(s.id) ?? []) : []
    const last = history.at(-1)
    const lock = s ? locks?.get(s.id) : undefined
    const row: RequestStatus = {
      requestId: s?.id ?? x.path,
      path: x.path,
      ...(s
        ? {
            identity: s.identity.name,
            action: s.action,
            provider: s.target.provider,
            target: describeTarget(s),
            expires: s.expires,
          }
        : {}),
      state: 'invalid',
      detail: '',
      ...(lock ? { lock: { holder: lock.holder, expires: lock.expires, expired: lock.expired } } : {}),
      ...(last
        ? {
            lastEntry: {
              time: last.time,
              action: last.action,
              outcome: last.outcome.status,
              reason: last.outcome.reason,
            },
          }
        : {}),
    }
    out.push(row)
    // The ledger is the source of truth for what ran; a lock left after the audit changes nothing.
    const terminal = history.find(
      (e) => e.outcome.status === 'succeeded' || e.outcome.status === 'rolled-back',
    )
    if (terminal) {
      row.state = terminal.outcome.status === 'succeeded' ? 'done' : 'rolled-back'
      row.detail = `${terminal.outcome.status} at ${terminal.time}: ${terminal.outcome.reason}`
    } else if (!s) {
      row.detail = x.problem ?? 'the spec cannot be read'
    } else if (x.problem) {
      row.detail = x.problem
    } else if (lock && !lock.expired) {
      row.state = 'executing'
      row.detail = `held by ${lock.holder} until ${lock.expires}`
    } else if (x.expired) {
      row.state = 'expired'
      row.detail = `expired at ${s.expires}; file a new request`
    } else if (last?.outcome.status === 'failed') {
      row.state = 'failed'
      row.detail = `failed at ${last.time}: ${last.outcome.reason}; the next execute tries again`
    } else {
      toGate.push({ row, x: { ...x, spec: s } })
    }
  }

  if (toGate.length > 0) {
    const signer = loaded.config.audit.signer?.principal
    const executors = [...(opts.executors ?? []), ...(signer ? [signer] : [])]
    // One gate run per merge, as the gate itself groups them: a merge whose approvals cannot
    // be checked (GitHub down) leaves the other merges' answers intact.
    const groups = new Map<string, typeof toGate>()
    const merges = await lastFirstParentChanges(
      root,
      commit,
      toGate.map((t) => t.x.path),
    )
    for (const t of toGate) {
      const at = merges.get(t.x.path) ?? ''
      const group = groups.get(at)
      if (group) group.push(t)
      else groups.set(at, [t])
    }
    for (const group of groups.values()) {
      let decisions: Map<string, GateDecision> | undefined
      let failure: string | undefined
      try {
        decisions = await judge(
          root,
          commit,
          opts,
          executors,
          group.map((t) => t.x),
        )
      } catch (err) {
        failure = reason(err)
      }
      for (const { row, x } of group) {
        const d = decisions?.get(x.path)
        if (!d) {
          // Fail closed: without a decision nothing is shown as approved.
          row.state = 'approvals-unknown'
          row.detail = failure ?? 'the approval gate did not judge this spec'
        } else if (d.allowed) {
          row.state = 'approved'
          row.detail = `tier ${d.tier} approvals complete; the next execute runs it`
        } else {
          row.state = 'awaiting-approval'
          row.detail = d.reasons.join('; ') || 'blocked by the approval gate'
        }
      }
    }
  }

  for (const row of out) {
    const lock = row.lock
    if (lock?.expired && row.state !== 'done' && row.state !== 'rolled-back') {
      row.detail += ` (a lock of ${lock.holder} expired at ${lock.expires}; the next execute takes it over)`
    }
  }

  return {
    commit,
    ...(branch ? { branch } : {}),
    now: opts.now.toISOString(),
    requests: out.sort((a, b) => a.requestId.localeCompare(b.requestId)),
    lastRotations: lastRotations(ledger.entries),
    warnings,
  }
}

/** The most recent succeeded change of each identity's credential (retirements are not changes). */
export function lastRotations(entries: readonly AuditEntry[]): IdentityRotation[] {
  const last = new Map<string, IdentityRotation>()
  for (const e of entries) {
    if (e.action === 'retire' || e.outcome.status !== 'succeeded') continue
    const prev = last.get(e.request.identity)
    if (prev && prev.time > e.time) continue
    last.set(e.request.identity, {
      identity: e.request.identity,
      requestId: e.request.id,
      action: e.action,
      provider: e.provider,
      target: e.target,
      time: e.time,
      ...(e.credential.versionBefore ? { versionBefore: e.credential.versionBefore } : {}),
      ...(e.credential.versionAfter ? { versionAfter: e.credential.versionAfter } : {}),
    })
  }
  return [...last.values()].sort((a, b) => a.identity.localeCompare(b.identity))
}

/** The committed specs at `commit`, as execute would find them (hidden and schema folders skipped). */
async function specsAt(
  root: string,
  commit: string,
  loaded: ReturnType<typeof loadRepoConfig>,
  now: Date,
): Promise<SpecAtCommit[]> {
  const r = await runGit(root, ['ls-tree', '-r', '-z', '--full-tree', commit, '--', SPECS_DIR])
  const files: Array<{ path: string; oid: string; mode: string }> = []
  for (const rec of r.stdout.toString('utf8').split('\0')) {
    const m = /^(\d+) blob ([0-9a-f]+)\t(.+)$/s.exec(rec)
    if (m && isRequestPath(m[3]!)) files.push({ mode: m[1]!, oid: m[2]!, path: m[3]! })
  }
  const blobs = await readBlobs(
    root,
    files.filter((f) => f.mode !== '120000').map((f) => f.oid),
  )
  const { limits } = loaded.config
  return files.map((f): SpecAtCommit => {
    const bytes = blobs.get(f.oid) ?? Buffer.alloc(0)
    const base = { path: f.path, sha256: sha256(bytes), expired: false }
    if (f.mode === '120000') return { ...base, problem: 'is a symbolic link in git; execute refuses it' }
    if (bytes.length > limits.maxSpecBytes) {
      return { ...base, problem: `is larger than limits.maxSpecBytes (${limits.maxSpecBytes} bytes)` }
    }
    const parsed = parseSource(RecoveryRequest, bytes.toString('utf8'), f.path, limits)
    if (!parsed.ok) return { ...base, problem: firstProblem(parsed.problems) }
    const problems = specSemanticProblems(parsed.parsed, loaded.config, now)
    const blocking = problems.filter((p) => p.code !== 'REQUEST_EXPIRED')
    return {
      ...base,
      spec: parsed.parsed.value,
      expired: Date.parse(parsed.parsed.value.expires) <= now.getTime(),
      ...(blocking.length > 0 ? { problem: firstProblem(blocking) } : {}),
    }
  })
}

function firstProblem(problems: Parameters<typeof formatProblem>[0][]): string {
  const first = problems[0]
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''
  return first ? `invalid: ${formatProblem(first)}${more}; run "nhi-recover validate"` : 'invalid'
}

/** Spec files as execute collects them: YAML under recovery-specs/, no hidden or schema folders. */
function isRequestPath(path: string): boolean {
  if (!/\.ya?ml$/.test(path)) return false
  const parts = path.split('/')
  if (parts[1] === 'schema') return false
  return (
    !parts.some((p) => p.startsWith('.') || p === 'node_modules') &&
    posix.basename(path) !== 'nhi-recover.yaml'
  )
}

/** The gate execute runs, on specs merged together; throws when approvals cannot be checked. */
async function judge(
  root: string,
  commit: string,
  opts: StatusOptions,
  executors: string[],
  specs: Array<{ path: string; sha256: string; spec: RecoveryRequest }>,
): Promise<Map<string, GateDecision>> {
  const { checkApprovals } = await import('../approvals/gate.js')
  const res = await checkApprovals({
    cwd: root,
    commit,
    paths: specs.map((s) => s.path),
    now: opts.now,
    executors,
    ...(opts.forgeFactory ? { forgeFactory: opts.forgeFactory } : {}),
  })
  const out = new Map<string, GateDecision>()
  for (const x of specs) {
    const s = res.subjects.find((r) => r.subject.path === x.path)
    // As in execute: a decision about other bytes than the committed spec is no decision.
    if (!s || s.sha256 !== x.sha256) continue
    out.set(x.path, {
      allowed: s.allowed,
      tier: s.tier.risk ?? x.spec.identity.risk,
      reasons: s.reasons,
      evidence: [],
    })
  }
  return out
}

async function warnOffDefaultBranch(root: string, branch: string, warnings: string[]): Promise<void> {
  const r = await runGit(root, ['symbolic-ref', '--quiet', '--short', 'refs/remotes/origin/HEAD'], {
    allowFail: true,
  })
  const def = r.stdout
    .toString('utf8')
    .trim()
    .replace(/^origin\//, '')
  if (r.code === 0 && def && branch !== def) {
    warnings.push(
      `HEAD is ${branch ? `on ${safeText(branch)}` : 'detached'}, not on the default branch ${safeText(def)}: specs here may not be merged`,
    )
  }
}

async function warnUncommitted(root: string, warnings: string[]): Promise<void> {
  const r = await runGit(root, ['status', '--porcelain', '--untracked-files=all', '--', SPECS_DIR], {
    allowFail: true,
  })
  const n = r.stdout
    .toString('utf8')
    .split('\n')
    .filter((l) => /\.ya?ml"?$/.test(l)).length
  if (n > 0) warnings.push(`${n} spec file(s) differ from the commit and are shown as committed`)
}

async function hasRemote(cwd: string, name: string): Promise<boolean> {
  const r = await runGit(cwd, ['remote'], { allowFail: true })
  return r.stdout.toString().split('\n').includes(name)
}

function reason(err: unknown): string {
  if (isNhiError(err)) return err.message
  return err instanceof Error ? `unexpected error: ${err.message}` : 'unexpected error'
}
