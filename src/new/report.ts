/** Plain-text rendering of a created spec. */
import type { NewSpecResult } from './new-spec.js'

export function renderNewSpecReport(result: NewSpecResult): string {
  const lines = [
    `✔ Created ${result.file} (id ${result.id}, expires ${result.expires})`,
    '',
    'Next:',
    `  git add ${result.file} && git commit -m "Recovery request ${result.id}"`,
    '  open a pull request; CI validates it and shows the approvals its tier needs',
  ]
  if (!result.schemaInRepo) {
    lines.push(
      '',
      `Note: the repo has no recovery-specs/schema/, so the file's $schema line points at the installed`,
      '  package and resolves on this machine only. Commit the JSON Schemas (nhi-recover init writes them).',
    )
  }
  return lines.join('\n')
}
