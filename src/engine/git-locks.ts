/**
 * Per-request locks with a lease, kept in one lock table on the recovery repo's remote: the
 * ref refs/nhi-recover/lock-table points at a commit whose locks.json maps each locked request id
 * to its holder and expiry. Every change is one push with --force-with-lease, a
 * compare-and-swap on the whole table, so two executors on different CI runners cannot both
 * hold a request, and no service beyond the git remote is needed. One table (not a ref per
 * request) keeps a run of 1,000 requests at two small pushes: git takes about a second to
 * write 1,000 refs. A lock whose lease has expired (its executor died) is taken over and
 * reported. Each table commit's parent is the one it replaced, so the ref's history says who
 * held what, and when.
 */
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { ExternalError } from '../errors.js'
import { git, runGit } from '../git/git.js'
import type { LockLease, Locks } from './ports.js'

/**
 * Not refs/nhi-recover/locks: earlier versions kept a ref per request under that folder, and
 * git cannot have a ref where a folder of refs is (or the other way round).
 */
export const LOCK_REF = 'refs/nhi-recover/lock-table'
/** Where a clone keeps the table it last fetched from the remote. */
const SEEN = 'refs/nhi-recover/seen-lock-table'
const FILE = 'locks.json'
const FORMAT = 'nhi-recover-locks/v1'
/** Every attempt that loses the compare-and-swap reads the table again; racers on other requests also cost one. */
const ATTEMPTS = 12
/** Entries of dead executors are dropped this long after their lease ended. */
const FORGET_MS = 24 * 60 * 60 * 1000

export interface LockInfo {
  holder: string
  expires: string
}

interface Entry extends LockInfo {
  /** The run that wrote it (one per GitRefLocks), so release removes only its own entries. */
  run: string
}

interface Table {
  format: typeof FORMAT
  locks: Record<string, Entry>
}

export interface GitLocksOptions {
  /** Clone of the recovery repo. */
  cwd: string
  /** Remote that holds the locks; "." (the clone itself) when the repo has no remote. */
  remote: string
  holder: string
  leaseMs: number
  now?: () => Date
}

export class GitRefLocks implements Locks {
  readonly #o: Required<GitLocksOptions>
  readonly #run = randomUUID()

  constructor(opts: GitLocksOptions) {
    this.#o = { now: () => new Date(), ...opts }
  }

  async acquire(
    requestIds: string[],
  ): Promise<{ leases: LockLease[]; held: Array<{ requestId: string; holder: string; expires: string }> }> {
    if (requestIds.length === 0) return { leases: [], held: [] }
    const { holder } = this.#o
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const current = await readTable(this.#o.cwd, this.#o.remote)
      const now = this.#o.now().getTime()
      const expires = new Date(now + this.#o.leaseMs).toISOString()
      const locks = forgetOld(current.table.locks, now)
      const leases: LockLease[] = []
      const held: Array<{ requestId: string; holder: string; expires: string }> = []
      for (const id of new Set(requestIds)) {
        const old = Object.hasOwn(locks, id) ? locks[id] : undefined
        const mine = old?.run === this.#run || old?.holder === holder
        if (old && !mine && Date.parse(old.expires) > now) {
          held.push({ requestId: id, holder: old.holder, expires: old.expires })
          continue
        }
        locks[id] = { holder, expires, run: this.#run }
        leases.push({
          requestId: id,
          ...(old && !mine ? { tookOverFrom: { holder: old.holder, expired: old.expires } } : {}),
        })
      }
      if (leases.length === 0) return { leases, held }
      if (await this.#swap(current.oid, locks, `lock ${leases.length} request(s) for ${holder}`)) {
        return { leases, held }
      }
      // Another executor changed the table between our read and our push: read it again.
      await sleep(10 + Math.random() * 40 * (attempt + 1))
    }
    throw new ExternalError(
      'git',
      'LOCK_CONTENDED',
      `Could not take the request locks after ${ATTEMPTS} attempts; other executors keep changing the lock table.`,
      {
        next: 'Run execute again in a minute.',
      },
    )
  }

  async release(leases: LockLease[]): Promise<void> {
    if (leases.length === 0) return
    const ids = new Set(leases.map((l) => l.requestId))
    // A failed release leaves locks that expire on their own; that is reported, never fatal.
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      let current: Awaited<ReturnType<typeof readTable>>
      try {
        current = await readTable(this.#o.cwd, this.#o.remote)
      } catch {
        return
      }
      const locks = forgetOld(current.table.locks, this.#o.now().getTime())
      let changed = false
      for (const id of ids) {
        if (Object.hasOwn(locks, id) && locks[id]!.run === this.#run) {
          delete locks[id]
          changed = true
        }
      }
      if (!changed) return
      if (await this.#swap(current.oid, locks, `release ${ids.size} request(s) of ${this.#o.holder}`)) return
      await sleep(10 + Math.random() * 40 * (attempt + 1))
    }
  }

  /** Writes the table as a commit on top of `old` and pushes it only if the ref still is `old`. */
  async #swap(old: string | undefined, locks: Record<string, Entry>, subject: string): Promise<boolean> {
    const { cwd, remote } = this.#o
    const table: Table = { format: FORMAT, locks: sortedKeys(locks) }
    const blob = await git(cwd, ['hash-object', '-w', '--stdin'], {
      input: JSON.stringify(table, null, 1) + '\n',
    })
    const tree = await git(cwd, ['mktree'], { input: `100644 blob ${blob}\t${FILE}\n` })
    const commit = await git(
      cwd,
      ['commit-tree', '--no-gpg-sign', tree, ...(old ? ['-p', old] : []), '-m', `nhi-recover: ${subject}`],
      { env: LOCK_AUTHOR },
    )
    if (remote === '.') {
      const r = await runGit(cwd, ['update-ref', LOCK_REF, commit, old ?? ''], { allowFail: true })
      return r.code === 0
    }
    // No "+" on the refspec: the lease is what allows the update, and only while it holds.
    const r = await runGit(
      cwd,
      [
        'push',
        '--porcelain',
        '--no-verify',
        `--force-with-lease=${LOCK_REF}:${old ?? ''}`,
        remote,
        `${commit}:${LOCK_REF}`,
      ],
      { allowFail: true },
    )
    return r.code === 0
  }
}

const LOCK_AUTHOR = {
  GIT_AUTHOR_NAME: 'nhi-recover',
  GIT_AUTHOR_EMAIL: 'nhi-recover@localhost',
  GIT_COMMITTER_NAME: 'nhi-recover',
  GIT_COMMITTER_EMAIL: 'nhi-recover@localhost',
}

/** A lock as it stands on the remote, for `status`: who holds a request and until when. */
export interface RemoteLock extends LockInfo {
  requestId: string
  /** True once the lease passed: the holder died, and the next execute takes the lock over. */
  expired: boolean
}

/** Every request lock on the remote, read-only (it fetches the lock table when it lacks it). */
export async function readRemoteLocks(cwd: string, remote: string, now: Date): Promise<RemoteLock[]> {
  const { table } = await readTable(cwd, remote)
  return Object.entries(table.locks).map(([requestId, e]) => ({
    requestId,
    holder: e.holder,
    expires: e.expires,
    expired: Date.parse(e.expires) <= now.getTime(),
  }))
}

/** The lock table as the remote has it now, with the commit it came from (none: no table yet). */
async function readTable(cwd: string, remote: string): Promise<{ oid: string | undefined; table: Table }> {
  let oid: string | undefined
  let table: Table | undefined
  // A fetch running in this clone at the same time writes loose objects one by one, so the
  // commit can be there before its blob is: try again briefly before calling the table broken.
  for (let attempt = 0; attempt < 4 && !table; attempt++) {
    if (attempt > 0) await sleep(25 * attempt)
    oid = await tableCommit(cwd, remote)
    if (!oid) return { oid, table: { format: FORMAT, locks: Object.create(null) as Record<string, Entry> } }
    const r = await runGit(cwd, ['cat-file', 'blob', `${oid}:${FILE}`], { allowFail: true })
    table = r.code === 0 ? parseTable(r.stdout.toString('utf8')) : undefined
  }
  if (!oid || !table) {
    // Fail closed: a table nobody can read might hold any request.
    throw new ExternalError(
      'git',
      'LOCK_TABLE_UNREADABLE',
      `The lock table ${LOCK_REF} (commit ${oid?.slice(0, 12)}) has no readable ${FILE}; no request can be locked.`,
      {
        next: `Inspect it with "git show ${oid}"; once no executor runs, delete it with "git push ${remote} :${LOCK_REF}".`,
      },
    )
  }
  return { oid, table }
}

/** The table's commit on the remote, present in the clone; undefined when there is no table. */
async function tableCommit(cwd: string, remote: string): Promise<string | undefined> {
  const present = async (oid: string) =>
    (await runGit(cwd, ['cat-file', '-e', `${oid}^{commit}`], { allowFail: true })).code === 0
  if (remote === '.') {
    const r = await runGit(cwd, ['rev-parse', '--verify', '--quiet', `${LOCK_REF}^{commit}`], {
      allowFail: true,
    })
    return r.code === 0 ? r.stdout.toString('utf8').trim() : undefined
  }
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    // ls-remote fails loudly when the remote cannot be reached: no answer is not "no locks".
    const line = await git(cwd, ['ls-remote', remote, LOCK_REF])
    const oid = line
      .split('\n')
      .find((l) => l.endsWith(`\t${LOCK_REF}`))
      ?.split('\t')[0]
    if (!oid || (await present(oid))) return oid
    await runGit(cwd, ['fetch', '--no-tags', '--quiet', remote, `+${LOCK_REF}:${SEEN}`], { allowFail: true })
    if (await present(oid)) return oid
    // The table moved on between ls-remote and fetch (or a racing fetch held the ref): ask again.
  }
  throw new ExternalError(
    'git',
    'LOCK_TABLE_UNAVAILABLE',
    `Could not fetch the lock table ${LOCK_REF} from ${remote}: it kept changing, or the fetch failed.`,
    { next: 'Check that the remote can be fetched from, then run execute again.' },
  )
}

function parseTable(text: string): Table | undefined {
  let t: unknown
  try {
    t = JSON.parse(text)
  } catch {
    return undefined
  }
  if (!t || typeof t !== 'object') return undefined
  const { format, locks } = t as Partial<Table>
  if (format !== FORMAT || !locks || typeof locks !== 'object' || Array.isArray(locks)) return undefined
  const out: Record<string, Entry> = Object.create(null) as Record<string, Entry>
  for (const [id, e] of Object.entries(locks)) {
    if (!e || typeof e.holder !== 'string' || typeof e.expires !== 'string' || typeof e.run !== 'string')
      return undefined
    if (Number.isNaN(Date.parse(e.expires))) return undefined
    out[id] = { holder: e.holder, expires: e.expires, run: e.run }
  }
  return { format, locks: out }
}

/** A copy without the entries whose lease ended more than FORGET_MS ago. */
function forgetOld(locks: Record<string, Entry>, now: number): Record<string, Entry> {
  const out: Record<string, Entry> = Object.create(null) as Record<string, Entry>
  for (const [id, e] of Object.entries(locks)) if (Date.parse(e.expires) + FORGET_MS > now) out[id] = e
  return out
}

function sortedKeys(locks: Record<string, Entry>): Record<string, Entry> {
  return Object.fromEntries(Object.entries(locks).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
}
