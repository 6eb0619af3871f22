/** Plain-text rendering of a validate result, for terminals and CI logs. */
import { formatProblem, githubAnnotation, safeText } from './problems.js'
import type { ValidateResult } from './validate.js'

/** The problems one per line (plus annotations in GitHub Actions), then a one-line summary. */
export function renderValidateReport(result: ValidateResult, opts: { githubActions: boolean }): string {
  const lines: string[] = []
  for (const p of result.problems) lines.push(formatProblem(p))
  if (opts.githubActions) for (const p of result.problems) lines.push(githubAnnotation(p))
  const n = result.specs.length
  const config = safeText(result.config)
  if (n === 0) lines.push(`No spec files found (config: ${config}).`)
  else if (result.invalid === 0) lines.push(`✔ ${n} spec${n === 1 ? '' : 's'} valid (config: ${config})`)
  else
    lines.push(
      `✖ ${result.invalid} of ${n} spec${n === 1 ? '' : 's'} invalid, ${result.problems.length} problem(s)`,
    )
  return lines.join('\n')
}
