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

export function formatProblem(p: Problem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.col}` : p.file
  const field = p.path ? `${p.path}: ` : ''
  return `${where}: ${field}${p.message} [${p.code}]`
}

/** One workflow command per problem, so GitHub Actions annotates the PR diff. */
export function githubAnnotation(p: Problem): string {
  const esc = (s: string) => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')
  const prop = (s: string) => esc(s).replace(/:/g, '%3A').replace(/,/g, '%2C')
  const loc = p.line > 0 ? `,line=${p.line},col=${p.col}` : ''
  const field = p.path ? `${p.path}: ` : ''
  return `::error file=${prop(p.file)}${loc},title=${prop(p.code)}::${esc(field + p.message)}`
}

export function byPosition(a: Problem, b: Problem): number {
  return a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.code.localeCompare(b.code)
}
