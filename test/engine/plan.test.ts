import { describe, expect, it } from 'vitest'
import { planExecution } from '../../src/engine/plan.js'
import type { ExecutableSpec, LedgerRecord } from '../../src/engine/ports.js'
import type { RecoveryRequest } from '../../src/spec/schema.js'

const NOW = new Date('2026-11-22T12:00:00Z')

function spec(id: string, expires = '2026-11-30T00:00:00Z'): ExecutableSpec {
  return {
    spec: { id, expires, action: 'rotate' } as RecoveryRequest,
    path: `recovery-specs/${id}.yaml`,
    sha256: 'a'.repeat(64),
    blob: 'b'.repeat(40),
  }
}

function record(r: Partial<LedgerRecord> & Pick<LedgerRecord, 'requestId' | 'outcome'>): LedgerRecord {
  return { action: 'rotate', provider: 'local', target: 'local:svc/key', time: '2026-11-21T00:00:00Z', ...r }
}

describe('planExecution', () => {
  it('runs a request the ledger has never seen', () => {
    const plan = planExecution([spec('rr-new')], [], NOW)
    expect(plan.run.map((x) => x.spec.id)).toEqual(['rr-new'])
  })

  it.each(['succeeded', 'rolled-back'] as const)('never runs a request again once it %s', (outcome) => {
    const plan = planExecution([spec('rr-done')], [record({ requestId: 'rr-done', outcome })], NOW)
    expect(plan.run).toEqual([])
    expect(plan.skip[0]).toMatchObject({
      reason: expect.stringContaining(`already ${outcome}`),
      audit: false,
    })
  })

  it.each(['failed', 'refused'] as const)('retries a request whose last run %s', (outcome) => {
    const plan = planExecution([spec('rr-again')], [record({ requestId: 'rr-again', outcome })], NOW)
    expect(plan.run.map((x) => x.spec.id)).toEqual(['rr-again'])
  })

  it('refuses an expired request and audits that refusal only once', () => {
    const expired = spec('rr-old', '2026-11-01T00:00:00Z')
    const first = planExecution([expired], [], NOW)
    expect(first.run).toEqual([])
    expect(first.skip[0]).toMatchObject({ reason: expect.stringContaining('expired'), audit: true })
    const again = planExecution(
      [expired],
      [record({ requestId: 'rr-old', outcome: 'refused', time: '2026-11-02T00:00:00Z' })],
      NOW,
    )
    expect(again.skip[0]!.audit).toBe(false)
  })

  it('retires a previous version once its retention has passed, and only once', () => {
    const rotated = record({
      requestId: 'rr-a',
      outcome: 'succeeded',
      versionBefore: '1',
      versionAfter: '2',
      retireAfter: '2026-11-22T11:00:00Z',
    })
    expect(planExecution([], [rotated], NOW).retire).toEqual([{ record: rotated, versionId: '1' }])
    const retired = record({ requestId: 'rr-a', action: 'retire', outcome: 'succeeded', versionBefore: '1' })
    expect(planExecution([], [rotated, retired], NOW).retire).toEqual([])
  })

  it('keeps a previous version whose retention has not passed yet', () => {
    const rotated = record({
      requestId: 'rr-a',
      outcome: 'succeeded',
      versionBefore: '1',
      retireAfter: '2026-11-23T00:00:00Z',
    })
    expect(planExecution([], [rotated], NOW).retire).toEqual([])
  })

  it('never retires a version that a rollback made current again', () => {
    const rotated = record({
      requestId: 'rr-a',
      outcome: 'succeeded',
      versionBefore: '1',
      versionAfter: '2',
      retireAfter: '2026-11-22T11:00:00Z',
    })
    const rolledBack = record({
      requestId: 'rr-b',
      action: 'rollback',
      outcome: 'succeeded',
      versionBefore: '2',
      versionAfter: '1',
    })
    expect(planExecution([], [rotated, rolledBack], NOW).retire).toEqual([])
  })
})
