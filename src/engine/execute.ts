/**
 * The execute service: runs every approved, not yet executed request of a recovery repo at
 * one commit. Everything that can refuse runs before anything changes: specs are checked
 * against the exact committed bytes, the approval gate runs again, locks are taken; then
 * each request rotates through its provider, and one signed audit commit records the run.
 */
import pLimit from 'p-limit'
import { CheckFailedError, UserError } from '../errors.js'
import { loadRepoConfig, displayPath } from '../config/repo.js'
import { collectSpecFiles, validateSpecFile } from '../spec/validate.js'
import { git } from '../git/git.js'
import { formatProblem } from '../spec/problems.js'
import { planExecution, type Retirement } from './plan.js'
import { describeTarget, failureReason, runRequest, type HttpCheck, type Step } from './run-request.js'
import type {
  ApprovalGate,
  AuditDraft,
  ExecutableSpec,
  Ledger,
  LedgerRecord,
  Locks,
  Outcome,
  SecretStores,
} from './ports.js'
import type { Secret } from '../secret.js'
import type { CrashHook } from './test-hooks.js'
import { relative } from 'node:path'
import { parseDuration } from '../time.js'

export interface ExecuteOptions {
  cwd: string
  configPath?: string
  /** The commit whose specs run; must be checked out. Defaults to HEAD. */
  commit?: string
  concurrency: number
  now: () => Date
  dryRun: boolean
  /** Run only these request ids (and no retirements); for `rollback`. */
  only?: string[]
}

export interface ExecuteDeps {
  gate: ApprovalGate
  ledger: Ledger
  locks: Locks
  stores: SecretStores
  crash: CrashHook
  httpCheck?: (check: HttpCheck, credential: Secret) => Promise<void>
  onEvent?: (event: ExecuteEvent) => void
}

export type ExecuteEvent =
  | { type: 'planned'; run: number; skipped: number; retire: number }
  | { type: 'step'; requestId: string; step: Step | 'gate' | 'lock'; detail: string }
  | { type: 'done'; requestId: string; outcome: Outcome | 'skipped' | 'held'; reason: string }

export interface RequestReport {
  requestId: string
  path: string
  provider: string
  target: string
  action: string
  outcome: Outcome | 'skipped' | 'held'
  reason: string
  versionBefore?: string
  versionAfter?: string
  retireAfter?: string
}

export interface ExecuteResult {
  commit: string
  dryRun: boolean
  requests: RequestReport[]
  retired: Array<{ requestId: string; target: string; versionId: string; outcome: Outcome; reason: string }>
  locksTakenOver: Array<{ requestId: string; holder: string; expired: string }>
  audit: { commit?: string; entries: number }
}

export async function executeRequests(opts: ExecuteOptions, deps: ExecuteDeps): Promise<ExecuteResult> {
  const emit = deps.onEvent ?? (() => {})
  const loaded = loadRepoConfig(opts.cwd, opts.configPath)
  // The ledger is read (git processes) while the specs are checked (this thread): both are
  // needed before anything is decided, and neither changes anything.
  const [{ specs, commit }, records] = await Promise.all([
    loadExecutableSpecs(opts, loaded),
    deps.ledger.records(),
  ])
  const only = opts.only ? new Set(opts.only) : undefined
  const plan = planExecution(
    only ? specs.filter((x) => only.has(x.spec.id)) : specs,
    withRetention(records, specs),
    opts.now(),
  )
  if (only) plan.retire = []
  emit({ type: 'planned', run: plan.run.length, skipped: plan.skip.length, retire: plan.retire.length })

  const reports: RequestReport[] = []
  const drafts: AuditDraft[] = []
  const report = (
    x: ExecutableSpec,
    r: Omit<RequestReport, 'requestId' | 'path' | 'provider' | 'target' | 'action'>,
  ) => {
    reports.push({
      requestId: x.spec.id,
      path: x.path,
      provider: x.spec.target.provider,
      target: describeTarget(x.spec),
      action: x.spec.action,
      ...r,
    })
    emit({ type: 'done', requestId: x.spec.id, outcome: r.outcome, reason: r.reason })
  }
  const draft = (
    x: ExecutableSpec,
    d: Pick<AuditDraft, 'outcome' | 'reason'> &
      Partial<Pick<AuditDraft, 'versionBefore' | 'versionAfter' | 'retireAfter' | 'approvals' | 'tier'>>,
  ): AuditDraft => ({
    requestId: x.spec.id,
    identity: x.spec.identity.name,
    specPath: x.path,
    specSha256: x.sha256,
    action: x.spec.action,
    provider: x.spec.target.provider,
    target: describeTarget(x.spec),
    approvals: [],
    ...d,
  })

  for (const s of plan.skip) {
    report(s.spec, { outcome: s.audit ? 'refused' : 'skipped', reason: s.reason })
    if (s.audit) drafts.push(draft(s.spec, { outcome: 'refused', reason: s.reason }))
  }

  // The gate runs again here, on the exact blobs that will execute; any doubt blocks.
  const limit = pLimit(Math.max(1, opts.concurrency))
  if (deps.gate.prepare && plan.run.length > 1) {
    // Batched judging; any failure in it is raised again, per spec, by evaluate below.
    await deps.gate.prepare(plan.run).catch(() => {})
  }
  const decisions = await Promise.all(
    plan.run.map((x) =>
      limit(async () => {
        try {
          const d = await deps.gate.evaluate(x)
          emit({
            type: 'step',
            requestId: x.spec.id,
            step: 'gate',
            detail: d.allowed ? `approved (tier ${d.tier})` : 'blocked',
          })
          return { x, d }
        } catch (err) {
          return {
            x,
            d: {
              allowed: false,
              tier: x.spec.identity.risk,
              reasons: [`approvals could not be checked: ${failureReason(err)}`],
              evidence: [],
            },
          }
        }
      }),
    ),
  )
  const approved: Array<{ x: ExecutableSpec; evidence: AuditDraft['approvals']; tier: AuditDraft['tier'] }> =
    []
  for (const { x, d } of decisions) {
    if (d.allowed) approved.push({ x, evidence: d.evidence, tier: d.tier })
    else {
      const reason = `blocked by the approval gate: ${d.reasons.join('; ')}`
      report(x, { outcome: 'refused', reason })
      drafts.push(draft(x, { outcome: 'refused', reason, tier: d.tier }))
    }
  }

  const locksTakenOver: ExecuteResult['locksTakenOver'] = []
  const leases = opts.dryRun ? approved.map((a) => ({ requestId: a.x.spec.id })) : []
  if (!opts.dryRun && approved.length > 0) {
    const got = await deps.locks.acquire(approved.map((a) => a.x.spec.id))
    leases.push(...got.leases)
    for (const l of got.leases)
      if (l.tookOverFrom) locksTakenOver.push({ requestId: l.requestId, ...l.tookOverFrom })
    for (const h of got.held) {
      const a = approved.find((p) => p.x.spec.id === h.requestId)!
      report(a.x, {
        outcome: 'held',
        reason: `another executor (${h.holder}) holds this request until ${h.expires}`,
      })
    }
  }
  const leased = new Set(leases.map((l) => l.requestId))
  if (!opts.dryRun && leased.size > 0) {
    // Another executor may have finished a request between our plan and our lock: read the
    // ledger again, now that nobody else can run these requests, and skip what is done.
    const fresh = planExecution(
      approved.filter((a) => leased.has(a.x.spec.id)).map((a) => a.x),
      await deps.ledger.records(),
      opts.now(),
    )
    for (const s of fresh.skip) {
      leased.delete(s.spec.spec.id)
      report(s.spec, { outcome: 'skipped', reason: s.reason })
    }
  }

  try {
    await Promise.all(
      approved
        .filter((a) => leased.has(a.x.spec.id))
        .map(({ x, evidence, tier }) =>
          limit(async () => {
            deps.crash('after-lock', x.spec.id)
            try {
              const store = await deps.stores.get(x.spec.target.provider)
              const rollbackOf = x.spec.rollbackOf ? lastSucceeded(records, x.spec.rollbackOf) : undefined
              const r = await runRequest(x, {
                store,
                now: opts.now,
                crash: deps.crash,
                onStep: (requestId, step, detail) => emit({ type: 'step', requestId, step, detail }),
                ...(deps.httpCheck ? { httpCheck: deps.httpCheck } : {}),
                ...(rollbackOf ? { rollbackOf } : {}),
              })
              const { resumed: _resumed, retired, ...fields } = r
              report(x, fields)
              drafts.push(draft(x, { ...fields, approvals: evidence, tier }))
              // A retirement done at once is audited as its own entry, like a scheduled one.
              if (retired)
                drafts.push({
                  ...draft(x, { outcome: 'succeeded', reason: retireReason(x), versionBefore: retired }),
                  action: 'retire',
                })
            } catch (err) {
              const reason = failureReason(err)
              report(x, { outcome: 'failed', reason })
              drafts.push(draft(x, { outcome: 'failed', reason, approvals: evidence, tier }))
            }
          }),
        ),
    )

    const retired = await retireDue(plan.retire, specs, deps, opts, drafts, limit)
    deps.crash('before-audit')
    const audit = opts.dryRun ? { entries: drafts.length } : await deps.ledger.append(drafts)
    deps.crash('after-audit')
    return { commit, dryRun: opts.dryRun, requests: reports, retired, locksTakenOver, audit }
  } finally {
    if (!opts.dryRun) await deps.locks.release(leases)
  }
}

async function retireDue(
  due: Retirement[],
  specs: ExecutableSpec[],
  deps: ExecuteDeps,
  opts: ExecuteOptions,
  drafts: AuditDraft[],
  limit: ReturnType<typeof pLimit>,
): Promise<ExecuteResult['retired']> {
  const out: ExecuteResult['retired'] = []
  await Promise.all(
    due.map((r) =>
      limit(async () => {
        const x = specs.find((s) => s.spec.id === r.record.requestId)
        if (!x) return // The spec was removed from the repo; its target can no longer be resolved.
        let outcome: Outcome = 'succeeded'
        let reason = `retention of ${x.spec.rotation.retainPrevious} passed`
        if (!opts.dryRun) {
          try {
            const store = await deps.stores.get(x.spec.target.provider)
            await store.retire(x.spec.target, { requestId: x.spec.id, versionId: r.versionId })
            deps.onEvent?.({
              type: 'step',
              requestId: x.spec.id,
              step: 'retire',
              detail: `version ${r.versionId} retired`,
            })
          } catch (err) {
            outcome = 'failed'
            reason = failureReason(err)
          }
        }
        out.push({
          requestId: x.spec.id,
          target: describeTarget(x.spec),
          versionId: r.versionId,
          outcome,
          reason,
        })
        drafts.push({
          requestId: x.spec.id,
          identity: x.spec.identity.name,
          specPath: x.path,
          specSha256: x.sha256,
          action: 'retire',
          provider: x.spec.target.provider,
          target: describeTarget(x.spec),
          versionBefore: r.versionId,
          outcome,
          reason,
          approvals: [],
        })
      }),
    ),
  )
  return out
}

function retireReason(x: ExecutableSpec): string {
  return x.spec.action === 'revoke'
    ? 'revoked: the old credential is destroyed at once'
    : `retention of ${x.spec.rotation.retainPrevious} passed`
}

/** The ledger does not store retention; it comes from the spec, counted from the rotation's entry time. */
function withRetention(records: LedgerRecord[], specs: ExecutableSpec[]): LedgerRecord[] {
  const retain = new Map(
    specs.map((x) => [x.spec.id, x.spec.action === 'revoke' ? undefined : x.spec.rotation.retainPrevious]),
  )
  return records.map((r) => {
    const keep = retain.get(r.requestId)
    if (
      r.retireAfter ||
      !keep ||
      r.outcome !== 'succeeded' ||
      r.action === 'retire' ||
      r.action === 'rollback'
    )
      return r
    return { ...r, retireAfter: new Date(Date.parse(r.time) + parseDuration(keep)).toISOString() }
  })
}

function lastSucceeded(records: LedgerRecord[], requestId: string): LedgerRecord | undefined {
  return records
    .filter((r) => r.requestId === requestId && r.outcome === 'succeeded' && r.action !== 'retire')
    .at(-1)
}

/**
 * The specs exactly as committed: the commit must be checked out and the spec files and
 * config unmodified, so that what is validated here is byte for byte what was approved.
 */
async function loadExecutableSpecs(
  opts: ExecuteOptions,
  loaded: ReturnType<typeof loadRepoConfig>,
): Promise<{ specs: ExecutableSpec[]; commit: string }> {
  const root = loaded.repoRoot
  const head = await git(root, ['rev-parse', 'HEAD'])
  const commit = opts.commit ? await git(root, ['rev-parse', '--verify', `${opts.commit}^{commit}`]) : head
  if (commit !== head) {
    throw new UserError(
      'COMMIT_NOT_CHECKED_OUT',
      `Commit ${commit.slice(0, 12)} is not checked out (HEAD is ${head.slice(0, 12)}).`,
      {
        next: `Run "git checkout ${commit}" first, so the specs on disk are the ones that run.`,
      },
    )
  }
  const configRel = relative(root, loaded.absPath)
  const dirty = await git(root, [
    'status',
    '--porcelain',
    '--untracked-files=all',
    '--',
    'recovery-specs',
    configRel,
  ])
  if (dirty) {
    throw new UserError(
      'WORKTREE_DIRTY',
      `The recovery specs or the config differ from commit ${commit.slice(0, 12)}:\n${dirty}`,
      {
        next: 'Execute runs only committed specs: commit or discard these changes.',
      },
    )
  }
  const blobs = new Map<string, string>()
  const tree = await git(root, ['ls-tree', '-r', '--full-tree', commit, '--', 'recovery-specs'])
  for (const line of tree.split('\n')) {
    const m = /^(\d+) blob ([0-9a-f]+)\t(.+)$/.exec(line)
    if (m) blobs.set(m[3]!, m[1] === '120000' ? 'symlink' : m[2]!)
  }

  const specs: ExecutableSpec[] = []
  const problems: string[] = []
  for (const abs of collectSpecFiles(root, root, [])) {
    const rel = relative(root, abs)
    const blob = blobs.get(rel)
    if (!blob || blob === 'symlink') {
      problems.push(
        `${rel}: ${blob ? 'is a symbolic link in git' : 'is not committed (ignored or untracked)'}; refusing to run it`,
      )
      continue
    }
    const checked = validateSpecFile(abs, displayPath(opts.cwd, abs), loaded, opts.now())
    // Expiry is the planner's decision (it audits the refusal); every other problem stops the run.
    const blocking = checked.problems.filter((p) => p.code !== 'REQUEST_EXPIRED')
    if (!checked.parsed || blocking.length > 0) {
      problems.push(...blocking.map(formatProblem))
      continue
    }
    specs.push({ spec: checked.parsed.value, path: rel, sha256: checked.parsed.yaml.sha256, blob })
  }
  if (problems.length > 0) {
    throw new CheckFailedError(
      'SPEC_INVALID',
      `Refusing to execute: ${problems.length} problem(s) in the committed specs:\n${problems.map((p) => `  ${p}`).join('\n')}`,
      {
        next: 'Fix the specs in a new pull request; nothing was executed.',
      },
    )
  }
  return { specs, commit }
}

/** True when every request that ran, ran to success. */
export function allSucceeded(result: ExecuteResult): boolean {
  return (
    result.requests.every(
      (r) => r.outcome === 'succeeded' || r.outcome === 'skipped' || r.outcome === 'held',
    ) && result.retired.every((r) => r.outcome === 'succeeded')
  )
}
