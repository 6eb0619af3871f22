/**
 * Per-request locks with a lease, kept as git refs (refs/nhi-recover/locks/<request-id>) on
 * the recovery repo's remote. A push with --force-with-lease is a compare-and-swap on the
 * ref, so two executors on different CI runners cannot both hold a request, and no service
 * beyond the git remote is needed. One lock commit per run carries holder and expiry; one
 * atomic push takes every lock of the run. A lock whose lease has expired (its executor
 * died) is taken over and reported.
 */
import { ExternalError } from '../errors.js'
import { git, runGit } from '../git/git.js'
import type { LockLease, Locks } from './ports.js'

const PREFIX = 'refs/nhi-recover/locks/'
const SEEN = 'refs/nhi-recover/seen-locks/'
const ATTEMPTS = 5

export interface LockInfo {
  holder: string
  expires: string
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
  /** The lock commit this run's refs point at; release deletes only refs still pointing there. */
  #leaseCommit: string | undefined

  constructor(opts: GitLocksOptions) {
    this.#o = { now: () => new Date(), ...opts }
  }

  async acquire(
    requestIds: string[],
  ): Promise<{ leases: LockLease[]; held: Array<{ requestId: string; holder: string; expires: string }> }> {
    if (requestIds.length === 0) return { leases: [], held: [] }
    const { cwd, remote } = this.#o
    const expires = new Date(this.#o.now().getTime() + this.#o.leaseMs).toISOString()
    const lockCommit = await this.#lockCommit({ holder: this.#o.holder, expires })

    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const existing = await remoteLockRefs(cwd, remote, new Set(requestIds))
      const infos = await readLockInfos(cwd, remote, existing)
      const now = this.#o.now().getTime()
      const leases: LockLease[] = []
      const held: Array<{ requestId: string; holder: string; expires: string }> = []
      const args: string[] = []
      for (const id of requestIds) {
        const old = existing.get(id)
        const info = old ? infos.get(old) : undefined
        if (old && info && Date.parse(info.expires) > now && info.holder !== this.#o.holder) {
          held.push({ requestId: id, ...info })
          continue
        }
        // No "+" on the refspec: it would force the update and skip the lease check entirely.
        args.push(`--force-with-lease=${PREFIX}${id}:${old ?? ''}`, `${lockCommit}:${PREFIX}${id}`)
        leases.push({
          requestId: id,
          ...(old && info && info.holder !== this.#o.holder
            ? { tookOverFrom: { holder: info.holder, expired: info.expires } }
            : {}),
        })
      }
      if (leases.length === 0) return { leases, held }
      const r = await runGit(cwd, ['push', '--atomic', '--porcelain', '--no-verify', remote, ...args], {
        allowFail: true,
      })
      if (r.code === 0) {
        this.#leaseCommit = lockCommit
        return { leases, held }
      }
      // Another executor moved a lock ref between our read and our push: read again.
    }
    throw new ExternalError(
      'git',
      'LOCK_CONTENDED',
      `Could not take the request locks after ${ATTEMPTS} attempts; another executor keeps changing them.`,
      {
        next: 'Run execute again in a minute.',
      },
    )
  }

  async release(leases: LockLease[]): Promise<void> {
    if (leases.length === 0 || !this.#leaseCommit) return
    const args = leases.flatMap((l) => [
      `--force-with-lease=${PREFIX}${l.requestId}:${this.#leaseCommit}`,
      `:${PREFIX}${l.requestId}`,
    ])
    // A failed release leaves locks that expire on their own; that is reported, never fatal.
    await runGit(this.#o.cwd, ['push', '--atomic', '--porcelain', '--no-verify', this.#o.remote, ...args], {
      allowFail: true,
    })
  }

  async #lockCommit(info: LockInfo): Promise<string> {
    const tree = await git(this.#o.cwd, ['mktree'], { input: '' })
    const env = {
      GIT_AUTHOR_NAME: 'nhi-recover',
      GIT_AUTHOR_EMAIL: 'nhi-recover@localhost',
      GIT_COMMITTER_NAME: 'nhi-recover',
      GIT_COMMITTER_EMAIL: 'nhi-recover@localhost',
    }
    return git(
      this.#o.cwd,
      ['commit-tree', '--no-gpg-sign', tree, '-m', `nhi-recover lock\n\n${JSON.stringify(info)}`],
      { env },
    )
  }
}

/** A lock as it stands on the remote, for `status`: who holds a request and until when. */
export interface RemoteLock extends LockInfo {
  requestId: string
  /** True once the lease passed: the holder died, and the next execute takes the lock over. */
  expired: boolean
}

/** Every request lock on the remote, read-only (it fetches the lock commits it lacks). */
export async function readRemoteLocks(cwd: string, remote: string, now: Date): Promise<RemoteLock[]> {
  const existing = await remoteLockRefs(cwd, remote)
  const infos = await readLockInfos(cwd, remote, existing)
  return [...existing].flatMap(([requestId, oid]) => {
    const info = infos.get(oid)
    return info ? [{ requestId, ...info, expired: Date.parse(info.expires) <= now.getTime() }] : []
  })
}

/** Lock refs on the remote (only `wanted` requests, when given): request id → commit id. */
async function remoteLockRefs(
  cwd: string,
  remote: string,
  wanted?: Set<string>,
): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  const text = await git(cwd, ['ls-remote', remote, `${PREFIX}*`])
  for (const line of text.split('\n')) {
    const [oid, ref] = line.split('\t')
    if (!oid || !ref?.startsWith(PREFIX)) continue
    const id = ref.slice(PREFIX.length)
    if (!wanted || wanted.has(id)) out.set(id, oid)
  }
  return out
}

/** Holder and expiry of each lock commit, fetched from the remote when not present locally. */
async function readLockInfos(
  cwd: string,
  remote: string,
  existing: Map<string, string>,
): Promise<Map<string, LockInfo>> {
  const out = new Map<string, LockInfo>()
  if (existing.size === 0) return out
  if (remote !== '.') {
    const specs = [...existing.keys()].map((id) => `+${PREFIX}${id}:${SEEN}${id}`)
    await runGit(cwd, ['fetch', '--no-tags', '--quiet', remote, ...specs], { allowFail: true })
  }
  for (const oid of new Set(existing.values())) {
    const r = await runGit(cwd, ['cat-file', 'commit', oid], { allowFail: true })
    const body = r.stdout.toString('utf8').split('\n\n').slice(1).join('\n\n')
    const json = body.split('\n').find((l) => l.startsWith('{'))
    try {
      const info = JSON.parse(json ?? '') as LockInfo
      if (typeof info.holder === 'string' && typeof info.expires === 'string') out.set(oid, info)
    } catch {
      // An unreadable lock is treated as held until someone removes it: fail closed.
      out.set(oid, { holder: 'unknown (unreadable lock)', expires: '9999-12-31T00:00:00.000Z' })
    }
  }
  return out
}
