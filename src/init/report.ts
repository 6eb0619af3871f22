/** Plain-text rendering of an init result. */
import { resolve } from 'node:path'
import { displayPath } from '../config/repo.js'
import type { InitResult } from './scaffold.js'

export function renderInitReport(result: InitResult, cwd: string): string {
  const where = result.dir === resolve(cwd) ? '.' : displayPath(cwd, result.dir)
  const lines = [`Scaffolded a recovery repo in ${where}:`]
  for (const f of result.created) lines.push(`  created      ${f}`)
  for (const f of result.overwritten) lines.push(`  overwritten  ${f}`)
  lines.push('', 'Next:')
  if (!result.gitRepo) lines.push(`  git init ${where === '.' ? '' : where}`.trimEnd())
  if (result.enclosingRepo) {
    lines.push(
      `  (${where} lies inside the git repo at ${result.enclosingRepo}; nhi-recover looks for nhi-recover.yaml`,
      '   at the root of the git repo, so make this its own repo or pass --config)',
    )
  }
  lines.push(
    '  review nhi-recover.yaml (providers, policy teams) and .github/CODEOWNERS.suggested',
    '  nhi-recover new        # file the first recovery request',
    '  make the "nhi-recover-approvals" job a required status check on the default branch',
  )
  return lines.join('\n')
}
