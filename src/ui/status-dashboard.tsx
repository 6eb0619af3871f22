/** Entry point of the status dashboard. Imported lazily: ink and React load only when it renders. */
import { renderToString } from 'ink'
import type { StatusResult } from '../engine/status.js'
import { StatusDashboard } from './components/StatusDashboard.js'

/** The dashboard as text for a terminal `columns` wide; the command prints it through its scrubbed output. */
export function renderStatusDashboard(result: StatusResult, opts: { columns: number }): string {
  return renderToString(<StatusDashboard result={result} />, { columns: opts.columns })
}
