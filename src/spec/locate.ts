/** Maps schema issues to positions in the YAML source and words a reviewer can act on. */
import { closest, distance } from 'fastest-levenshtein'
import { isMap, isPair, isScalar, isSeq } from 'yaml'
import type { Document, LineCounter } from 'yaml'
import type * as z from 'zod'
import type { Problem } from './problems.js'

export type PathSeg = string | number

export function dotPath(path: readonly PathSeg[]): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('')
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

const PRINTABLE_KEY = /^[A-Za-z0-9_.-]{1,40}$/

/** Turns zod issues into positioned problems. Messages never echo a value from the file. */
export function schemaProblems(
  schema: z.ZodType,
  issues: readonly z.core.$ZodIssue[],
  file: string,
  doc: Document.Parsed,
  lineCounter: LineCounter,
  data: unknown,
  isSecretLike: (s: string) => boolean,
): Problem[] {
  const out: Problem[] = []
  for (const issue of issues) {
    const path = issue.path as PathSeg[]
    if (issue.code === 'unrecognized_keys') {
      const allowed = allowedKeys(schema, data, path)
      for (const k of issue.keys) {
        const shown = PRINTABLE_KEY.test(k) && !isSecretLike(k) ? `"${k}"` : 'a field'
        const guess = allowed.length > 0 ? closest(k, allowed) : undefined
        const hint =
          guess && PRINTABLE_KEY.test(k) && distance(k, guess) <= Math.max(2, Math.floor(guess.length / 3))
            ? `; did you mean "${guess}"?`
            : allowed.length > 0
              ? `; allowed here: ${allowed.join(', ')}`
              : ''
        out.push({
          file,
          ...locate(doc, lineCounter, [...path, k], true),
          code: 'UNKNOWN_FIELD',
          path: dotPath([...path, k].map((s) => (s === k && shown === 'a field' ? '<field>' : s))),
          message: `unknown field ${shown}${hint}`,
        })
      }
      continue
    }
    const missing = valueAt(data, path) === undefined
    let message = issue.message
    let code = 'SCHEMA'
    if (missing && issue.code === 'invalid_type') {
      message = 'is required'
      code = 'REQUIRED'
    } else if (issue.code === 'invalid_union' && 'discriminator' in issue) {
      message = `${issue.message}`
    } else if (issue.code === 'invalid_value') {
      code = 'INVALID_VALUE'
    } else if (issue.code === 'invalid_format') {
      code = 'INVALID_FORMAT'
    }
    out.push({ file, ...locate(doc, lineCounter, path), code, path: dotPath(path) || '(root)', message })
  }
  return out
}
