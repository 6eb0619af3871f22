/** Maps schema issues to positions in the YAML source and words a reviewer can act on. */
import { closest, distance } from 'fastest-levenshtein'
import { isMap, isPair, isScalar, isSeq } from 'yaml'
import type { Document, LineCounter } from 'yaml'
import type * as z from 'zod'
import { dotPath, MAX_PROBLEMS_PER_FILE, type PathSeg, type Problem } from './problems.js'
import { safeKey } from './inline-secrets.js'

export { dotPath, type PathSeg } from './problems.js'

/** A path as it may be shown: keys that are not safe identifiers become <key>. */
export function shownPath(path: readonly PathSeg[]): string {
  return dotPath(path.map((s) => (typeof s === 'number' ? s : safeKey(s)))) || '(root)'
}

/** Position of the node at `path`, or of its nearest existing ancestor. `key` points at the key, not the value. */
export function locate(
  doc: Document.Parsed,
  lineCounter: LineCounter,
  path: readonly PathSeg[],
  key = false,
): { line: number; col: number } {
  type Ranged = { range?: [number, number, number] | null } | null | undefined
  let node: unknown = doc.contents
  let offset = doc.contents?.range?.[0] ?? 0
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg))
      if (!pair) break
      const keyStart = (pair.key as Ranged)?.range?.[0] ?? offset
      const valueStart = (pair.value as Ranged)?.range?.[0]
      if ((key && i === path.length - 1) || valueStart === undefined) {
        offset = keyStart
        break
      }
      node = pair.value
      offset = valueStart
    } else if (isSeq(node) && typeof seg === 'number' && node.items[seg] !== undefined) {
      node = node.items[seg]
      offset = (node as Ranged)?.range?.[0] ?? offset
    } else break
  }
  const pos = lineCounter.linePos(offset)
  return { line: pos.line, col: pos.col }
}

function valueAt(data: unknown, path: readonly PathSeg[]): unknown {
  let cur: unknown = data
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<PathSeg, unknown>)[seg]
  }
  return cur
}

type AnyDef = { type: string; [k: string]: unknown }
const defOf = (s: unknown): AnyDef => (s as { _zod: { def: AnyDef } })._zod.def

/** The object keys the schema allows at `path` for this data, following discriminated unions. */
export function allowedKeys(schema: z.ZodType, data: unknown, path: readonly PathSeg[]): string[] {
  let cur: unknown = schema
  const unwrap = () => {
    for (;;) {
      const def = defOf(cur)
      if (
        def.type === 'optional' ||
        def.type === 'default' ||
        def.type === 'nullable' ||
        def.type === 'prefault'
      )
        cur = def.innerType
      else if (def.type === 'pipe') cur = def.in
      else if (def.type === 'union') {
        const disc = def.discriminator as string | undefined
        const value = disc
          ? (valueAt(data, consumed) as Record<string, unknown> | undefined)?.[disc]
          : undefined
        const options = def.options as unknown[]
        const match = options.find((o) => {
          const shape = defOf(o).shape as Record<string, unknown> | undefined
          return disc && shape?.[disc] && (shape[disc] as z.ZodType).safeParse(value).success
        })
        if (!match) return false
        cur = match
      } else return true
    }
  }
  const consumed: PathSeg[] = []
  if (!unwrap()) return []
  for (const seg of path) {
    const def = defOf(cur)
    if (def.type === 'object') cur = (def.shape as Record<string, unknown>)[String(seg)]
    else if (def.type === 'array') cur = def.element
    else if (def.type === 'record') cur = def.valueType
    else return []
    consumed.push(seg)
    if (cur === undefined || !unwrap()) return []
  }
  const def = defOf(cur)
  return def.type === 'object' ? Object.keys(def.shape as object) : []
}

/** Turns zod issues into positioned problems. Messages never echo a value from the file. */
export function schemaProblems(
  schema: z.ZodType,
  issues: readonly z.core.$ZodIssue[],
  file: string,
  doc: Document.Parsed,
  lineCounter: LineCounter,
  data: unknown,
): Problem[] {
  const out: Problem[] = []
  for (const issue of issues) {
    if (out.length > MAX_PROBLEMS_PER_FILE) break
    const path = issue.path as PathSeg[]
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeys(schema, data, path)
      for (const k of issue.keys.slice(0, MAX_PROBLEMS_PER_FILE + 1)) {
        const name = safeKey(k)
        const shown = name === '<key>' ? 'a field whose name cannot be shown' : `"${name}"`
        const guess = allowed.length > 0 && name !== '<key>' ? closest(k, allowed) : undefined
        const hint =
          guess && distance(k.toLowerCase(), guess.toLowerCase()) <= Math.max(2, Math.floor(guess.length / 3))
            ? `; did you mean "${guess}"?`
            : allowed.length > 0
              ? `; allowed here: ${allowed.join(', ')}`
              : ''
        out.push({
          file,
          ...locate(doc, lineCounter, [...path, k], true),
          code: 'UNKNOWN_FIELD',
          path: shownPath([...path, k]),
          message: `unknown field ${shown}${hint}`,
        })
      }
      continue
    }
    const value = valueAt(data, path)
    const { code, message } = describeIssue(issue, value)
    // A bad record key is shown at the key itself, everything else at its value.
    const at = locate(doc, lineCounter, path, issue.code === 'invalid_key')
    out.push({ file, ...at, code, path: shownPath(path), message })
  }
  return out
}

const TYPE_NAMES: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping (key: value lines)',
  array: 'a list',
  null: 'empty',
}

function kindOf(value: unknown): string {
  if (value === null) return 'empty'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') return 'text'
  if (typeof value === 'boolean') return 'true or false'
  return `a ${typeof value}`
}

/** A short message in our words for one zod issue; only schema constants are quoted. */
function describeIssue(issue: z.core.$ZodIssue, value: unknown): { code: string; message: string } {
  const own = (m: string) => /^[a-z]/.test(m) // messages written in schema.ts start lowercase
  switch (issue.code) {
    case 'invalid_type': {
      if (value === undefined) return { code: 'REQUIRED', message: 'is required' }
      const want = TYPE_NAMES[issue.expected] ?? issue.expected
      return { code: 'SCHEMA', message: `must be ${want}, not ${kindOf(value)}` }
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => JSON.stringify(v))
      if (value === undefined) return { code: 'REQUIRED', message: `is required (${values.join(', ')})` }
      return {
        code: 'INVALID_VALUE',
        message: values.length === 1 ? `must be ${values[0]}` : `must be one of: ${values.join(', ')}`,
      }
    }
    case 'invalid_union': {
      const options = (issue as { options?: unknown[] }).options
      if ('discriminator' in issue && Array.isArray(options)) {
        const list = options.map((o) => String(o)).join(', ')
        return value === undefined
          ? { code: 'REQUIRED', message: `is required; one of: ${list}` }
          : { code: 'INVALID_VALUE', message: `must be one of: ${list}` }
      }
      return { code: 'SCHEMA', message: 'does not match any of the allowed forms' }
    }
    case 'too_big': {
      const max = Number(issue.maximum)
      if (issue.origin === 'string')
        return { code: 'SCHEMA', message: `is too long: at most ${max} characters` }
      if (issue.origin === 'array') return { code: 'SCHEMA', message: `has too many items: at most ${max}` }
      return { code: 'SCHEMA', message: `must be at most ${max}` }
    }
    case 'too_small': {
      const min = Number(issue.minimum)
      if (issue.origin === 'string')
        return {
          code: 'SCHEMA',
          message: min <= 1 ? 'must not be empty' : `is too short: at least ${min} characters`,
        }
      if (issue.origin === 'array')
        return { code: 'SCHEMA', message: `needs at least ${min} item${min === 1 ? '' : 's'}` }
      return { code: 'SCHEMA', message: `must be at least ${min}` }
    }
    case 'invalid_format': {
      if (own(issue.message)) return { code: 'INVALID_FORMAT', message: issue.message }
      const byFormat: Record<string, string> = {
        url: 'must be an http:// or https:// URL',
        email: 'must be an email address',
        datetime: 'must be an ISO 8601 date-time with a time zone',
      }
      return { code: 'INVALID_FORMAT', message: byFormat[issue.format] ?? 'is not in the required format' }
    }
    case 'invalid_key': {
      const inner = issue.issues[0]?.message
      return {
        code: 'INVALID_KEY',
        message: inner && own(inner) ? `is not an allowed name: it ${inner}` : 'is not an allowed name here',
      }
    }
    case 'custom':
      return { code: 'SCHEMA', message: own(issue.message) ? issue.message : 'is not valid here' }
    default:
      return { code: 'SCHEMA', message: 'is not valid here' }
  }
}
