import { render } from 'ink-testing-library'
import { describe, expect, it } from 'vitest'
import { StatusDashboard } from '../../src/ui/components/StatusDashboard.js'
import { renderStatusDashboard } from '../../src/ui/status-dashboard.js'
import type { RequestStatus, StatusResult } from '../../src/engine/status.js'

const base = (id: string, identity: string): Omit<RequestStatus, 'state' | 'detail'> => ({
  requestId: id,
  path: `recovery-specs/${id}.yaml`,
  identity,
  action: 'rotate',
  provider: 'local',
  target: `local:${identity}`,
  expires: '2026-03-11T05:06:07Z',
})

/** One request in each state a person meets, as the service reports them. */
const RESULT: StatusResult = {
  commit: '4f2a9c1e0b7d3a5f6e8c9b0a1d2e3f4a5b6c7d8e',
  branch: 'main',
  now: '2026-03-05T10:00:00.000Z',
  requests: [
    {
      ...base('rr-billing-0001', 'billing-key'),
      state: 'awaiting-approval',
      detail: 'needs 2 approvals, has 0',
    },
    {
      ...base('rr-ledger-0002', 'ledger-key'),
      state: 'approvals-unknown',
      detail:
        'Blocked: GitHub (https://ghe.example) did not answer within 10s. Approvals cannot be checked, so none count.',
    },
    {
      ...base('rr-payments-0003', 'payments-key'),
      state: 'approved',
      detail: 'tier low approvals complete; the next execute runs it',
    },
    {
      ...base('rr-search-0004', 'search-key'),
      state: 'executing',
      detail: 'held by ci@runner:17.1 until 2026-03-05T10:15:00.000Z',
      lock: { holder: 'ci@runner:17.1', expires: '2026-03-05T10:15:00.000Z', expired: false },
    },
    {
      ...base('rr-mail-0005', 'mail-key'),
      state: 'failed',
      detail:
        'failed at 2026-03-05T09:00:00.000Z: VERIFY_FAILED: the new key was refused; the next execute tries again',
    },
    {
      ...base('rr-payments-0000', 'payments-key'),
      state: 'done',
      detail: 'succeeded at 2026-03-01T08:00:00.000Z: rotate completed',
    },
    {
      ...base('rr-old-0006', 'old-key'),
      state: 'expired',
      detail: 'expired at 2026-02-01T00:00:00Z; file a new request',
    },
  ],
  lastRotations: [
    {
      identity: 'payments-key',
      requestId: 'rr-payments-0000',
      action: 'rotate',
      provider: 'local',
      target: 'local:payments-key',
      time: '2026-03-01T08:00:00.000Z',
      versionBefore: '3',
      versionAfter: '4',
    },
  ],
  warnings: ['could not read the ledger on origin; done, failed and rolled-back come from this clone only'],
}

describe('status dashboard', () => {
  it('groups requests by state, shows the last rotation of each identity and what could not be read', () => {
    const ui = render(<StatusDashboard result={RESULT} />)
    expect(ui.lastFrame()).toMatchInlineSnapshot(`
      "nhi-recover status  main @ 4f2a9c1e0b7d: 1 awaiting approval, 1 approvals unknown, 1 approved, 1
      executing, 1 failed, 1 done, 1 expired

      Awaiting approval (1)
        rr-billing-0001   billing-key   needs 2 approvals, has 0

      Approvals unknown: not approved until they can be checked (1)
        rr-ledger-0002    ledger-key    approvals unknown: Blocked: GitHub (https://ghe.example) did not
                                        answer within 10s. Approvals cannot be checked, so none count.

      Approved, not yet executed (1)
        rr-payments-0003  payments-key  tier low approvals complete; the next execute runs it

      Executing (1)
        rr-search-0004    search-key    held by ci@runner:17.1 until 2026-03-05T10:15:00.000Z

      Failed (1)
        rr-mail-0005      mail-key      failed at 2026-03-05T09:00:00.000Z: VERIFY_FAILED: the new key was
                                         refused; the next execute tries again

      Done (1)
        rr-payments-0000  payments-key  succeeded at 2026-03-01T08:00:00.000Z: rotate completed

      Expired (1)
        rr-old-0006       old-key       expired at 2026-02-01T00:00:00Z; file a new request

      Last rotation of each identity
        payments-key rotate at 2026-03-01T08:00:00.000Z by rr-payments-0000 (versions 3 → 4)

      Warning: could not read the ledger on origin; done, failed and rolled-back come from this clone only"
    `)
    ui.unmount()
  })

  it('says so when nothing is filed and nothing ever rotated', () => {
    const ui = render(
      <StatusDashboard result={{ ...RESULT, requests: [], lastRotations: [], warnings: [] }} />,
    )
    expect(ui.lastFrame()).toMatchInlineSnapshot(`
      "nhi-recover status  main @ 4f2a9c1e0b7d: no requests

      Last rotation of each identity
        none recorded in the audit ledger"
    `)
    ui.unmount()
  })

  it('renders to the same text the command prints', () => {
    const ui = render(<StatusDashboard result={RESULT} />)
    expect(renderStatusDashboard(RESULT, { columns: 100 })).toBe(ui.lastFrame())
    ui.unmount()
  })
})
