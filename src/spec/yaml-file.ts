/**
 * Reads one YAML file defensively. Everything hostile (oversize, binary, bad UTF-8, symlinks
 * out of the repo, duplicate keys, alias bombs, deep nesting, several documents) becomes a
 * Problem with a position; nothing here throws for bad input.
 */
import { createHash } from 'node:crypto'
import { lstatSync, openSync, readSync, closeSync, realpathSync, fstatSync } from 'node:fs'
import { isAbsolute, relative, sep } from 'node:path'
import { isAlias, isCollection, isPair, LineCounter, parseAllDocuments } from 'yaml'
import type { Document } from 'yaml'
import type { Node as YamlNode } from 'yaml'
import type { Problem } from './problems.js'

export interface YamlLimits {
  maxSpecBytes: number
  maxDepth: number
  maxAliases: number
}

export interface YamlFile {
  file: string
  /** sha256 of the exact bytes read, hex. */
  sha256: string
  doc: Document.Parsed
  lineCounter: LineCounter
  data: unknown
}

export type YamlLoad = { ok: true; value: YamlFile } | { ok: false; problems: Problem[] }

const fileProblem = (file: string, code: string, message: string): YamlLoad => ({
  ok: false,
  problems: [{ file, line: 0, col: 0, code, message }],
})

/** True when `child` is `parent` or lies below it. Both must be real (symlink-free) paths. */
export function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child)
  return rel === '' || (!rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel))
}

/**
 * Reads `absPath` (shown to the user as `file`), refusing anything that resolves outside
 * `repoRoot`, and parses it as a single YAML document.
 */
export function loadYamlFile(absPath: string, file: string, repoRoot: string, limits: YamlLimits): YamlLoad {
  let bytes: Buffer
  try {
    const link = lstatSync(absPath)
    if (link.isSymbolicLink()) {
      const target = realpathSync(absPath)
      if (!isInside(realpathSync(repoRoot), target)) {
        return fileProblem(
          file,
          'PATH_OUTSIDE_REPO',
          'is a symbolic link that points outside the repository; refusing to read it',
        )
      }
    } else if (!isInside(realpathSync(repoRoot), realpathSync(absPath))) {
      return fileProblem(file, 'PATH_OUTSIDE_REPO', 'lies outside the repository; refusing to read it')
    }
    const read = readBounded(absPath, limits.maxSpecBytes)
    if (read === 'not-a-file') return fileProblem(file, 'NOT_A_FILE', 'is not a regular file')
    if (read === 'too-large') {
      return fileProblem(
        file,
        'FILE_TOO_LARGE',
        `is larger than the limit of ${limits.maxSpecBytes} bytes (limits.maxSpecBytes); a recovery spec is a few KiB`,
      )
    }
    bytes = read
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return fileProblem(file, 'FILE_NOT_FOUND', 'does not exist')
    if (code === 'ELOOP') return fileProblem(file, 'PATH_OUTSIDE_REPO', 'is a symbolic link loop')
    if (code === 'EACCES' || code === 'EPERM')
      return fileProblem(file, 'FILE_UNREADABLE', 'cannot be read (permission denied)')
    if (code === 'EISDIR') return fileProblem(file, 'NOT_A_FILE', 'is a directory')
    return fileProblem(file, 'FILE_UNREADABLE', `cannot be read (${code ?? 'unknown error'})`)
  }

  const sha256 = createHash('sha256').update(bytes).digest('hex')
  const nul = bytes.indexOf(0)
  if (nul !== -1) {
    return fileProblem(
      file,
      'BINARY_FILE',
      `is binary (NUL byte at offset ${nul}); a spec must be UTF-8 YAML text`,
    )
  }
  let source: string
  try {
    source = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes)
  } catch {
    const { line, col } = firstInvalidUtf8(bytes)
    return {
      ok: false,
      problems: [{ file, line, col, code: 'NOT_UTF8', message: 'is not valid UTF-8 text' }],
    }
  }
  return parseYamlSource(source, file, sha256, limits)
}

/** Parses YAML text that already passed the byte-level checks. Exported for property tests. */
export function parseYamlSource(source: string, file: string, sha256: string, limits: YamlLimits): YamlLoad {
  const lineCounter = new LineCounter()
  const at = (offset: number) => {
    const pos = lineCounter.linePos(offset)
    return { line: pos.line, col: pos.col }
  }
  const docs = parseAllDocuments(source, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true })
  const list: Document.Parsed[] = Array.isArray(docs) ? docs : [docs as unknown as Document.Parsed]
  const real = list.filter((d) => d.contents !== null || d.errors.length > 0)
  if (real.length === 0) {
    return fileProblem(file, 'EMPTY_FILE', 'is empty; a spec must contain one YAML mapping')
  }
  if (list.length > 1) {
    const second = list[1]!
    return {
      ok: false,
      problems: [
        {
          file,
          ...at(second.range[0]),
          code: 'MULTIPLE_DOCUMENTS',
          message: `holds ${list.length} YAML documents; put each request in its own file`,
        },
      ],
    }
  }
  const doc = list[0]!
  const problems: Problem[] = []
  for (const e of [...doc.errors, ...doc.warnings]) {
    const code = e.code === 'RESOURCE_EXHAUSTION' ? 'NESTING_TOO_DEEP' : e.code
    const message =
      e.code === 'RESOURCE_EXHAUSTION'
        ? `nesting is too deep to read (limit ${limits.maxDepth} levels)`
        : e.code === 'DUPLICATE_KEY'
          ? `duplicate key ${describeKeyAt(source, e.pos[0])}; each key may appear once`
          : e.code === 'TAG_RESOLVE_FAILED'
            ? `${firstLine(e.message)}; custom YAML tags are not allowed`
            : firstLine(e.message)
    problems.push({ file, ...at(e.pos[0]), code, message })
  }
  if (problems.length > 0) return { ok: false, problems: dedupe(problems) }

  const tooDeep = deepestNode(doc.contents, limits.maxDepth)
  if (tooDeep) {
    return {
      ok: false,
      problems: [
        {
          file,
          ...at(tooDeep.range?.[0] ?? 0),
          code: 'NESTING_TOO_DEEP',
          message: `nesting is deeper than ${limits.maxDepth} levels (limits.maxDepth)`,
        },
      ],
    }
  }

  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: limits.maxAliases })
  } catch (err) {
    if (err instanceof ReferenceError) {
      const alias = firstAlias(doc.contents)
      return {
        ok: false,
        problems: [
          {
            file,
            ...at(alias?.range?.[0] ?? 0),
            code: 'ALIAS_LIMIT',
            message: `YAML aliases expand too much (limit ${limits.maxAliases}, limits.maxAliases); write the values out`,
          },
        ],
      }
    }
    throw err
  }
  return { ok: true, value: { file, sha256, doc, lineCounter, data } }
}

function readBounded(path: string, max: number): Buffer | 'too-large' | 'not-a-file' {
  const fd = openSync(path, 'r')
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) return 'not-a-file'
    if (st.size > max) return 'too-large'
    // Read at most max+1 bytes, so a file that grows after fstat is still caught.
    const buf = Buffer.allocUnsafe(Math.min(st.size, max) + 1)
    let total = 0
    for (;;) {
      const n = readSync(fd, buf, total, buf.length - total, null)
      if (n === 0) break
      total += n
      if (total > max) return 'too-large'
      if (total === buf.length) break
    }
    return buf.subarray(0, total)
  } finally {
    closeSync(fd)
  }
}

/** Position of the first byte that breaks UTF-8; only called after the strict decoder refused. */
function firstInvalidUtf8(bytes: Buffer): { line: number; col: number } {
  let i = 0
  while (i < bytes.length) {
    const c = bytes[i]!
    const extra =
      c < 0x80 ? 0 : c >= 0xc2 && c <= 0xdf ? 1 : c >= 0xe0 && c <= 0xef ? 2 : c >= 0xf0 && c <= 0xf4 ? 3 : -1
    if (extra < 0) break
    let k = 1
    while (k <= extra && i + k < bytes.length && (bytes[i + k]! & 0xc0) === 0x80) k++
    if (k <= extra) break
    i += extra + 1
  }
  const lines = bytes.subarray(0, i).toString('utf8').split('\n')
  return { line: lines.length, col: [...(lines.at(-1) ?? '')].length + 1 }
}

/** Iterative depth check, so a hostile document cannot overflow our own stack. */
function deepestNode(root: unknown, maxDepth: number): YamlNode | undefined {
  const stack: Array<[unknown, number]> = [[root, 1]]
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!
    if (!isCollection(node)) continue
    if (depth > maxDepth) return node
    for (const item of node.items) {
      if (isPair(item)) {
        stack.push([item.key, depth + 1])
        stack.push([item.value, depth + 1])
      } else stack.push([item, depth + 1])
    }
  }
  return undefined
}

function firstAlias(root: unknown): YamlNode | undefined {
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const node = stack.pop()
    if (isAlias(node)) return node
    if (isCollection(node)) {
      for (const item of node.items) {
        if (isPair(item)) stack.push(item.value, item.key)
        else stack.push(item)
      }
    }
  }
  return undefined
}

function describeKeyAt(source: string, offset: number): string {
  const m = /^[A-Za-z0-9_.-]{1,64}/.exec(source.slice(offset, offset + 65))
  return m ? `"${m[0]}"` : 'in this mapping'
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
}

function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>()
  return problems.filter((p) => {
    const key = `${p.line}:${p.col}:${p.code}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}
