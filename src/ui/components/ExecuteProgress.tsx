/**
 * The live view of `nhi-recover execute` in a terminal: each running request and its current
 * step, then the latest outcomes. It shows ids, steps and version ids only, never a credential.
 * Private to src/ui: reached through renderExecuteProgress.
 */
import { Box, Text } from 'ink'
import type { ProgressRow, ProgressView } from '../execute-progress-state.js'

export interface ExecuteProgressProps {
  view: ProgressView
}

const OUTCOME_COLORS: Record<string, string> = {
  succeeded: 'green',
  held: 'yellow',
  refused: 'red',
  failed: 'red',
  'rolled-back': 'red',
}

export function ExecuteProgress({ view }: ExecuteProgressProps) {
  const width = Math.max(0, ...[...view.active, ...view.finished].map((r) => r.requestId.length)) + 2
  const counts = Object.entries(view.counts)
  return (
    <Box flexDirection="column">
      <Text bold>
        nhi-recover execute
        {view.planned ? (
          <Text dimColor>
            {'  '}
            {view.planned.run} to run, {view.planned.skipped} skipped, {view.planned.retire} due to retire
          </Text>
        ) : (
          <Text dimColor>{'  '}checking the specs, the ledger and the approvals…</Text>
        )}
      </Text>
      {view.active.map((r) => (
        <Row key={r.requestId} row={r} width={width} />
      ))}
      {view.finished.map((r) => (
        <Row key={r.requestId} row={r} width={width} />
      ))}
      {view.hidden > 0 ? (
        <Text dimColor>
          {'  '}… {view.hidden} more (see the summary)
        </Text>
      ) : null}
      {counts.length > 0 ? (
        <Text dimColor>{counts.map(([outcome, n]) => `${n} ${outcome}`).join(', ')}</Text>
      ) : null}
    </Box>
  )
}

function Row({ row, width }: { row: ProgressRow; width: number }) {
  return (
    <Box>
      <Box width={width + 2} flexShrink={0}>
        <Text>{'  ' + row.requestId}</Text>
      </Box>
      {row.outcome ? (
        <Text>
          <Text bold color={OUTCOME_COLORS[row.outcome] ?? 'white'}>
            {row.outcome.toUpperCase().padEnd(11)}
          </Text>
          {row.reason}
        </Text>
      ) : (
        <Text>
          <Text color="cyan">{row.step.padEnd(11)}</Text>
          {row.detail}
        </Text>
      )}
    </Box>
  )
}
