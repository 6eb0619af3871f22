/** Reads the ledger as committed: which entry files a commit holds, and their entries in order. */
import { CheckFailedError } from '../errors.js'
import { catFileBatch, runGit } from '../git/git.js'
import { AuditEntry, rangeFromPath } from './entry.js'

/** One entry file: entries first..last, one per line. */
export interface EntryFile {
  first: number
  last: number
  oid: string
  path: string
}

export interface LedgerListing {
  /** Sorted by first sequence. */
  files: EntryFile[]
  /** Paths under the audit directory that are not well-formed entry files (with why). */
  strays: { path: string; why: string }[]
}

/** Ids of the empty blob in SHA-1 and SHA-256 repositories. */
const EMPTY_BLOBS = new Set([
  'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391',
  '473a0f4c3be8a93681a267e3b1e9a7dcda1185436fe141f7749120a303721813',
])

/** init keeps the empty ledger directory in git with an empty .gitkeep; that one file is not a stray. */
export function isPlaceholder(auditPath: string, path: string, oid: string): boolean {
  return path === `${auditPath}/.gitkeep` && EMPTY_BLOBS.has(oid)
}

/** Every file under `auditPath` in `commit`, split into entry files and strays. */
export async function listEntryFiles(
  repoRoot: string,
  auditPath: string,
  commit: string,
): Promise<LedgerListing> {
  const r = await runGit(repoRoot, ['ls-tree', '-r', '-z', '--full-tree', commit, '--', auditPath])
  const files: EntryFile[] = []
  const strays: { path: string; why: string }[] = []
  const prefix = `${auditPath}/entries/`
  for (const rec of r.stdout.toString('utf8').split('\0')) {
    if (!rec) continue
    const tab = rec.indexOf('\t')
    const [mode, type, oid] = rec.slice(0, tab).split(' ')
    const path = rec.slice(tab + 1)
    const range = path.startsWith(prefix) ? rangeFromPath(path.slice(prefix.length)) : undefined
    if (type === 'blob' && isPlaceholder(auditPath, path, oid!)) continue
    if (range === undefined)
      strays.push({ path, why: 'is not an entry file (AUDIT/entries/NNNNNNN/FIRST-LAST.jsonl)' })
    else if (type !== 'blob' || mode !== '100644')
      strays.push({ path, why: `is a ${type} with mode ${mode}, not a regular file` })
    else files.push({ ...range, oid: oid!, path })
  }
  files.sort((a, b) => a.first - b.first || a.last - b.last)
  return { files, strays }
}

/** Splits an entry file into its lines; a missing final newline leaves the last line unterminated. */
export function splitLines(data: Buffer): { lines: Buffer[]; terminated: boolean } {
  const lines: Buffer[] = []
  let pos = 0
  for (;;) {
    const nl = data.indexOf(10, pos)
    if (nl < 0) break
    lines.push(data.subarray(pos, nl + 1))
    pos = nl + 1
  }
  if (pos < data.length) lines.push(data.subarray(pos))
  return { lines, terminated: pos === data.length }
}

/** Where entry `seq` is: its file and 1-based line, or undefined when no file covers it. */
export function locate(
  files: readonly Pick<EntryFile, 'first' | 'last' | 'path'>[],
  seq: number,
): { path: string; line: number } | undefined {
  const f = files.find((x) => x.first <= seq && seq <= x.last)
  return f ? { path: f.path, line: seq - f.first + 1 } : undefined
}

/** Streams the parsed entries of `files` in order. Does not verify them: that is verifyLedger's job. */
export async function* readEntries(
  repoRoot: string,
  files: readonly EntryFile[],
): AsyncGenerator<AuditEntry> {
  let i = 0
  for await (const obj of catFileBatch(
    repoRoot,
    files.map((f) => f.oid),
  )) {
    const file = files[i++]!
    const { lines } = splitLines(obj.data)
    for (const [n, line] of lines.entries()) {
      const parsed = AuditEntry.safeParse(safeJson(line))
      if (!parsed.success)
        throw new CheckFailedError(
          'AUDIT_ENTRY_UNREADABLE',
          `entry ${file.first + n} (${file.path} line ${n + 1}) is not a well-formed audit entry.`,
          { next: 'Run "nhi-recover audit verify" to see what happened to the ledger.' },
        )
      yield parsed.data
    }
  }
}

function safeJson(data: Buffer): unknown {
  try {
    return JSON.parse(data.toString('utf8'))
  } catch {
    return undefined
  }
}
