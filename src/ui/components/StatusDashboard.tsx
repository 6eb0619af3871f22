/**
 * The `nhi-recover status` dashboard: requests grouped by state, then the last rotation of each
 * identity and anything status could not read. It shows ids, states and version ids only,
 * never a credential. Private to src/ui: reached through renderStatusDashboard.
 */
import { Box, Text } from 'ink'
import type { RequestState, StatusResult } from '../../engine/status.js'
import { groupByState, STATE_LABELS, stateCounts, versionChange } from '../../engine/status-report.js'

export interface StatusDashboardProps {
  result: StatusResult
}

const COLORS: Record<RequestState, string> = {
  'awaiting-approval': 'yellow',
  'approvals-unknown': 'magenta',
  approved: 'cyan',
  executing: 'blue',
  failed: 'red',
  'rolled-back': 'red',
  done: 'green',
  expired: 'gray',
  invalid: 'red',
}

const GROUP_TITLES: Record<RequestState, string> = {
  ...STATE_LABELS,
  'awaiting-approval': 'Awaiting approval',
  'approvals-unknown': 'Approvals unknown: not approved until they can be checked',
  approved: 'Approved, not yet executed',
  executing: 'Executing',
  failed: 'Failed',
  'rolled-back': 'Rolled back',
  done: 'Done',
  expired: 'Expired',
  invalid: 'Invalid',
}

export function StatusDashboard({ result }: StatusDashboardProps) {
  const idWidth = Math.max(0, ...result.requests.map((r) => r.requestId.length)) + 2
  const identityWidth = Math.max(0, ...result.requests.map((r) => (r.identity ?? '-').length)) + 2
  return (
    <Box flexDirection="column">
      <Text>
        <Text bold>nhi-recover status</Text>
        <Text dimColor>
          {'  '}
          {result.branch ?? 'detached'} @ {result.commit.slice(0, 12)}: {stateCounts(result.requests)}
        </Text>
      </Text>
      {groupByState(result.requests).map(([state, rows]) => (
        <Box key={state} flexDirection="column" marginTop={1}>
          <Text bold color={COLORS[state]}>
            {GROUP_TITLES[state]} ({rows.length})
          </Text>
          {rows.map((r) => (
            <Box key={r.path}>
              <Box width={idWidth + 2} flexShrink={0}>
                <Text>{'  ' + r.requestId}</Text>
              </Box>
              <Box width={identityWidth} flexShrink={0}>
                <Text>{r.identity ?? '-'}</Text>
              </Box>
              <Text dimColor={state === 'done' || state === 'expired'}>
                {state === 'approvals-unknown' ? `approvals unknown: ${r.detail}` : r.detail}
              </Text>
            </Box>
          ))}
        </Box>
      ))}
      <Box flexDirection="column" marginTop={1}>
        <Text bold>Last rotation of each identity</Text>
        {result.lastRotations.length === 0 ? (
          <Text dimColor>{'  '}none recorded in the audit ledger</Text>
        ) : (
          result.lastRotations.map((x) => (
            <Text key={x.identity}>
              {'  '}
              <Text bold>{x.identity}</Text> {x.action} at {x.time} by {x.requestId}
              <Text dimColor> (versions {versionChange(x)})</Text>
            </Text>
          ))
        )}
      </Box>
      {result.warnings.length > 0 ? (
        <Box flexDirection="column" marginTop={1}>
          {result.warnings.map((w) => (
            <Text key={w} color="yellow">
              Warning: {w}
            </Text>
          ))}
        </Box>
      ) : null}
    </Box>
  )
}
