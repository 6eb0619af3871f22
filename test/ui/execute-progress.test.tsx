import { EventEmitter } from 'node:events'
import { stripVTControlCharacters } from 'node:util'
import { render } from 'ink-testing-library'
import { describe, expect, it } from 'vitest'
import type { ExecuteEvent } from '../../src/engine/execute.js'
import { ExecuteProgress } from '../../src/ui/components/ExecuteProgress.js'
import { applyEvent, emptyProgress, progressView } from '../../src/ui/execute-progress-state.js'
import { renderExecuteProgress } from '../../src/ui/execute-progress.js'
import { Secret } from '../../src/secret.js'

/** The events of a run in which one request rotates, one is refused and one is still promoting. */
const RUN: ExecuteEvent[] = [
  { type: 'planned', run: 3, skipped: 1, retire: 0 },
  { type: 'done', requestId: 'rr-old-0000', outcome: 'skipped', reason: 'already succeeded at 2026-03-01' },
  { type: 'step', requestId: 'rr-billing-0001', step: 'gate', detail: 'approved (tier low)' },
  { type: 'step', requestId: 'rr-payments-0002', step: 'gate', detail: 'approved (tier low)' },
  {
    type: 'done',
    requestId: 'rr-mail-0003',
    outcome: 'refused',
    reason: 'blocked by the approval gate: needs 2 approvals, has 1',
  },
  { type: 'step', requestId: 'rr-billing-0001', step: 'prepare', detail: 'staged version 2' },
  { type: 'step', requestId: 'rr-payments-0002', step: 'prepare', detail: 'staged version 5' },
  { type: 'step', requestId: 'rr-billing-0001', step: 'verify', detail: 'version 2 verified' },
  {
    type: 'step',
    requestId: 'rr-billing-0001',
    step: 'promote',
    detail: 'version 2 is current, version 1 is previous',
  },
  { type: 'step', requestId: 'rr-billing-0001', step: 'retire', detail: 'version 1 retired' },
  { type: 'done', requestId: 'rr-billing-0001', outcome: 'succeeded', reason: 'rotate completed' },
  { type: 'step', requestId: 'rr-payments-0002', step: 'verify', detail: 'version 5 verified' },
]

const fold = (events: ExecuteEvent[]) => events.reduce(applyEvent, emptyProgress())

describe('execute progress view', () => {
  it('shows what is checked before the plan is known', () => {
    const ui = render(<ExecuteProgress view={progressView(emptyProgress())} />)
    expect(ui.lastFrame()).toMatchInlineSnapshot(
      `"nhi-recover execute  checking the specs, the ledger and the approvals…"`,
    )
    ui.unmount()
  })

  it('shows each running request at its current step, then the outcomes so far', () => {
    const ui = render(<ExecuteProgress view={progressView(fold(RUN))} />)
    expect(ui.lastFrame()).toMatchInlineSnapshot(`
      "nhi-recover execute  3 to run, 1 skipped, 0 due to retire
        rr-payments-0002  verify     version 5 verified
        rr-mail-0003      REFUSED    blocked by the approval gate: needs 2 approvals, has 1
        rr-billing-0001   SUCCEEDED  rotate completed
      1 refused, 1 succeeded, 1 skipped"
    `)
    ui.unmount()
  })

  it('stays small in a run of a thousand requests and keeps the failures in view', () => {
    // Given 1,000 requests that succeeded and two that failed early on
    const events: ExecuteEvent[] = [{ type: 'planned', run: 1002, skipped: 0, retire: 0 }]
    for (const n of [1, 2]) {
      events.push({
        type: 'done',
        requestId: `rr-bad-${n}`,
        outcome: 'failed',
        reason: 'PROVIDER_DOWN: no answer',
      })
    }
    for (let i = 0; i < 1000; i++) {
      events.push({
        type: 'done',
        requestId: `rr-ok-${String(i).padStart(4, '0')}`,
        outcome: 'succeeded',
        reason: 'rotate completed',
      })
    }
    // When the view is drawn
    const view = progressView(fold(events), 6)
    // Then it holds 6 rows, the failures first, and counts the rest
    expect([...view.active, ...view.finished].map((r) => r.requestId)).toEqual([
      'rr-bad-1',
      'rr-bad-2',
      'rr-ok-0996',
      'rr-ok-0997',
      'rr-ok-0998',
      'rr-ok-0999',
    ])
    expect(view.hidden).toBe(996)
    expect(view.counts).toEqual({ failed: 2, succeeded: 1000 })
  })

  it('draws live on a terminal, leaves the final frame, and scrubs any secret value from it', async () => {
    // Given a terminal and a credential this process holds
    const term = new FakeTerminal()
    const canary = new Secret('canary-progress-value-8f3e1d2c')
    const live = renderExecuteProgress({ stdout: term as unknown as NodeJS.WriteStream, intervalMs: 1 })
    // When the events of a run arrive, one of them quoting the value by mistake
    for (const e of RUN) live.onEvent(e)
    live.onEvent({
      type: 'done',
      requestId: 'rr-payments-0002',
      outcome: 'failed',
      reason: `bad answer ${canary.reveal()}`,
    })
    await live.stop()
    // Then the last frame shows every outcome, and the value only as [REDACTED]
    const out = stripVTControlCharacters(term.written)
    // (ink redraws only what changed, so a line may arrive in pieces)
    expect(out).toMatch(/rr-billing-0001.*SUCCEEDED {2}rotate completed/)
    expect(out).toContain('rr-payments-0002  FAILED     bad answer [REDACTED]')
    expect(out).toContain('1 refused, 1 succeeded, 1 failed, 1 skipped')
    expect(out).not.toContain(canary.reveal())
    canary.dispose()
  })
})

/** Just enough of a TTY write stream for ink. */
class FakeTerminal extends EventEmitter {
  readonly isTTY = true
  readonly columns = 100
  readonly rows = 40
  written = ''
  write(chunk: string): boolean {
    this.written += chunk
    return true
  }
}
