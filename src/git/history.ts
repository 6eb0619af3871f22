/**
 * History questions the approval gate asks of a local clone: the content of a path at many
 * commits at once, who changed a path in a range, what a range changed, and the commits that
 * separate a merge from its base. Built on the plumbing in git.ts.
 */
import { createHash } from 'node:crypto'
import { posix } from 'node:path'
import { catFileBatch, resolveCommit, runGit } from './git.js'

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
  queries: readonly { commit: string; path: string }[],
): Promise<(string | null)[]> {
  if (queries.length === 0) return []
  // git resolves each commit:path by scanning every tree on the way, so 1,000 paths in a
  // folder of 2,000 entries cost seconds. Where many queries share a commit and folder, the
  // folder's tree is read once and its entries looked up here.
  const folderOf = (q: { commit: string; path: string }) => {
    const cut = q.path.lastIndexOf('/')
    const dir = cut < 0 ? '' : q.path.slice(0, cut)
    return `${q.commit}:${dir}`
  }
  const perFolder = new Map<string, number>()
  for (const q of queries) {
    if (isPlainPath(q.path)) perFolder.set(folderOf(q), (perFolder.get(folderOf(q)) ?? 0) + 1)
  }
  const shared = [...perFolder].filter(([, n]) => n >= FOLDER_READ_THRESHOLD).map(([f]) => f)
  const folders = new Map<string, Map<string, string>>()
  if (shared.length > 0) {
    const found = await objectTypes(cwd, shared)
    const trees = shared.flatMap((f, i) => (found[i]?.type === 'tree' ? [{ f, oid: found[i].oid }] : []))
    const data = await readBlobs(
      cwd,
      trees.map((t) => t.oid),
    )
    for (const t of trees) folders.set(t.f, blobEntries(data.get(t.oid)!, t.oid.length / 2))
    // A folder that is not a tree there holds none of the paths.
    for (const f of shared) if (!folders.has(f)) folders.set(f, new Map())
  }
  const rest = queries.filter((q) => !(isPlainPath(q.path) && folders.has(folderOf(q))))
  const found = await objectTypes(
    cwd,
    rest.map((q) => `${q.commit}:${q.path}`),
  )
  let next = 0
  return queries.map((q) => {
    const folder = isPlainPath(q.path) ? folders.get(folderOf(q)) : undefined
    if (folder) return folder.get(q.path.slice(q.path.lastIndexOf('/') + 1)) ?? null
    const r = found[next++]
    return r?.type === 'blob' ? r.oid : null
  })
}

/** Queries per commit and folder from which reading the whole folder is cheaper than asking for each. */
const FOLDER_READ_THRESHOLD = 16

/** A path git would resolve as written: no empty, "." or ".." segments. */
function isPlainPath(path: string): boolean {
  return path.split('/').every((seg) => seg !== '' && seg !== '.' && seg !== '..')
}

/** `git cat-file --batch-check` over object names; null where git knows none. */
async function objectTypes(
  cwd: string,
  names: readonly string[],
): Promise<({ oid: string; type: string } | null)[]> {
  if (names.length === 0) return []
  const input = names.map((n) => `${n}\n`).join('')
  const out = (await runGit(cwd, ['cat-file', '--batch-check=%(objectname) %(objecttype)'], { input })).stdout
    .toString('utf8')
    .split('\n')
  return names.map((_n, i) => {
    const [oid, type] = (out[i] ?? '').split(' ')
    return oid && type && type !== 'missing' && type !== 'ambiguous' ? { oid, type } : null
  })
}

/**
 * The blobs (files and symbolic links, as git's batch-check counts them) directly in a raw
 * tree object: entries are "<octal mode> <name>\0<binary object id>".
 */
function blobEntries(tree: Buffer, idBytes: number): Map<string, string> {
  const out = new Map<string, string>()
  let pos = 0
  while (pos < tree.length) {
    const space = tree.indexOf(0x20, pos)
    const nul = tree.indexOf(0, space)
    if (space < 0 || nul < 0 || nul + 1 + idBytes > tree.length) break
    const mode = tree.toString('latin1', pos, space)
    const name = tree.toString('utf8', space + 1, nul)
    const oid = tree.toString('hex', nul + 1, nul + 1 + idBytes)
    if (mode.startsWith('100') || mode === '120000') out.set(name, oid)
    pos = nul + 1 + idBytes
  }
  return out
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
  return (await readFilesAt(cwd, commit, [path])).get(path)
}

/** readFileAt for many paths at one commit, with two git processes in all; absent paths map to undefined. */
export async function readFilesAt(
  cwd: string,
  commit: string,
  paths: readonly string[],
): Promise<Map<string, Buffer | undefined>> {
  const oids = await blobIdsAt(
    cwd,
    paths.map((path) => ({ commit, path })),
  )
  const data = await readBlobs(
    cwd,
    oids.filter((o): o is string => o !== null),
  )
  return new Map(paths.map((p, i) => [p, oids[i] ? data.get(oids[i]) : undefined]))
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
 * The commits in from..to that changed each path, in one walk of the range and one batch of
 * blob lookups. A commit changed a path when its content differs from its parent's; a merge
 * only when it differs from every parent, because a merge that takes one side unchanged wrote
 * nothing of its own.
 */
export async function commitsChangingMany(
  cwd: string,
  from: string | undefined,
  to: string,
  paths: readonly string[],
): Promise<Map<string, CommitPeople[]>> {
  const commits = await commitsBetween(cwd, from, to)
  const queries = paths.flatMap((path) =>
    commits.flatMap((c) => [c.oid, ...c.parents].map((commit) => ({ commit, path }))),
  )
  const blobs = await blobIdsAt(cwd, queries)
  const out = new Map<string, CommitPeople[]>()
  let i = 0
  for (const path of paths) {
    const changes: CommitPeople[] = []
    for (const c of commits) {
      const mine = blobs[i++]
      const theirs = c.parents.map(() => blobs[i++])
      const changed = theirs.length === 0 ? mine !== null : theirs.every((p) => p !== mine)
      if (changed) changes.push(c)
    }
    out.set(path, changes)
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

/** The files directly inside each folder at `commit`, with their blob ids; one git process per 500 folders. */
export async function listFilesIn(
  cwd: string,
  commit: string,
  dirs: readonly string[],
): Promise<Map<string, { path: string; oid: string }[]>> {
  const out = new Map<string, { path: string; oid: string }[]>()
  const byDir = new Map<string, string[]>() // folder without its trailing slash -> as asked
  for (const d of dirs) {
    out.set(d, [])
    const key = d.replace(/\/+$/, '')
    byDir.set(key, [...(byDir.get(key) ?? []), d])
  }
  const unique = [...byDir.keys()]
  for (let i = 0; i < unique.length; i += 500) {
    const chunk = unique.slice(i, i + 500).map((d) => `${d}/`)
    const r = await runGit(cwd, ['--literal-pathspecs', 'ls-tree', '-z', commit, '--', ...chunk], {
      allowFail: true,
    })
    if (r.code !== 0) continue
    for (const entry of r.stdout.toString('utf8').split('\0')) {
      const m = /^\d+ blob ([0-9a-f]+)\t(.+)$/s.exec(entry)
      if (!m) continue
      for (const asked of byDir.get(posix.dirname(m[2]!)) ?? [])
        out.get(asked)!.push({ oid: m[1]!, path: m[2]! })
    }
  }
  return out
}

/**
 * For each file path, the latest commit on the first-parent chain of `rev` whose diff against
 * its first parent touched it (for a merged spec: its merge), in one walk of the chain; paths
 * never changed, and folders, are absent. One `git log` instead of one per path keeps a
 * 1,000-spec execute from spawning git 1,000 times.
 */
export async function lastFirstParentChanges(
  cwd: string,
  rev: string,
  paths: readonly string[],
): Promise<Map<string, string>> {
  const found = new Map<string, string>()
  const want = new Set(paths)
  if (want.size === 0) return found
  // Few paths: name them. Many: name their folders (one, usually) and keep the wanted names.
  const pathspecs = want.size <= 64 ? [...want] : [...new Set([...want].map((p) => posix.dirname(p)))]
  const r = await runGit(cwd, [
    '--literal-pathspecs',
    'log',
    '--first-parent',
    '--diff-merges=first-parent',
    '--no-renames',
    '-z',
    '--name-only',
    '--format=%x01%H',
    rev,
    '--',
    ...pathspecs,
  ])
  // Records: "\x01<sha>\0\n<name>\0<name>\0" per commit, newest first.
  for (const rec of r.stdout.toString('utf8').split('\x01')) {
    const [sha, ...names] = rec.split('\0')
    if (!sha) continue
    for (const raw of names) {
      const name = raw.replace(/^\n/, '')
      if (want.has(name) && !found.has(name)) found.set(name, sha)
    }
    if (found.size === want.size) break
  }
  return found
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
