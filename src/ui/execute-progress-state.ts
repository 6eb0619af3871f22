/**
 * What the live execute view shows, folded from the engine's ExecuteEvent stream. Pure: the
 * view renders a bounded snapshot, so a run of thousands of requests draws only a few rows.
 */
import type { ExecuteEvent } from '../engine/execute.js'

export interface ProgressRow {
  requestId: string
  /** The last step seen (gate, lock, prepare, verify, promote, retire, ...). */
  step: string
  detail: string
  outcome?: string
  reason?: string
}

export interface ProgressState {
  planned?: { run: number; skipped: number; retire: number }
  rows: Map<string, ProgressRow>
  skipped: number
}

export interface ProgressView {
  planned?: ProgressState['planned']
  /** Requests still running, in the order they started. */
  active: ProgressRow[]
  /** The most recently finished requests, failures first. */
  finished: ProgressRow[]
  /** Rows left out to keep the view small. */
  hidden: number
  counts: Record<string, number>
}

export function emptyProgress(): ProgressState {
  return { rows: new Map(), skipped: 0 }
}

/** Applies one event in place; returns the same state. */
export function applyEvent(state: ProgressState, e: ExecuteEvent): ProgressState {
  if (e.type === 'planned') {
    state.planned = { run: e.run, skipped: e.skipped, retire: e.retire }
    return state
  }
  if (e.type === 'done' && e.outcome === 'skipped') {
    state.skipped++
    return state
  }
  const row = state.rows.get(e.requestId) ?? { requestId: e.requestId, step: '', detail: '' }
  if (e.type === 'step') {
    row.step = e.step
    row.detail = e.detail
  } else {
    row.outcome = e.outcome
    row.reason = e.reason
  }
  // Re-insert so the Map's order is the order of the latest change.
  state.rows.delete(e.requestId)
  state.rows.set(e.requestId, row)
  return state
}

const GOOD = new Set(['succeeded', 'held'])

/** A bounded snapshot for the view: at most `maxRows` rows, active ones first. */
export function progressView(state: ProgressState, maxRows = 12): ProgressView {
  const rows = [...state.rows.values()]
  const active = rows.filter((r) => !r.outcome)
  const done = rows.filter((r) => r.outcome)
  const counts: Record<string, number> = {}
  for (const r of done) counts[r.outcome!] = (counts[r.outcome!] ?? 0) + 1
  if (state.skipped > 0) counts.skipped = state.skipped
  const shownActive = active.slice(0, maxRows)
  const room = maxRows - shownActive.length
  // Failures stay in view longer than successes: they are what a person must act on.
  const bad = done.filter((r) => !GOOD.has(r.outcome!))
  const good = done.filter((r) => GOOD.has(r.outcome!))
  const shownBad = room > 0 ? bad.slice(-room) : []
  const goodRoom = room - shownBad.length
  const finished = [...shownBad, ...(goodRoom > 0 ? good.slice(-goodRoom) : [])]
  return {
    ...(state.planned ? { planned: state.planned } : {}),
    active: shownActive,
    finished,
    hidden: rows.length - shownActive.length - finished.length,
    counts,
  }
}
