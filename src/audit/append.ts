/**
 * appendEntries: the one way entries enter the ledger. It chains and signs the events, writes
 * one file per entry, makes one signed audit commit and pushes it. When the push loses a race
 * it fetches, re-chains (new sequence numbers and previous hashes, signed again) and retries,
 * so two executors never corrupt the ledger. The execution engine calls this once per run.
 */
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs'
import { dirname, isAbsolute, join } from 'node:path'
import { checkSigner, formatAllowedSigner, type AllowedSigner } from '../crypto/allowed-signers.js'
import { fastRawVerify } from '../crypto/ed25519.js'
import { fingerprint } from '../crypto/ssh-keys.js'
import { armor, AUDIT_NAMESPACE, encodeSignature, signedData } from '../crypto/sshsig.js'
import { BugError, CheckFailedError, ExternalError, UserError } from '../errors.js'
import { git, runGit, resolveCommit, parseCommit, gitFailed } from '../git/git.js'
import { detectSecret } from '../spec/inline-secrets.js'
import { scrubSecrets } from '../secret.js'
import { auditCommitMessage, parseAuditCommitMessage } from './commit-message.js'
import {
  AUDIT_API_VERSION,
  AuditEntry,
  AuditEvent,
  SIGNATURE_ALGORITHM,
  bodyOf,
  canonical,
  entryHash,
  batchPath,
  rangeFromPath,
  serializeBatch,
  type EntryBody,
} from './entry.js'
import { splitLines } from './read.js'
import type { AuditSigner } from './signer.js'

export interface AppendOptions {
  repoRoot: string
  /** Repo-relative directory of the ledger (RepoConfig.audit.path). */
  auditPath: string
  events: readonly AuditEvent[]
  signer: AuditSigner
  /** The trusted keys; the signer's key must be allowed now, or nothing is written. */
  allowedSigners: readonly AllowedSigner[]
  /** Remote to push to; default "origin" when it exists. false: commit only. */
  remote?: string | false
  /** Branch to push; default the current branch. */
  branch?: string
  /** Push attempts before giving up; default 5. */
  maxAttempts?: number
  now?: () => Date
  /** Test hook, run after each commit and before its push. */
  beforePush?: (attempt: number) => Promise<void> | void
}

export interface AppendResult {
  commit: string
  /** Every entry in the commit: entries carried over from unpushed audit commits first, then the events'. */
  entries: AuditEntry[]
  carried: number
  pushed: boolean
  attempts: number
}

/** Appends `events` as signed entries in one signed commit, pushed with fetch-re-chain-retry on races. */
export async function appendEntries(opts: AppendOptions): Promise<AppendResult> {
  if (opts.events.length === 0) throw new BugError('appendEntries needs at least one event')
  const events = opts.events.map(checkEvent)
  const { repoRoot, auditPath } = opts
  const now = opts.now ?? (() => new Date())
  const release = await lock(repoRoot)
  try {
    const branch = opts.branch ?? (await currentBranch(repoRoot))
    const remote = await pickRemote(repoRoot, opts.remote)
    await requireCleanAudit(repoRoot, auditPath)
    const publicKey = await opts.signer.publicKey()
    const allowed = checkSigner(opts.allowedSigners, {
      publicKey,
      namespace: AUDIT_NAMESPACE,
      time: now(),
      principal: opts.signer.principal,
    })
    if (!allowed.ok)
      throw new UserError(
        'AUDIT_SIGNER_NOT_ALLOWED',
        `The audit signing key (${opts.signer.kind}, ${fingerprint(publicKey)}) may not sign audit entries now: ${allowed.detail}.`,
        {
          next: `Add this line to the allowed_signers file: ${formatAllowedSigner({ principals: opts.signer.principal, publicKey, namespaces: AUDIT_NAMESPACE })}`,
        },
      )

    const maxAttempts = opts.maxAttempts ?? 5
    let carried: AuditEntry[] = []
    const ours = new Set<string>()
    for (let attempt = 1; ; attempt++) {
      // Our own commit from a lost race is dropped, not carried: its entries are re-made below.
      if (remote) carried.push(...(await syncWithRemote(repoRoot, auditPath, remote, branch, ours)))
      carried = dedupe(carried)
      const pending: { event: AuditEvent; time?: string }[] = [
        ...carried.map((e) => ({ event: eventOf(e), time: e.time })),
        ...events.map((event) => ({ event })),
      ]
      const entries = await chainAndSign(repoRoot, auditPath, pending, opts.signer, now())
      const commit = await commitEntries(repoRoot, auditPath, entries)
      ours.add(commit)
      await opts.beforePush?.(attempt)
      if (!remote) return { commit, entries, carried: carried.length, pushed: false, attempts: attempt }
      const push = await runGit(repoRoot, ['push', '--porcelain', remote, `HEAD:refs/heads/${branch}`], {
        allowFail: true,
      })
      if (push.code === 0)
        return { commit, entries, carried: carried.length, pushed: true, attempts: attempt }
      const out = push.stdout.toString()
      // A lost race: the remote moved between our fetch and our push.
      const rejected =
        /\[rejected\]|\(fetch first\)|non-fast-forward|cannot lock ref|failed to update ref|incorrect old value/.test(
          out + push.stderr,
        )
      // The commit stays local either way; the next run carries its entries over.
      if (!rejected) throw gitFailed(['push'], push)
      if (attempt >= maxAttempts)
        throw new ExternalError(
          'git',
          'AUDIT_PUSH_RACE',
          `The audit commit lost ${attempt} push races on ${remote}/${branch}.`,
          {
            next: 'Run again: the entries are kept in the local audit commit and will be re-chained onto the remote ledger.',
          },
        )
    }
  } finally {
    release()
  }
}

/** Validates an event and keeps secrets out: a live secret value is a bug; a secret-looking reason is withheld. */
function checkEvent(raw: AuditEvent): AuditEvent {
  const parsed = AuditEvent.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new BugError(`audit event is malformed at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`)
  }
  const event = parsed.data
  const text = canonical(event)
  if (scrubSecrets(text) !== text)
    throw new BugError(`audit event for request ${event.request.id} holds a secret value; it was not written`)
  const kind = detectSecret(event.outcome.reason)
  if (kind) event.outcome.reason = `[reason withheld: it looked like it contained ${kind}]`
  return event
}

function dedupe(entries: AuditEntry[]): AuditEntry[] {
  const seen = new Set<string>()
  return entries.filter((e) => !seen.has(e.hash) && seen.add(e.hash))
}

function eventOf(e: AuditEntry): AuditEvent {
  const { request, action, provider, target, credential, outcome, approvals, policy, executor } = e
  return { request, action, provider, target, credential, outcome, approvals, policy, executor }
}

async function currentBranch(repoRoot: string): Promise<string> {
  const r = await runGit(repoRoot, ['symbolic-ref', '--short', '-q', 'HEAD'], { allowFail: true })
  const b = r.stdout.toString().trim()
  if (r.code !== 0 || !b)
    throw new UserError(
      'AUDIT_DETACHED_HEAD',
      'The clone is on a detached HEAD; audit entries go onto a branch.',
      {
        next: 'Check out the default branch of the recovery repo and run again.',
      },
    )
  return b
}

async function pickRemote(repoRoot: string, wanted: string | false | undefined): Promise<string | undefined> {
  if (wanted === false) return undefined
  const remotes = (await git(repoRoot, ['remote'])).split('\n').filter(Boolean)
  if (wanted === undefined) return remotes.includes('origin') ? 'origin' : undefined
  if (!remotes.includes(wanted))
    throw new UserError('AUDIT_NO_REMOTE', `The clone has no remote named ${wanted}.`, {
      next: 'Check the remote name.',
    })
  return wanted
}

async function requireCleanAudit(repoRoot: string, auditPath: string): Promise<void> {
  const st = await git(repoRoot, ['status', '--porcelain', '--untracked-files=all', '--', auditPath])
  if (st)
    throw new UserError(
      'AUDIT_DIRTY',
      `${auditPath}/ has uncommitted changes; the ledger is written only from a clean state.`,
      {
        next: `Inspect them with "git status -- ${auditPath}", then commit or discard them.`,
      },
    )
}

/**
 * Brings the branch to the remote tip. Unpushed audit commits (a lost push race, or a run that
 * could not push) are undone and their entries returned, to be re-chained; any other unpushed
 * commit is refused, because resetting it would lose work.
 */
async function syncWithRemote(
  repoRoot: string,
  auditPath: string,
  remote: string,
  branch: string,
  drop: ReadonlySet<string>,
): Promise<AuditEntry[]> {
  const fetch = await runGit(
    repoRoot,
    ['fetch', '-q', remote, `+refs/heads/${branch}:refs/remotes/${remote}/${branch}`],
    {
      allowFail: true,
    },
  )
  if (fetch.code !== 0 && !/couldn't find remote ref/i.test(fetch.stderr)) throw gitFailed(['fetch'], fetch)
  const remoteTip =
    fetch.code === 0 ? await resolveCommit(repoRoot, `refs/remotes/${remote}/${branch}`) : undefined
  const local = await resolveCommit(repoRoot, 'HEAD')
  if (!remoteTip) return []
  if (!local) {
    await git(repoRoot, ['checkout', '-q', '-B', branch, remoteTip])
    return []
  }
  const ahead = (await git(repoRoot, ['rev-list', '--reverse', `${remoteTip}..HEAD`]))
    .split('\n')
    .filter(Boolean)
  const carried: AuditEntry[] = []
  for (const oid of ahead) {
    if (drop.has(oid)) continue
    const c = parseCommit(oid, (await runGit(repoRoot, ['cat-file', 'commit', oid])).stdout)
    const info = parseAuditCommitMessage(c.message)
    const files = (
      await git(repoRoot, ['diff-tree', '--no-commit-id', '--name-status', '-r', '--no-renames', oid])
    )
      .split('\n')
      .filter(Boolean)
    const onlyAdds = files.every((l) => l.startsWith('A\t') && l.slice(2).startsWith(`${auditPath}/entries/`))
    if (!info || !onlyAdds || c.parents.length !== 1)
      throw new UserError(
        'AUDIT_UNPUSHED_COMMITS',
        `The branch ${branch} has unpushed commit ${oid.slice(0, 12)} that is not an audit commit; the ledger is written only on top of ${remote}/${branch}.`,
        { next: `Push or drop the unpushed commits (git log ${remote}/${branch}..HEAD), then run again.` },
      )
    for (const line of files) {
      const path = line.slice(2)
      const blob = (await runGit(repoRoot, ['cat-file', 'blob', `${oid}:${path}`])).stdout
      for (const text of splitLines(blob).lines) {
        const entry = AuditEntry.safeParse(parseJson(text.toString('utf8')))
        if (!entry.success || entryHash(bodyOf(entry.data)) !== entry.data.hash)
          throw new CheckFailedError(
            'AUDIT_UNPUSHED_DAMAGED',
            `The unpushed audit commit ${oid.slice(0, 12)} holds a damaged entry (${path}).`,
            {
              next: 'Inspect the commit; if it is not yours, reset the branch to the remote.',
            },
          )
        carried.push(entry.data)
      }
    }
  }
  carried.sort((a, b) => a.sequence - b.sequence)
  // --keep refuses rather than overwrites any local change in the files it must touch.
  await git(repoRoot, ['reset', '-q', '--keep', remoteTip])
  return carried
}

interface Tail {
  sequence: number
  hash: string
  time: string
}

/** The last entry of the committed ledger, checked for integrity; null for an empty ledger. */
async function readTail(repoRoot: string, auditPath: string): Promise<Tail | null> {
  if (!(await resolveCommit(repoRoot, 'HEAD'))) return null
  const names = async (p: string) =>
    (await git(repoRoot, ['ls-tree', '--name-only', 'HEAD', `${p}/`])).split('\n').filter(Boolean).sort()
  const dirs = (await names(`${auditPath}/entries`)).filter((d) => /\/\d{7}$/.test(d))
  const lastDir = dirs[dirs.length - 1]
  if (!lastDir) return null
  // Zero-padded names sort by their first entry; the newest file holds the tail.
  const files = (await names(lastDir)).filter((f) => /\/\d{10}-\d{10}\.jsonl$/.test(f))
  const path = files[files.length - 1]
  const range = path ? rangeFromPath(path.slice(`${auditPath}/entries/`.length)) : undefined
  const damaged = (why: string) =>
    new CheckFailedError(
      'AUDIT_TAIL_DAMAGED',
      `The last audit entry (${path ?? lastDir}) ${why}; nothing was appended.`,
      {
        next: 'Run "nhi-recover audit verify" to find out what happened to the ledger.',
      },
    )
  if (!path || range === undefined) throw damaged('is missing or misnamed')
  const blob = (await runGit(repoRoot, ['cat-file', 'blob', `HEAD:${path}`])).stdout
  const { lines, terminated } = splitLines(blob)
  if (!terminated || lines.length !== range.last - range.first + 1)
    throw damaged('file does not hold the entries its name says')
  const parsed = AuditEntry.safeParse(parseJson(lines[lines.length - 1]!.toString('utf8')))
  if (
    !parsed.success ||
    parsed.data.sequence !== range.last ||
    entryHash(bodyOf(parsed.data)) !== parsed.data.hash
  )
    throw damaged('does not match its hash or its file name')
  return { sequence: range.last, hash: parsed.data.hash, time: parsed.data.time }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return undefined
  }
}

/** Numbers, chains and signs entries after the current tail. */
async function chainAndSign(
  repoRoot: string,
  auditPath: string,
  pending: readonly { event: AuditEvent; time?: string }[],
  signer: AuditSigner,
  now: Date,
): Promise<AuditEntry[]> {
  const tail = await readTail(repoRoot, auditPath)
  let seq = tail?.sequence ?? 0
  let prevHash = tail?.hash ?? null
  let floor = tail ? Date.parse(tail.time) : 0
  const bodies: (EntryBody & { hash: string })[] = []
  for (const p of pending) {
    // Entries never go back in time; that is what makes a retired key useless for new entries.
    const t = Math.max(p.time ? Date.parse(p.time) : now.getTime(), floor)
    floor = t
    const body: EntryBody = {
      apiVersion: AUDIT_API_VERSION,
      sequence: ++seq,
      time: new Date(t).toISOString(),
      ...p.event,
      prevHash,
    }
    const hash = entryHash(body)
    bodies.push({ ...body, hash })
    prevHash = hash
  }
  const publicKey = await signer.publicKey()
  const data = bodies.map((b) => signedData(b.hash, AUDIT_NAMESPACE, 'sha512'))
  const sigs = await signer.signRaw(data)
  const { verify } = fastRawVerify()
  const keyId = fingerprint(publicKey)
  return bodies.map((b, i) => {
    const raw = sigs[i]
    // A signer that returns a bad signature must never produce an entry.
    if (!raw || raw.length !== 64 || !verify(publicKey, data[i]!, raw))
      throw new ExternalError(
        signer.kind,
        'AUDIT_SIGNER_BROKEN',
        `The ${signer.kind} signer returned a signature that does not verify.`,
        {
          next: 'Check that the signer key matches its public key in allowed_signers.',
        },
      )
    const value = armor(
      encodeSignature({
        publicKey,
        namespace: AUDIT_NAMESPACE,
        hashAlgorithm: 'sha512',
        algorithm: 'ssh-ed25519',
        signature: raw,
      }),
    )
    return AuditEntry.parse({
      ...b,
      signature: { algorithm: SIGNATURE_ALGORITHM, keyId, principal: signer.principal, value },
    })
  })
}

/** Writes the entries' one file and makes one signed commit of exactly it. */
async function commitEntries(
  repoRoot: string,
  auditPath: string,
  entries: readonly AuditEntry[],
): Promise<string> {
  const path = batchPath(auditPath, entries[0]!.sequence, entries[entries.length - 1]!.sequence)
  const abs = join(repoRoot, path)
  mkdirSync(dirname(abs), { recursive: true })
  writeFileSync(abs, serializeBatch(entries), { flag: 'wx' })
  const undo = async () => {
    await runGit(repoRoot, ['reset', '-q', '--', path], { allowFail: true })
    rmSync(abs, { force: true })
  }
  try {
    await runGit(repoRoot, ['add', '--', path])
    const r = await runGit(repoRoot, ['commit', '-q', '-S', '--no-verify', '-F', '-', '--', path], {
      input: auditCommitMessage(entries),
      allowFail: true,
    })
    if (r.code !== 0)
      throw new UserError(
        'AUDIT_COMMIT_UNSIGNED',
        `Could not make the signed audit commit: ${r.stderr.trim().split('\n').pop()}`,
        {
          next: 'Configure SSH commit signing in this clone: git config gpg.format ssh; git config user.signingkey KEYFILE.',
        },
      )
  } catch (err) {
    await undo()
    throw err
  }
  return git(repoRoot, ['rev-parse', 'HEAD'])
}

/** A per-clone lock so two processes in the same clone never interleave writes. */
async function lock(repoRoot: string): Promise<() => void> {
  const dir = await git(repoRoot, ['rev-parse', '--git-dir'])
  const file = join(isAbsolute(dir) ? dir : join(repoRoot, dir), 'nhi-recover', 'audit-append.lock')
  mkdirSync(dirname(file), { recursive: true })
  for (let tries = 0; tries < 2; tries++) {
    try {
      const fd = openSync(file, 'wx')
      writeSync(fd, String(process.pid))
      closeSync(fd)
      return () => rmSync(file, { force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number(existsSync(file) ? readFileSync(file, 'utf8') : NaN)
      if (Number.isInteger(pid) && pid > 0 && alive(pid))
        throw new UserError(
          'AUDIT_BUSY',
          `Another nhi-recover process (pid ${pid}) is appending to the ledger in this clone.`,
          {
            next: 'Wait for it to finish and run again.',
          },
        )
      rmSync(file, { force: true }) // left behind by a process that died
    }
  }
  throw new UserError('AUDIT_BUSY', 'Could not take the audit lock in this clone.', { next: 'Run again.' })
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
