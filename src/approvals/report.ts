/** Plain-text rendering of a gate result, for terminals and CI logs. */
import type { GateResult, SubjectResult } from './gate.js'

function counts(s: SubjectResult): string {
  return s.backends
    .map((b) => {
      const name = b.backend === 'github' ? 'GitHub' : 'SSH'
      const teams = b.teams.map((t) => `${t.team} ${t.approvals}/${t.required}`)
      return `${name} ${b.approvals}/${b.required}${teams.length ? ` (${teams.join(', ')})` : ''}`
    })
    .join('; ')
}

/** Every subject with its verdict, tier, what counted and every reason. */
export function renderGateReport(r: GateResult): string {
  const lines: string[] = []
  const where = r.pr ? `pull request #${r.pr.number}` : `commit ${r.head.slice(0, 7)}`
  lines.push(
    `Approvals for ${where}: judging ${r.head.slice(0, 7)} under the policy of the base ${r.base.slice(0, 7)}`,
  )
  if (r.policyChanges.length)
    lines.push(`This change edits ${r.policyChanges.join(' and ')}: it needs the highest tier.`)
  if (r.subjects.length === 0) lines.push('Nothing to approve: no recovery request or policy file changed.')
  for (const s of r.subjects) {
    lines.push('')
    lines.push(
      `${s.allowed ? 'APPROVED' : 'BLOCKED '} ${s.subject.id} (${s.subject.path})${s.tier.risk ? `, tier ${s.tier.risk}` : ''}`,
    )
    if (s.tier.because.length) lines.push(`  tier: ${s.tier.because.join('; ')}`)
    if (s.backends.length) lines.push(`  approvals: ${counts(s)}`)
    const counted = s.approvals.filter((a) => a.counted)
    if (counted.length) {
      lines.push(
        `  counted: ${counted.map((a) => `${a.approver}${a.backend === 'ssh' ? ' (signed)' : ''}${a.teams.length ? ` [${a.teams.join(', ')}]` : ''}`).join(', ')}`,
      )
    }
    for (const reason of s.reasons) lines.push(`  - ${reason}`)
  }
  lines.push('')
  const blocked = r.subjects.filter((s) => !s.allowed).length
  lines.push(
    r.allowed
      ? r.subjects.length
        ? `Approved: ${r.subjects.length} item${r.subjects.length === 1 ? '' : 's'}.`
        : 'Approved: nothing to approve.'
      : `Blocked: ${blocked} of ${r.subjects.length} item${r.subjects.length === 1 ? '' : 's'} still need${blocked === 1 ? 's' : ''} approvals.`,
  )
  return lines.join('\n')
}
