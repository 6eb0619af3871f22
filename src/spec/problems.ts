/** One thing wrong with one input file, located precisely enough for an editor to jump to it. */
export interface Problem {
  /** Path as the user gave it, relative to the working directory where possible. */
  file: string
  /** 1-based line and column; 0 when the problem concerns the file as a whole. */
  line: number
  col: number
  /** Stable machine-readable code, e.g. DUPLICATE_KEY or INLINE_SECRET. */
  code: string
  /** Dot path of the offending field, e.g. target.path, when there is one. */
  path?: string
  message: string
}

export type PathSeg = string | number

/** `target.path`, `rotation.verification[1].url`; segments must already be safe to show. */
export function dotPath(path: readonly PathSeg[]): string {
  return path.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('')
}

/** Most problems reported for one file; the rest are summarised, so hostile files cannot flood a log. */
export const MAX_PROBLEMS_PER_FILE = 25

/** Keeps the first problems of one file and says how many there were in all. */
export function capProblems(problems: Problem[], file: string): Problem[] {
  if (problems.length <= MAX_PROBLEMS_PER_FILE) return problems
  return [
    {
      file,
      line: 0,
      col: 0,
      code: 'TOO_MANY_PROBLEMS',
      message: `has more than ${MAX_PROBLEMS_PER_FILE} problems; only the first ${MAX_PROBLEMS_PER_FILE} are shown`,
    },
    ...problems.slice(0, MAX_PROBLEMS_PER_FILE),
  ]
}

// C0/C1 controls, DEL, and the bidi overrides that can make a terminal line lie about its content.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE_CHARS = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g

/** Text with control characters escaped, so a hostile file name cannot forge or hide output lines. */
export function safeText(s: string): string {
  return s.replace(UNSAFE_CHARS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

export function formatProblem(p: Problem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file
  const field = p.path ? `${p.path}: ` : ''
  return safeText(`${where}: ${field}${p.message} [${p.code}]`)
}

/** One workflow command per problem, so GitHub Actions annotates the PR diff. */
export function githubAnnotation(p: Problem): string {
  const esc = (s: string) => safeText(s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A'))
  const prop = (s: string) => esc(s).replace(/:/g, '%3A').replace(/,/g, '%2C')
  const loc = p.line > 0 ? `,line=${p.line},col=${p.col}` : ''
  const field = p.path ? `${p.path}: ` : ''
  return `::error file=${prop(p.file)}${loc},title=${prop(p.code)}::${esc(field + p.message)}`
}

export function byPosition(a: Problem, b: Problem): number {
  return a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.code.localeCompare(b.code)
}
