/** Plain-text rendering of execute's progress and result, for terminals without ink and CI logs. */
import type { ExecuteEvent } from './execute.js'
import type { RunExecuteResult } from './run-execute.js'

/** One line per step, so a CI log reads as the story of the run. */
export function progressLine(e: ExecuteEvent): string | undefined {
  switch (e.type) {
    case 'planned':
      return `plan: ${e.run} request(s) to run, ${e.skipped} skipped, ${e.retire} previous credential(s) due to retire`
    case 'step':
      return `${e.requestId}  ${e.step.padEnd(8)} ${e.detail}`
    case 'done':
      return e.outcome === 'skipped'
        ? undefined
        : `${e.requestId}  ${e.outcome.toUpperCase().padEnd(8)} ${e.reason}`
  }
}

export function renderExecuteSummary(r: RunExecuteResult): string {
  const lines: string[] = []
  const count = (o: string) => r.requests.filter((q) => q.outcome === o).length
  if (r.dryRun) {
    lines.push(`Dry run at ${r.commit.slice(0, 12)}: nothing was changed. It would:`)
    for (const c of r.wouldChange ?? []) lines.push(`  ${c.target}: ${c.detail}`)
    if ((r.wouldChange ?? []).length === 0) lines.push('  change nothing.')
  }
  for (const t of r.locksTakenOver) {
    lines.push(`Took over the lock of ${t.requestId} from ${t.holder}, whose lease expired at ${t.expired}.`)
  }
  const retired = r.retired.filter((x) => x.outcome === 'succeeded').length
  lines.push(
    `${r.dryRun ? 'Would have: ' : ''}${count('succeeded')} succeeded, ${count('rolled-back')} rolled back, ${count('failed')} failed, ${count('refused')} refused, ${count('held')} held by another executor, ${count('skipped')} already done; ${retired} previous credential(s) retired.`,
  )
  if (r.audit.commit)
    lines.push(
      `Audit: ${r.audit.entries} entr${r.audit.entries === 1 ? 'y' : 'ies'} in signed commit ${r.audit.commit.slice(0, 12)}.`,
    )
  const t = r.timing
  const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`
  lines.push(
    `Time: ${s(t.totalMs)}; inside provider calls ${s(t.providerMs)}, approval gate ${s(t.gateMs)}, audit ledger ${s(t.ledgerMs)}, locks ${s(t.locksMs)} (summed over concurrent calls).`,
  )
  return lines.join('\n')
}
