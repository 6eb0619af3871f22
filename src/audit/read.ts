/** Reads the ledger as committed: which entry files a commit holds, and their contents in order. */
import { catFileBatch, runGit } from '../git/git.js'
import { AuditEntry, sequenceFromPath } from './entry.js'

export interface EntryFile {
  seq: number
  oid: string
  path: string
}

export interface LedgerListing {
  entries: EntryFile[]
  /** Paths under the audit directory that are not well-formed entry files (with why). */
  strays: { path: string; why: string }[]
}

/** Every file under `auditPath` in `commit`, split into entry files (sorted by sequence) and strays. */
export async function listEntryFiles(
  repoRoot: string,
  auditPath: string,
  commit: string,
): Promise<LedgerListing> {
  const r = await runGit(repoRoot, ['ls-tree', '-r', '-z', '--full-tree', commit, '--', auditPath])
  const entries: EntryFile[] = []
  const strays: { path: string; why: string }[] = []
  const prefix = `${auditPath}/entries/`
  for (const rec of r.stdout.toString('utf8').split('\0')) {
    if (!rec) continue
    const tab = rec.indexOf('\t')
    const [mode, type, oid] = rec.slice(0, tab).split(' ')
    const path = rec.slice(tab + 1)
    const seq = path.startsWith(prefix) ? sequenceFromPath(path.slice(prefix.length)) : undefined
    if (seq === undefined)
      strays.push({ path, why: 'is not an entry file (AUDIT/entries/NNNNNNN/NNNNNNNNNN.json)' })
    else if (type !== 'blob' || mode !== '100644')
      strays.push({ path, why: `is a ${type} with mode ${mode}, not a regular file` })
    else entries.push({ seq, oid: oid!, path })
  }
  entries.sort((a, b) => a.seq - b.seq)
  return { entries, strays }
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
    const parsed = AuditEntry.safeParse(safeJson(obj.data))
    if (!parsed.success) throw new EntryUnreadableError(file)
    yield parsed.data
  }
}

function safeJson(data: Buffer): unknown {
  try {
    return JSON.parse(data.toString('utf8'))
  } catch {
    return undefined
  }
}

export class EntryUnreadableError extends Error {
  constructor(readonly file: EntryFile) {
    super(`entry ${file.seq} (${file.path}) is not a well-formed audit entry`)
  }
}
