/**
 * verifyLedger: checks the whole audit ledger offline, from a clone and the allowed signers
 * alone. Every entry (hash, signature, signer window), the chain between entries, the git
 * history (only signed audit commits add entries; nothing is ever modified or deleted), and
 * that the chain's tail is the one the newest signed audit commit vouches for.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import {
  parseAllowedSigners,
  verifyWithAllowedSigners,
  type AllowedSigner,
} from '../crypto/allowed-signers.js'
import { fastRawVerify } from '../crypto/ed25519.js'
import { GIT_NAMESPACE } from '../crypto/sshsig.js'
import { BugError, UserError } from '../errors.js'
import { catFileBatch, firstParentChanges, git, parseCommit, resolveCommit, runGit } from '../git/git.js'
import { parseAuditCommitMessage, type AuditCommitInfo } from './commit-message.js'
import type { EntrySummary } from './check-entry.js'
import { rangeFromPath } from './entry.js'
import { isPlaceholder, listEntryFiles, locate, splitLines, type EntryFile } from './read.js'
import { createEntryChecker, defaultWorkers } from './verify-pool.js'

export interface LedgerProblem {
  code: string
  /** Names the entry (and, for history problems, the commit) and says why. */
  message: string
  sequence?: number
  commit?: string
  path?: string
}

export interface Checkpoint {
  sequence: number
  hash: string
  commit: string
  verifiedAt: string
}

export interface VerifyLedgerOptions {
  repoRoot: string
  /** Repo-relative directory of the ledger. */
  auditPath: string
  /** The trusted keys: allowed_signers text and the name to show for it. */
  allowedSigners: { text: string; file: string }
  /** The commit to verify; HEAD by default. */
  rev?: string
  /** Compare with, and after success record, this clone's last verified tail. Default true. */
  checkpoint?: boolean
  /** Worker threads for entry checks; by default chosen from the entry count and cores. */
  workers?: number
  now?: Date
}

export interface VerifyLedgerResult {
  ok: boolean
  commit: string | null
  entries: number
  tail: { sequence: number; hash: string } | null
  auditCommits: number
  /** Problems ordered by entry sequence; the first names the first bad entry. */
  problems: LedgerProblem[]
  problemCount: number
  /** The checkpoint this clone had before this run, if any. */
  checkpoint: Checkpoint | null
  verifier: { backend: string; workers: number }
  elapsedMs: number
}

const MAX_PROBLEMS = 200
const BATCH = 512

/** Verifies the ledger. Never throws for a tampered ledger: the result lists the problems. */
export async function verifyLedger(opts: VerifyLedgerOptions): Promise<VerifyLedgerResult> {
  const started = performance.now()
  const { repoRoot, auditPath } = opts
  const signers = parseAllowedSigners(opts.allowedSigners.text, opts.allowedSigners.file)
  const problems: LedgerProblem[] = []
  const add = (p: LedgerProblem) => problems.push(p)
  let files: EntryFile[] = []
  // Every entry file history ever added, to name entries that are gone from the tree.
  const everAdded: { first: number; last: number; path: string }[] = []
  const at = (seq: number) => {
    const l = locate(files, seq)
    if (l) return `entry ${seq} (${l.path} line ${l.line})`
    const old = locate(everAdded, seq)
    return old ? `entry ${seq} (${old.path} line ${old.line}, no longer in the tree)` : `entry ${seq}`
  }

  const rev = opts.rev ?? 'HEAD'
  // A shallow clone lacks the history that proves nothing was rewritten; refuse rather than guess.
  if ((await git(repoRoot, ['rev-parse', '--is-shallow-repository'])) === 'true')
    throw new UserError(
      'AUDIT_SHALLOW_CLONE',
      'This clone is shallow; verifying the ledger needs its full history.',
      {
        next: 'Run "git fetch --unshallow" (in GitHub Actions, check out with fetch-depth: 0) and verify again.',
      },
    )
  const commit = await resolveCommit(repoRoot, rev)
  // The checkpoint is about the branch this clone follows; an older --rev is not a rewrite.
  const cpFile = opts.checkpoint === false || rev !== 'HEAD' ? undefined : await checkpointFile(repoRoot)
  const previous = cpFile ? readCheckpoint(cpFile) : null
  const backend = fastRawVerify().backend

  if (!commit) {
    if (previous)
      add({
        code: 'HISTORY_REWRITTEN',
        sequence: previous.sequence,
        message: `${at(previous.sequence)} was verified in this clone on ${previous.verifiedAt}, but ${rev} has no commits now: history was rewritten`,
      })
    return finish(null, 0, null, 0, 0)
  }

  // 1. What the commit holds: entry files must cover 1..N, each entry exactly once.
  const listing = await listEntryFiles(repoRoot, auditPath, commit)
  for (const s of listing.strays)
    add({ code: 'UNEXPECTED_FILE', path: s.path, message: `${s.path} ${s.why}` })
  files = listing.files
  let maxSeq = 0
  {
    let expect = 1
    for (const f of files) {
      if (f.first > expect) {
        const range = f.first - 1 === expect ? `entry ${expect} is` : `entries ${expect}..${f.first - 1} are`
        add({
          code: 'ENTRY_MISSING',
          sequence: expect,
          message: `${range} missing: the chain jumps to entry ${f.first}`,
        })
      } else if (f.first < expect)
        add({
          code: 'ENTRY_DUPLICATED',
          sequence: f.first,
          path: f.path,
          message: `${span(f.first, Math.min(f.last, expect - 1), f.path).text} also appear in another entry file`,
        })
      expect = Math.max(expect, f.last + 1)
    }
    maxSeq = expect - 1
  }

  // Worker threads take a moment to load; let them start while git walks the history.
  const checkerStarting = createEntryChecker({
    signersText: opts.allowedSigners.text,
    signersFile: opts.allowedSigners.file,
    workers: opts.workers ?? defaultWorkers(maxSeq),
  })

  const auditCommits: { oid: string; info: AuditCommitInfo }[] = []
  const prefix = `${auditPath}/entries/`
  try {
    // 2. History: only signed audit commits add entries; nothing ever changes or goes away.
    const history = (await firstParentChanges(repoRoot, commit, auditPath)).reverse()
    // Commit objects stream in the walk's order, one at a time: a ledger may have a commit per run.
    const commitObjects = catFileBatch(
      repoRoot,
      history.map((h) => h.oid),
    )[Symbol.asyncIterator]()
    const modified: {
      commit: string
      path: string
      first: number
      last: number
      oldOid: string
      newOid: string
    }[] = []
    try {
      for (const h of history) {
        const next = await commitObjects.next()
        if (next.done || next.value.oid !== h.oid)
          throw new BugError(`git cat-file did not return commit ${h.oid}`)
        const commitData = next.value.data
        const short = h.oid.slice(0, 12)
        const added: { first: number; last: number }[] = []
        for (const c of h.changes) {
          const range = c.path.startsWith(prefix) ? rangeFromPath(c.path.slice(prefix.length)) : undefined
          if (range === undefined) {
            if (c.status !== 'D' && !isPlaceholder(auditPath, c.path, c.newOid))
              add({
                code: 'UNEXPECTED_FILE',
                commit: h.oid,
                path: c.path,
                message: `commit ${short} wrote ${c.path}, which is not an entry file`,
              })
            continue
          }
          const sp = span(range.first, range.last, c.path)
          if (c.status === 'A') {
            added.push(range)
            everAdded.push({ ...range, path: c.path })
          } else if (c.status === 'D')
            add({
              code: 'ENTRY_DELETED',
              sequence: range.first,
              commit: h.oid,
              path: c.path,
              message: `${sp.text} ${sp.was} deleted by commit ${short}`,
            })
          else modified.push({ commit: h.oid, path: c.path, ...range, oldOid: c.oldOid, newOid: c.newOid })
        }
        if (added.length === 0) continue
        added.sort((a, b) => a.first - b.first)
        const first = added[0]!.first
        const last = added[added.length - 1]!.last
        // The files a commit adds must join up into one run of entries.
        const contiguous = added.every((r, k) => k === 0 || r.first === added[k - 1]!.last + 1)
        const what = first === last ? at(first) : `entries ${first}..${last}`
        const c = parseCommit(h.oid, commitData)
        const info = parseAuditCommitMessage(c.message)
        if (!info) {
          add({
            code: 'COMMIT_NOT_AUDIT',
            sequence: first,
            commit: h.oid,
            message: `${what} were added by commit ${short}, which is not an audit commit (no Nhi-Recover-Audit trailers)`,
          })
          continue
        }
        if (info.first !== first || info.last !== last || !contiguous)
          add({
            code: 'COMMIT_RANGE_MISMATCH',
            sequence: first,
            commit: h.oid,
            message: `commit ${short} says it adds entries ${info.first}..${info.last} but adds ${what}${contiguous ? '' : ' with gaps or overlaps'}`,
          })
        if (!c.signature)
          add({
            code: 'COMMIT_UNSIGNED',
            sequence: first,
            commit: h.oid,
            message: `${what} were added by commit ${short}, which is not signed`,
          })
        else {
          const v = verifyWithAllowedSigners(c.payload, c.signature, signers, {
            namespace: GIT_NAMESPACE,
            time: c.committerTime,
            rawVerify: fastRawVerify().verify,
          })
          if (!v.ok)
            add({
              code: 'COMMIT_SIGNATURE_INVALID',
              sequence: first,
              commit: h.oid,
              message: `${what} were added by commit ${short}, whose signature is not valid: ${v.detail}`,
            })
        }
        auditCommits.push({ oid: h.oid, info })
      }
    } finally {
      await commitObjects.return(undefined)
    }

    // A modified file names the first entry whose line changed.
    if (modified.length) {
      const blobs = new Map<string, Buffer>()
      const oids = [...new Set(modified.flatMap((m) => [m.oldOid, m.newOid]))]
      for await (const obj of catFileBatch(repoRoot, oids)) blobs.set(obj.oid, Buffer.from(obj.data))
      for (const m of modified) {
        const before = splitLines(blobs.get(m.oldOid) ?? Buffer.alloc(0)).lines
        const after = splitLines(blobs.get(m.newOid) ?? Buffer.alloc(0)).lines
        let k = 0
        while (k < before.length && k < after.length && before[k]!.equals(after[k]!)) k++
        const seq = Math.min(m.first + k, m.last)
        add({
          code: 'ENTRY_MODIFIED',
          sequence: seq,
          commit: m.commit,
          path: m.path,
          message: `entry ${seq} (${m.path} line ${seq - m.first + 1}) was modified by commit ${m.commit.slice(0, 12)}`,
        })
      }
    }
  } catch (err) {
    // Threads already started must not keep the process alive after a failure.
    void checkerStarting.then((c) => c.close())
    throw err
  }

  // 3. Every entry on its own (in workers), then the chain between them, in order.
  const wanted = new Set(auditCommits.map((a) => a.info.last))
  if (previous) wanted.add(previous.sequence)
  const hashes = new Map<number, string>()
  let prev: EntrySummary | undefined
  let tail: { sequence: number; hash: string } | null = null
  const onSummary = (s: EntrySummary) => {
    if (s.problem)
      add({ code: s.problem.code, sequence: s.seq, message: `${at(s.seq)} ${s.problem.message}` })
    if (s.hash !== undefined && wanted.has(s.seq)) hashes.set(s.seq, s.hash)
    if (s.hash !== undefined) tail = { sequence: s.seq, hash: s.hash }
    if (s.seq === 1 && s.prevHash !== undefined && s.prevHash !== null)
      add({
        code: 'CHAIN_BROKEN',
        sequence: 1,
        message: `${at(1)} has a previous hash, but the first entry must have none`,
      })
    if (
      prev &&
      prev.seq === s.seq - 1 &&
      prev.hash !== undefined &&
      s.prevHash !== undefined &&
      s.prevHash !== prev.hash
    )
      add({
        code: 'CHAIN_BROKEN',
        sequence: s.seq,
        message: `${at(s.seq)} does not follow entry ${prev.seq}: its previous hash ${String(s.prevHash).slice(0, 12)}… is not entry ${prev.seq}'s hash ${prev.hash.slice(0, 12)}…`,
      })
    if (prev && prev.time !== undefined && s.time !== undefined && s.time < prev.time)
      add({
        code: 'TIME_NOT_MONOTONIC',
        sequence: s.seq,
        message: `${at(s.seq)} is dated before entry ${prev.seq}: entries must never go back in time`,
      })
    prev = s
  }
  const checker = await checkerStarting
  try {
    const inFlight: Promise<EntrySummary[]>[] = []
    const maxInFlight = Math.max(2, checker.workers * 3)
    let batch: { seq: number; bytes: Buffer }[] = []
    let i = 0
    for await (const obj of catFileBatch(
      repoRoot,
      files.map((f) => f.oid),
    )) {
      const f = files[i++]!
      const { lines, terminated } = splitLines(obj.data)
      const want = f.last - f.first + 1
      if (!terminated || lines.length !== want)
        add({
          code: 'FILE_MALFORMED',
          sequence: f.first,
          path: f.path,
          message: `${span(f.first, f.last, f.path).text} should be ${want} line(s), each ending in a newline, but the file holds ${lines.length}${terminated ? '' : ' and its last line is cut off'}`,
        })
      for (let n = 0; n < Math.min(want, lines.length); n++) {
        batch.push({ seq: f.first + n, bytes: lines[n]! })
        if (batch.length >= BATCH) {
          inFlight.push(checker.check(batch))
          batch = []
          while (inFlight.length >= maxInFlight) (await inFlight.shift()!).forEach(onSummary)
        }
      }
    }
    if (batch.length) inFlight.push(checker.check(batch))
    for (const p of inFlight) (await p).forEach(onSummary)
  } finally {
    await checker.close()
  }

  // 4. The tail each audit commit vouches for; the newest one must be the chain's tail.
  for (const a of auditCommits) {
    const h = hashes.get(a.info.last)
    if (h !== undefined && h !== a.info.tailHash)
      add({
        code: 'COMMIT_TAIL_MISMATCH',
        sequence: a.info.last,
        commit: a.oid,
        message: `${at(a.info.last)} is not the entry commit ${a.oid.slice(0, 12)} signed for: its hash differs from the commit's Audit-Tail-Hash`,
      })
  }
  const newest = auditCommits[auditCommits.length - 1]
  if (newest && maxSeq < newest.info.last) {
    const from = maxSeq + 1
    add({
      code: 'LEDGER_TRUNCATED',
      sequence: from,
      commit: newest.oid,
      message: `${from === newest.info.last ? at(from) + ' is' : `entries ${from}..${newest.info.last} are`} gone: the newest signed audit commit ${newest.oid.slice(0, 12)} ends the ledger at entry ${newest.info.last}, but it now ends at entry ${maxSeq}`,
    })
  }

  // 5. What this clone verified before must still be there.
  if (previous) {
    const h = hashes.get(previous.sequence)
    if (h !== previous.hash)
      add({
        code: 'HISTORY_REWRITTEN',
        sequence: previous.sequence,
        message: `${at(previous.sequence)} was verified in this clone on ${previous.verifiedAt} (commit ${previous.commit.slice(0, 12)}) but is ${h === undefined ? 'no longer in the ledger' : 'different now'}: history was rewritten (force-pushed)`,
      })
  }

  // 6. Uncommitted edits in the working tree are not part of the ledger; refuse them.
  if (rev === 'HEAD') {
    const st = await runGit(repoRoot, [
      'status',
      '--porcelain=v1',
      '-z',
      '--untracked-files=all',
      '--',
      auditPath,
    ])
    for (const rec of st.stdout.toString('utf8').split('\0')) {
      if (rec.length < 4) continue
      const path = rec.slice(3)
      const range = path.startsWith(prefix) ? rangeFromPath(path.slice(prefix.length)) : undefined
      const sp = range ? span(range.first, range.last, path) : undefined
      add({
        code: 'UNCOMMITTED_CHANGE',
        ...(range ? { sequence: range.first } : {}),
        path,
        message: `${sp ? sp.text : path} ${sp && !sp.one ? 'have' : 'has'} uncommitted changes in the working tree`,
      })
    }
  }

  const result = finish(commit, maxSeq, tail, auditCommits.length, checker.workers)
  if (result.ok && cpFile && tail) {
    const t = tail as { sequence: number; hash: string }
    writeCheckpoint(cpFile, {
      sequence: t.sequence,
      hash: t.hash,
      commit,
      verifiedAt: (opts.now ?? new Date()).toISOString(),
    })
  }
  return result

  function finish(
    c: string | null,
    entries: number,
    t: { sequence: number; hash: string } | null,
    nAudit: number,
    workers: number,
  ): VerifyLedgerResult {
    const sorted = problems.sort(
      (a, b) =>
        (a.sequence ?? Number.MAX_SAFE_INTEGER) - (b.sequence ?? Number.MAX_SAFE_INTEGER) ||
        rank(a.code) - rank(b.code),
    )
    return {
      ok: problems.length === 0,
      commit: c,
      entries,
      tail: t,
      auditCommits: nAudit,
      problems: sorted.slice(0, MAX_PROBLEMS),
      problemCount: problems.length,
      checkpoint: previous,
      verifier: { backend, workers },
      elapsedMs: Math.round(performance.now() - started),
    }
  }
}

/** "entry 2 (path)" or "entries 2..4 (path)", with the verb that agrees. */
function span(first: number, last: number, path: string): { text: string; was: string; one: boolean } {
  const one = first === last
  return {
    text: one ? `entry ${first} (${path})` : `entries ${first}..${last} (${path})`,
    was: one ? 'was' : 'were',
    one,
  }
}

/** For one entry, say first what is wrong with its content, then its chain, then its history. */
function rank(code: string): number {
  if (code === 'CHAIN_BROKEN' || code === 'TIME_NOT_MONOTONIC') return 1
  if (/^(ENTRY_MODIFIED|ENTRY_DELETED|COMMIT_|LEDGER_|HISTORY_|UNCOMMITTED_)/.test(code)) return 2
  return 0
}

/** The clone-local file that remembers the last verified tail. */
async function checkpointFile(repoRoot: string): Promise<string> {
  const dir = await git(repoRoot, ['rev-parse', '--git-dir'])
  return join(isAbsolute(dir) ? dir : join(repoRoot, dir), 'nhi-recover', 'audit-checkpoint.json')
}

function readCheckpoint(file: string): Checkpoint | null {
  if (!existsSync(file)) return null
  try {
    const cp = JSON.parse(readFileSync(file, 'utf8')) as Checkpoint
    return Number.isSafeInteger(cp.sequence) && typeof cp.hash === 'string' ? cp : null
  } catch {
    return null
  }
}

function writeCheckpoint(file: string, cp: Checkpoint): void {
  mkdirSync(join(file, '..'), { recursive: true })
  writeFileSync(file, JSON.stringify(cp, null, 2) + '\n')
}

/** Loads an allowed_signers file; a missing file is a usage error with the next step. */
export function loadAllowedSigners(
  path: string,
  shown: string,
): { text: string; file: string; signers: AllowedSigner[] } {
  if (!existsSync(path)) throw new AllowedSignersMissing(shown)
  const text = readFileSync(path, 'utf8')
  return { text, file: shown, signers: parseAllowedSigners(text, shown) }
}

class AllowedSignersMissing extends UserError {
  constructor(shown: string) {
    super('ALLOWED_SIGNERS_MISSING', `No allowed_signers file at ${shown}.`, {
      next: 'Pass --allowed-signers PATH (a trusted copy of the public keys), or add the executor keys to that file.',
    })
  }
}
