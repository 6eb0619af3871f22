/**
 * History questions the approval gate asks of a local clone: the content of a path at many
 * commits at once, who changed a path in a range, what a range changed, and the commits that
 * separate a merge from its base. Built on the plumbing in git.ts.
 */
import { createHash } from 'node:crypto'
import { catFileBatch, git, resolveCommit, runGit } from './git.js'

/** One commit with the people on it. */
export interface CommitPeople {
  oid: string
  parents: string[]
  author: { name: string; email: string; date: string }
  committer: { name: string; email: string; date: string }
  subject: string
}

/** The blob id of each commit:path, or null where the path is absent (or the commit is unknown). */
export async function blobIdsAt(
  cwd: string,
  queries: { commit: string; path: string }[],
): Promise<(string | null)[]> {
  if (queries.length === 0) return []
  const input = queries.map((q) => `${q.commit}:${q.path}\n`).join('')
  const out = (await runGit(cwd, ['cat-file', '--batch-check=%(objectname) %(objecttype)'], { input })).stdout
    .toString('utf8')
    .split('\n')
  return queries.map((_q, i) => {
    const [oid, type] = (out[i] ?? '').split(' ')
    return type === 'blob' && oid ? oid : null
  })
}

/** The contents of the given blobs, read through one git process. */
export async function readBlobs(cwd: string, oids: Iterable<string>): Promise<Map<string, Buffer>> {
  const unique = [...new Set(oids)]
  const out = new Map<string, Buffer>()
  if (unique.length === 0) return out
  for await (const o of catFileBatch(cwd, unique)) out.set(o.oid, Buffer.from(o.data))
  return out
}

/** The content of `path` at `commit`, or undefined when it does not exist there. */
export async function readFileAt(cwd: string, commit: string, path: string): Promise<Buffer | undefined> {
  const [oid] = await blobIdsAt(cwd, [{ commit, path }])
  if (!oid) return undefined
  return (await readBlobs(cwd, [oid])).get(oid)
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex')
}

/** sha256 of each blob's content, keyed by blob id. */
export async function blobSha256s(cwd: string, oids: Iterable<string>): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const [oid, data] of await readBlobs(cwd, oids)) out.set(oid, sha256(data))
  return out
}

export async function commitExists(cwd: string, sha: string): Promise<boolean> {
  return (await resolveCommit(cwd, sha)) !== undefined
}

export async function mergeBase(cwd: string, a: string, b: string): Promise<string | undefined> {
  const r = await runGit(cwd, ['merge-base', a, b], { allowFail: true })
  return r.code === 0 ? r.stdout.toString().trim() : undefined
}

/** Commits reachable from `to` but not from `from` (all of them when `from` is undefined), oldest first. */
export async function commitsBetween(
  cwd: string,
  from: string | undefined,
  to: string,
  extra: string[] = [],
): Promise<CommitPeople[]> {
  const range = from ? [`${from}..${to}`] : [to]
  const r = await runGit(cwd, [
    'log',
    '-z',
    ...extra,
    '--reverse',
    '--format=%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%cn%x1f%ce%x1f%cI%x1f%s',
    ...range,
    '--',
  ])
  return r.stdout
    .toString('utf8')
    .split('\0')
    .map((s) => s.replace(/^\n/, ''))
    .filter(Boolean)
    .map((line) => {
      const [oid, parents, an, ae, ad, cn, ce, cd, subject] = line.split('\x1f')
      return {
        oid: oid!,
        parents: (parents ?? '').split(' ').filter(Boolean),
        author: { name: an ?? '', email: ae ?? '', date: ad ?? '' },
        committer: { name: cn ?? '', email: ce ?? '', date: cd ?? '' },
        subject: subject ?? '',
      }
    })
}

/**
 * The commits in from..to that changed `path`. A commit changed it when the path's content
 * differs from its parent's; a merge only when it differs from every parent, because a merge
 * that takes one side unchanged wrote nothing of its own.
 */
export async function commitsChanging(
  cwd: string,
  from: string | undefined,
  to: string,
  path: string,
): Promise<CommitPeople[]> {
  const commits = await commitsBetween(cwd, from, to)
  const queries = commits.flatMap((c) => [c.oid, ...c.parents].map((commit) => ({ commit, path })))
  const blobs = await blobIdsAt(cwd, queries)
  const out: CommitPeople[] = []
  let i = 0
  for (const c of commits) {
    const mine = blobs[i++]
    const theirs = c.parents.map(() => blobs[i++])
    const changed = theirs.length === 0 ? mine !== null : theirs.every((p) => p !== mine)
    if (changed) out.push(c)
  }
  return out
}

/** Paths that differ between two commits, with git's status letter (A, M, D, T). */
export async function changedPaths(
  cwd: string,
  from: string,
  to: string,
): Promise<{ status: string; path: string }[]> {
  const r = await runGit(cwd, ['diff', '--name-status', '--no-renames', '-z', from, to, '--'])
  const t = r.stdout.toString('utf8').split('\0')
  const out: { status: string; path: string }[] = []
  for (let i = 0; i + 1 < t.length; i += 2) if (t[i]) out.push({ status: t[i]!.charAt(0), path: t[i + 1]! })
  return out
}

/** Files directly inside `dir` at `commit`, with their blob ids. */
export async function listFiles(
  cwd: string,
  commit: string,
  dir: string,
): Promise<{ path: string; oid: string }[]> {
  const r = await runGit(cwd, ['ls-tree', '-z', commit, '--', dir.replace(/\/?$/, '/')], { allowFail: true })
  if (r.code !== 0) return []
  return r.stdout
    .toString('utf8')
    .split('\0')
    .filter(Boolean)
    .flatMap((entry) => {
      const m = /^\d+ blob ([0-9a-f]+)\t(.+)$/s.exec(entry)
      return m ? [{ oid: m[1]!, path: m[2]! }] : []
    })
}

/** The latest commit on the first-parent chain of `rev` whose tree changed `path` against its first parent. */
export async function lastFirstParentChange(
  cwd: string,
  rev: string,
  path: string,
): Promise<string | undefined> {
  const out = await git(cwd, ['log', '-1', '--first-parent', '--format=%H', rev, '--', path])
  return out || undefined
}

/** Fetches a ref from origin quietly; false when it cannot (offline, no such ref). */
export async function tryFetch(cwd: string, refspec: string): Promise<boolean> {
  const r = await runGit(cwd, ['fetch', '--quiet', '--no-tags', 'origin', refspec], { allowFail: true })
  return r.code === 0
}

/** The objects among `oids` that exist in the clone. */
export async function existingObjects(cwd: string, oids: Iterable<string>): Promise<Set<string>> {
  const list = [...new Set(oids)]
  if (list.length === 0) return new Set()
  const input = list.map((o) => o + '\n').join('')
  const out = (await runGit(cwd, ['cat-file', '--batch-check=%(objectname) %(objecttype)'], { input })).stdout
    .toString('utf8')
    .split('\n')
  const found = new Set<string>()
  list.forEach((oid, i) => {
    if (!(out[i] ?? '').endsWith(' missing')) found.add(oid)
  })
  return found
}

/** Up to `n` commits on the first-parent chain starting at `rev`, newest first. */
export async function firstParentChain(cwd: string, rev: string, n: number): Promise<CommitPeople[]> {
  const chain = await commitsBetween(cwd, undefined, rev, ['--first-parent', `-n${n}`])
  return chain.reverse()
}
