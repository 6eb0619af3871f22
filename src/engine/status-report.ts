/** Plain-text rendering of `status`, for pipes and CI logs; the ink dashboard shares its labels. */
import type { RequestState, RequestStatus, StatusResult } from './status.js'

/** Display order of the states: what needs a person first, finished work last. */
export const STATE_ORDER: readonly RequestState[] = [
  'awaiting-approval',
  'approvals-unknown',
  'approved',
  'executing',
  'failed',
  'rolled-back',
  'done',
  'expired',
  'invalid',
]

export const STATE_LABELS: Record<RequestState, string> = {
  'awaiting-approval': 'awaiting approval',
  'approvals-unknown': 'approvals unknown',
  approved: 'approved',
  executing: 'executing',
  failed: 'failed',
  'rolled-back': 'rolled back',
  done: 'done',
  expired: 'expired',
  invalid: 'invalid',
}

/** The requests grouped by state, in display order; empty groups are left out. */
export function groupByState(requests: readonly RequestStatus[]): Array<[RequestState, RequestStatus[]]> {
  return STATE_ORDER.map((s): [RequestState, RequestStatus[]] => [
    s,
    requests.filter((r) => r.state === s),
  ]).filter(([, rs]) => rs.length > 0)
}

/** "v1 → v2", or the one side that exists. */
export function versionChange(r: { versionBefore?: string; versionAfter?: string }): string {
  return `${r.versionBefore ?? '(none)'} → ${r.versionAfter ?? '(none)'}`
}

/** One line per state count, e.g. "1 awaiting approval, 2 done". */
export function stateCounts(requests: readonly RequestStatus[]): string {
  const groups = groupByState(requests)
  return groups.length === 0
    ? 'no requests'
    : groups.map(([s, rs]) => `${rs.length} ${STATE_LABELS[s]}`).join(', ')
}

/** A table of requests, then the last rotation of each identity, then what could not be read. */
export function renderStatusTable(r: StatusResult): string {
  const lines: string[] = [
    `Requests at ${r.commit.slice(0, 12)}${r.branch ? ` (${r.branch})` : ''}: ${stateCounts(r.requests)}`,
  ]
  if (r.requests.length > 0) {
    lines.push(
      '',
      ...table(
        ['REQUEST', 'IDENTITY', 'STATE', 'DETAIL'],
        groupByState(r.requests).flatMap(([, rs]) =>
          rs.map((q) => [q.requestId, q.identity ?? '-', STATE_LABELS[q.state], q.detail]),
        ),
      ),
    )
  }
  lines.push('', 'Last rotation of each identity:')
  if (r.lastRotations.length === 0) lines.push('  none recorded in the audit ledger')
  else {
    lines.push(
      '',
      ...table(
        ['IDENTITY', 'TIME', 'REQUEST', 'ACTION', 'VERSIONS'],
        r.lastRotations.map((x) => [x.identity, x.time, x.requestId, x.action, versionChange(x)]),
      ),
    )
  }
  for (const w of r.warnings) lines.push(`Warning: ${w}`)
  return lines.join('\n')
}

/** Left-aligned columns two spaces apart; the last column is not padded. */
function table(head: string[], rows: string[][]): string[] {
  const all = [head, ...rows]
  const widths = head.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)))
  return all.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd(),
  )
}
