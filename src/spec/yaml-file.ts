/**
 * Reads one YAML file defensively. Everything hostile (oversize, binary, bad UTF-8, symlinks
 * out of the repo, duplicate keys, alias bombs, deep nesting, several documents) becomes a
 * Problem with a position; nothing here throws for bad input, and time and memory stay
 * linear in the file size.
 */
import { createHash } from 'node:crypto'
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, realpathSync } from 'node:fs'
import { isAbsolute, relative, sep } from 'node:path'
import {
  CST,
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  Lexer,
  LineCounter,
  Composer,
  Parser,
} from 'yaml'
import type { Document, Node as YamlNode } from 'yaml'
import { capProblems, type Problem } from './problems.js'
import { detectSecret, inlineSecretProblem, inlineSecretProblems, safeKey } from './inline-secrets.js'

export interface YamlLimits {
  maxSpecBytes: number
  maxDepth: number
  maxAliases: number
}

/**
 * Source text outside any value (a comment, or the name of an anchor, alias or tag), kept so
 * that credentials pasted there are refused too.
 */
export interface YamlComment {
  offset: number
  text: string
  /** Shown as the problem's path: (comment), (anchor), (alias) or (tag). */
  where: '(comment)' | '(anchor)' | '(alias)' | '(tag)'
}

export interface YamlFile {
  file: string
  /** sha256 of the exact bytes read, hex. */
  sha256: string
  doc: Document.Parsed
  lineCounter: LineCounter
  data: unknown
  comments: YamlComment[]
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

export type SafeRead = { ok: true; bytes: Buffer } | { ok: false; code: string; message: string }

/**
 * Reads a regular file that really lies inside `repoRoot`, at most `maxBytes` of it. Symlinks
 * are resolved first and the resolved path is opened without following links and without
 * blocking, so neither a swapped link nor a named pipe can redirect or hang the read.
 */
export function readFileInRepo(absPath: string, repoRoot: string, maxBytes: number): SafeRead {
  const fail = (code: string, message: string): SafeRead => ({ ok: false, code, message })
  const isLink = () => lstatSync(absPath, { throwIfNoEntry: false })?.isSymbolicLink() === true
  let real: string
  try {
    real = realpathSync.native(absPath)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT')
      return isLink()
        ? fail('FILE_NOT_FOUND', 'is a symbolic link to a file that does not exist')
        : fail('FILE_NOT_FOUND', 'does not exist')
    if (code === 'ELOOP') return fail('BAD_SYMLINK', 'is a symbolic link loop')
    return failForErrno(code)
  }
  if (!isInside(realRoot(repoRoot), real)) {
    return isLink()
      ? fail(
          'PATH_OUTSIDE_REPO',
          'is a symbolic link that points outside the repository; refusing to read it',
        )
      : fail(
          'PATH_OUTSIDE_REPO',
          'lies outside the repository (through a linked directory); refusing to read it',
        )
  }
  let fd: number
  try {
    fd = openSync(real, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | (constants.O_NOFOLLOW ?? 0))
  } catch (err) {
    return failForErrno((err as NodeJS.ErrnoException).code)
  }
  try {
    const st = fstatSync(fd)
    if (st.isDirectory()) return fail('NOT_A_FILE', 'is a directory, not a spec file')
    if (!st.isFile()) return fail('NOT_A_FILE', 'is not a regular file (a device, pipe or socket)')
    if (st.size > maxBytes) return fail('FILE_TOO_LARGE', tooLarge(maxBytes))
    // Read at most maxBytes+1 bytes, so a file that grows after the stat is still caught.
    const buf = Buffer.allocUnsafe(Math.min(st.size, maxBytes) + 1)
    let total = 0
    for (;;) {
      const n = readSync(fd, buf, total, buf.length - total, null)
      if (n === 0) break
      total += n
      if (total > maxBytes) return fail('FILE_TOO_LARGE', tooLarge(maxBytes))
      if (total === buf.length) break
    }
    return { ok: true, bytes: buf.subarray(0, total) }
  } catch (err) {
    return failForErrno((err as NodeJS.ErrnoException).code)
  } finally {
    closeSync(fd)
  }
}

function failForErrno(code: string | undefined): SafeRead {
  const fail = (c: string, message: string): SafeRead => ({ ok: false, code: c, message })
  if (code === 'ENOENT') return fail('FILE_NOT_FOUND', 'does not exist')
  // The resolved path was a symlink by the time it was opened: someone swapped it.
  if (code === 'ELOOP') return fail('BAD_SYMLINK', 'is a symbolic link that changed while it was read')
  if (code === 'ENXIO') return fail('NOT_A_FILE', 'is not a regular file (a device, pipe or socket)')
  if (code === 'EISDIR') return fail('NOT_A_FILE', 'is a directory, not a spec file')
  if (code === 'EACCES' || code === 'EPERM')
    return fail('FILE_UNREADABLE', 'cannot be read (permission denied)')
  return fail('FILE_UNREADABLE', `cannot be read (${code ?? 'unknown error'})`)
}

const realRoots = new Map<string, string>()

/** The repo root without symlinks; looked up once per process, as it does not move. */
function realRoot(root: string): string {
  let real = realRoots.get(root)
  if (real === undefined) {
    real = realpathSync.native(root)
    realRoots.set(root, real)
  }
  return real
}

function tooLarge(max: number): string {
  return `is larger than the limit of ${max} bytes (limits.maxSpecBytes); a recovery spec is a few KiB`
}

/**
 * Reads `absPath` (shown to the user as `file`), refusing anything that resolves outside
 * `repoRoot`, and parses it as a single YAML document.
 */
export function loadYamlFile(absPath: string, file: string, repoRoot: string, limits: YamlLimits): YamlLoad {
  const read = readFileInRepo(absPath, repoRoot, limits.maxSpecBytes)
  if (!read.ok) return fileProblem(file, read.code, read.message)
  const bytes = read.bytes
  const sha256 = createHash('sha256').update(bytes).digest('hex')

  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    return {
      ok: false,
      problems: [{ file, line: 1, col: 1, code: 'NOT_UTF8', message: 'is UTF-16 text; save it as UTF-8' }],
    }
  }
  // Any NUL means binary, even after bytes that are not UTF-8: "binary" is the more useful word.
  const nul = bytes.indexOf(0)
  if (nul !== -1) {
    return {
      ok: false,
      problems: [
        {
          file,
          ...bytePosition(bytes, nul),
          code: 'BINARY_FILE',
          message: 'is binary (it contains a NUL byte here); a spec must be UTF-8 YAML text',
        },
      ],
    }
  }
  const bad = firstInvalidUtf8(bytes)
  if (bad !== -1) {
    const hex = bytes[bad]!.toString(16).toUpperCase().padStart(2, '0')
    return {
      ok: false,
      problems: [
        {
          file,
          ...bytePosition(bytes, bad),
          code: 'NOT_UTF8',
          message: `is not valid UTF-8 (byte 0x${hex} here is not part of a valid character); save the file as UTF-8`,
        },
      ],
    }
  }
  const source = bytes.toString('utf8', hasUtf8Bom(bytes) ? 3 : 0)
  return parseYamlSource(source, file, sha256, limits)
}

const hasUtf8Bom = (b: Buffer) => b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf

/** Line and column (1-based, columns in UTF-16 units like the YAML parser's) of a byte offset. */
function bytePosition(bytes: Buffer, offset: number): { line: number; col: number } {
  const start = hasUtf8Bom(bytes) && offset >= 3 ? 3 : 0
  const lineStart = offset === 0 ? 0 : bytes.lastIndexOf(0x0a, offset - 1) + 1
  let line = 1
  for (let i = bytes.indexOf(0x0a, start); i !== -1 && i < offset; i = bytes.indexOf(0x0a, i + 1)) line++
  const from = Math.max(lineStart, start)
  return { line, col: bytes.toString('utf8', from, offset).length + 1 }
}

/** Offset of the first byte that breaks UTF-8 (Unicode table 3-7), or -1 when all is valid. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0
  const n = bytes.length
  while (i < n) {
    const c = bytes[i]!
    if (c < 0x80) {
      i++
      continue
    }
    let need: number
    let lo = 0x80
    let hi = 0xbf
    if (c >= 0xc2 && c <= 0xdf) need = 1
    else if (c >= 0xe0 && c <= 0xef) {
      need = 2
      if (c === 0xe0) lo = 0xa0
      if (c === 0xed) hi = 0x9f
    } else if (c >= 0xf0 && c <= 0xf4) {
      need = 3
      if (c === 0xf0) lo = 0x90
      if (c === 0xf4) hi = 0x8f
    } else return i
    for (let k = 1; k <= need; k++) {
      const b = bytes[i + k]
      if (b === undefined) return i
      if (k === 1 ? b < lo || b > hi : b < 0x80 || b > 0xbf) return i
    }
    i += need + 1
  }
  return -1
}

/** Parses YAML text that already passed the byte-level checks. Exported for property tests. */
export function parseYamlSource(source: string, file: string, sha256: string, limits: YamlLimits): YamlLoad {
  const lineCounter = new LineCounter()
  const fail = (problems: Problem[]): YamlLoad => ({ ok: false, problems: capProblems(problems, file) })

  // One pass: each lexeme is watched, then handed to the parser. The parser needs memory per
  // nesting level, so a hostile depth is refused before it has seen more than a few levels.
  const scan = new TokenScan(limits.maxDepth)
  const parser = new Parser(lineCounter.addNewLine)
  lineCounter.addNewLine(0)
  const tokens: CST.Token[] = []
  for (const lexeme of new Lexer().lex(source)) {
    if (!scan.feed(lexeme)) {
      const lc = new LineCounter()
      lc.addNewLine(0)
      for (let i = source.indexOf('\n'); i !== -1; i = source.indexOf('\n', i + 1)) lc.addNewLine(i + 1)
      return fail([
        { file, ...lc.linePos(scan.tooDeepAt ?? 0), code: 'NESTING_TOO_DEEP', message: tooDeep(limits) },
      ])
    }
    for (const token of parser.next(lexeme)) tokens.push(token)
  }
  for (const token of parser.end()) tokens.push(token)
  // What parseAllDocuments does, with the tokens above.
  const composer = new Composer({
    // Our own duplicate check below is linear; the parser's is quadratic in the keys of a map.
    uniqueKeys: false,
    stringKeys: true,
    strict: true,
    // !!binary, !!timestamp, !!set and friends would turn text into Buffers, Dates and Sets.
    resolveKnownTags: false,
    // The parser would otherwise print warnings that quote the source to stderr.
    logLevel: 'error',
  })
  const docs = Array.from(composer.compose(tokens)) as Document.Parsed[]
  const at = (offset: number) => lineCounter.linePos(offset)
  const commentSecrets = (): Problem[] =>
    scan.comments.flatMap((c) => {
      const kind = detectSecret(c.text)
      return kind ? [inlineSecretProblem(file, at(c.offset), c.where, kind)] : []
    })
  const list = docs
  const real = list.filter((d) => !isEmptyNode(d.contents) || d.errors.length > 0)
  if (real.length === 0) {
    const secrets = commentSecrets()
    return fail([
      {
        file,
        line: 0,
        col: 0,
        code: 'EMPTY_FILE',
        message: 'holds no YAML content (it is empty or only comments); a spec must contain one YAML mapping',
      },
      ...secrets,
    ])
  }
  if (real.length > 1) {
    return fail([
      {
        file,
        ...at(real[1]!.range[0]),
        code: 'MULTIPLE_DOCUMENTS',
        message: `holds ${real.length} YAML documents (separated by ---); put each request in its own file`,
      },
      ...real.flatMap((d) => inlineSecretProblems(file, d, lineCounter)),
      ...commentSecrets(),
    ])
  }
  const doc = real[0]!
  const secrets = () => [...inlineSecretProblems(file, doc, lineCounter), ...commentSecrets()]

  const problems: Problem[] = []
  for (const e of [...doc.errors, ...doc.warnings]) {
    const code = e.code === 'RESOURCE_EXHAUSTION' ? 'NESTING_TOO_DEEP' : e.code
    const message =
      e.code === 'RESOURCE_EXHAUSTION' ? tooDeep(limits) : yamlMessage(e.code, e.message, source, e.pos[0])
    problems.push({ file, ...at(e.pos[0]), code, message })
  }
  if (problems.length > 0) return fail([...dedupe(problems), ...secrets()])

  const deep = deepestNode(doc.contents, limits.maxDepth)
  if (deep)
    return fail([{ file, ...at(deep.range?.[0] ?? 0), code: 'NESTING_TOO_DEEP', message: tooDeep(limits) }])

  const dups = duplicateKeys(doc.contents)
  if (dups.length > 0) {
    return fail([
      ...dups.map(({ key, first }) => {
        const name = safeKey(String((key as { value?: unknown }).value))
        const shown = name === '<key>' ? 'key' : `key "${name}"`
        const firstLine = at(first.range?.[0] ?? 0).line
        return {
          file,
          ...at(key.range?.[0] ?? 0),
          code: 'DUPLICATE_KEY',
          message: `duplicate ${shown}: it already appears on line ${firstLine} of this mapping; each key may appear once`,
        }
      }),
      ...secrets(),
    ])
  }

  let data: unknown
  try {
    data = doc.toJS({ maxAliasCount: limits.maxAliases })
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err
    const unresolved = /^Unresolved alias/.test(err.message)
    const alias = firstAlias(doc.contents, unresolved)
    return fail([
      {
        file,
        ...at(alias?.range?.[0] ?? 0),
        code: unresolved ? 'BAD_ALIAS' : 'ALIAS_LIMIT',
        message: unresolved
          ? 'this alias (*name) refers to no anchor (&name) defined before it'
          : `YAML aliases expand too much (limit ${limits.maxAliases}, limits.maxAliases); write the values out instead of using aliases`,
      },
      ...secrets(),
    ])
  }
  return { ok: true, value: { file, sha256, doc, lineCounter, data, comments: scan.comments } }
}

/** No content at all: what a bare `---` or an empty file holds, unlike an explicit `null`. */
function isEmptyNode(node: unknown): boolean {
  return node === null || (isScalar(node) && node.value === null && !(node as { source?: string }).source)
}

function tooDeep(limits: YamlLimits): string {
  return `nesting is deeper than ${limits.maxDepth} levels (limits.maxDepth); a spec needs only a few`
}

/**
 * Watches the lexer's tokens as they stream to the parser: collects comments and names, and
 * estimates the nesting depth. The estimate counts each flow bracket twice (a flow pair can
 * hide an implicit map) and each block indicator at a new column once, so it is never below
 * the real depth and at most about twice it. Refusing above 2 × maxDepth + 8 is therefore
 * always right, and stops the parser before it holds more than a few dozen levels; the exact
 * limit is checked on the parsed tree.
 */
class TokenScan {
  readonly comments: YamlComment[] = []
  /** Set when the document is certainly too deep: where to show it. */
  tooDeepAt: number | undefined
  private readonly threshold: number
  // Where the depth, counting each bracket once, first passed the limit: the place to show.
  private firstTooDeep: number | undefined
  private readonly block: Array<{ col: number; seq: boolean }> = []
  private flow = 0
  private lastOpened = 0
  private offset = 0
  private lineStart = 0
  private keyCol = -1
  private atScalar = false

  constructor(private readonly maxDepth: number) {
    this.threshold = 2 * maxDepth + 8
  }

  /** Takes the next lexeme; false once the document is too deep to go on. */
  feed(lexeme: string): boolean {
    if (this.atScalar) {
      this.atScalar = false
      if (this.keyCol < 0) this.keyCol = this.offset - this.lineStart
    } else {
      const col = this.offset - this.lineStart
      const type = CST.tokenType(lexeme)
      switch (type) {
        case 'scalar':
          this.atScalar = true
          return true
        case 'doc-mode':
        case 'flow-error-end':
          return true
        case 'newline':
          this.keyCol = -1
          break
        case 'doc-start':
        case 'doc-end':
          this.block.length = 0
          this.flow = 0
          break
        case 'comment':
        case 'anchor':
        case 'alias':
        case 'tag':
          this.comments.push({ offset: this.offset, text: lexeme, where: `(${type})` })
          if (type !== 'comment' && this.keyCol < 0) this.keyCol = col
          break
        case 'space':
        case 'byte-order-mark':
        case 'directive-line':
        case 'comma':
          break
        case 'flow-map-start':
        case 'flow-seq-start':
          if (this.keyCol < 0) this.keyCol = col
          this.flow++
          this.lastOpened = this.offset
          break
        case 'flow-map-end':
        case 'flow-seq-end':
          if (this.flow > 0) this.flow--
          break
        case 'seq-item-ind':
        case 'explicit-key-ind':
          if (this.flow === 0) {
            this.push(col, type === 'seq-item-ind')
            this.keyCol = -1
          }
          break
        case 'map-value-ind':
          if (this.flow === 0) {
            this.push(this.keyCol < 0 ? col : this.keyCol, false)
            this.keyCol = -1
          }
          break
        default:
          if (this.keyCol < 0) this.keyCol = col
      }
    }
    const depth = this.block.length + this.flow
    if (this.firstTooDeep === undefined && depth > this.maxDepth) this.firstTooDeep = this.lastOpened
    if (this.block.length + 2 * this.flow > this.threshold) {
      this.tooDeepAt = this.firstTooDeep ?? this.offset
      return false
    }
    const nl = lexeme.lastIndexOf('\n')
    if (nl !== -1) this.lineStart = this.offset + nl + 1
    this.offset += lexeme.length
    return true
  }

  /** A block collection starts at `col`, unless it continues the one already open there. */
  private push(col: number, seq: boolean): void {
    const block = this.block
    while (block.length > 0 && block.at(-1)!.col > col) block.pop()
    if (!seq) while (block.length > 0 && block.at(-1)!.col === col && block.at(-1)!.seq) block.pop()
    const top = block.at(-1)
    if (top && top.col === col && top.seq === seq) return
    block.push({ col, seq })
    this.lastOpened = this.lineStart + col
  }
}

// Only these codes carry parser messages that can quote the file (a token, a tag, an escape,
// a directive); they get words of our own. Every other code's message is fixed text or names a
// token type, and is passed on.
const QUOTING_CODES = new Set([
  'UNEXPECTED_TOKEN',
  'BAD_DQ_ESCAPE',
  'BAD_DIRECTIVE',
  'BAD_COLLECTION_TYPE',
  'TAG_RESOLVE_FAILED',
])

// UNEXPECTED_TOKEN messages that are fixed text or name only a token type or one indicator.
const SAFE_UNEXPECTED: readonly RegExp[] = [
  /^Unexpected [a-z-]+ token(?: in YAML (?:stream|document))?$/,
  /^Unexpected [a-z-]+ at node end$/,
  /^Unexpected [,:?[\]{}-] in (?:flow sequence|flow map|collection)$/,
  /^Unexpected (?:empty item in flow (?:sequence|map)|doc-end without preceding document)$/,
  /^Unexpected block-seq-ind on same line with key$/,
  /^Expected a flow scalar value, but found: [a-z-]+$/,
]

const FIXED_MESSAGES: Partial<Record<string, string>> = {
  BAD_DQ_ESCAPE:
    'invalid escape sequence in a double-quoted string; use single quotes, or write \\\\ for a backslash',
  BAD_DIRECTIVE: 'unsupported or malformed YAML directive (a line starting with %)',
  BAD_COLLECTION_TYPE: 'YAML tags are not allowed here',
  NON_STRING_KEY: 'keys must be plain text, not lists, mappings or aliases',
  TAB_AS_INDENT: 'tabs are not allowed as indentation in YAML; indent with spaces',
}

/** A parser message a person can act on, never quoting the file except a safe tag name. */
function yamlMessage(code: string, raw: string, source: string, offset: number): string {
  if (code === 'TAG_RESOLVE_FAILED') {
    const tag = /^!{1,2}[A-Za-z0-9._/-]{1,40}$/.exec(
      source.slice(offset, offset + 44).split(/[\s,[\]{}]/)[0] ?? '',
    )
    const shown = tag && !detectSecret(tag[0]) ? `the YAML tag ${tag[0]}` : 'this YAML tag'
    return `${shown} is not allowed; specs use plain YAML without custom tags`
  }
  const fixed = FIXED_MESSAGES[code]
  if (fixed) return fixed
  const text = (raw.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '')
  const safe = QUOTING_CODES.has(code) ? SAFE_UNEXPECTED.some((re) => re.test(text)) : true
  if (safe && text.length > 0 && text.length <= 160 && !detectSecret(text)) {
    return text.charAt(0).toLowerCase() + text.slice(1)
  }
  return code === 'UNEXPECTED_TOKEN'
    ? 'unexpected text here; this is not valid YAML'
    : 'this is not valid YAML'
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

type Ranged = { range?: [number, number, number] | null }

/** Keys that repeat within one mapping, with the first occurrence; linear in the document. */
function duplicateKeys(root: unknown): Array<{ key: Ranged; first: Ranged }> {
  const out: Array<{ key: Ranged; first: Ranged }> = []
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const node = stack.pop()
    if (!isCollection(node)) continue
    const seen = isMap(node) ? new Map<string, Ranged>() : undefined
    for (const item of node.items) {
      if (isPair(item)) {
        if (seen && isScalar(item.key)) {
          const k = String(item.key.value)
          const first = seen.get(k)
          if (first) out.push({ key: item.key as Ranged, first })
          else seen.set(k, item.key as Ranged)
        }
        stack.push(item.key, item.value)
      } else stack.push(item)
    }
  }
  return out.sort((a, b) => (a.key.range?.[0] ?? 0) - (b.key.range?.[0] ?? 0))
}

/** The first alias in document order; with `unresolvedOnly`, the first whose anchor is not defined before it. */
function firstAlias(root: unknown, unresolvedOnly: boolean): YamlNode | undefined {
  const anchors = new Set<string>()
  const stack: unknown[] = [root]
  while (stack.length > 0) {
    const node = stack.pop()
    if (isAlias(node)) {
      if (!unresolvedOnly || !anchors.has(node.source)) return node
      continue
    }
    const anchor = (node as { anchor?: unknown } | null)?.anchor
    if (typeof anchor === 'string') anchors.add(anchor)
    if (isCollection(node)) {
      const items = node.items as unknown[]
      for (let i = items.length - 1; i >= 0; i--) {
        const item = items[i]
        if (isPair(item)) stack.push(item.value, item.key)
        else stack.push(item)
      }
    }
  }
  return undefined
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
