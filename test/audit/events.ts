/** Audit events as the execution engine would report them. */
import { createHash } from 'node:crypto'
import type { AuditEvent } from '../../src/audit/entry.js'

const sha = (s: string) => createHash('sha256').update(s).digest('hex')
const oid = (s: string) => createHash('sha1').update(s).digest('hex')

/** The i-th event of a test run; identity, provider and outcome vary with i. */
export function sampleEvent(i: number, over: Partial<AuditEvent> = {}): AuditEvent {
  const identity = ['payments-api', 'billing-worker', 'ci-deployer'][i % 3]!
  return {
    request: {
      id: `rr-${identity}-${String(i).padStart(4, '0')}`,
      identity,
      specPath: `recovery-specs/rr-${identity}-${i}.yaml`,
      specSha256: sha(`spec ${i}`),
    },
    action: 'rotate',
    provider: i % 2 ? 'bao' : 'local',
    target: i % 2 ? `kv-v2:secret/${identity}#value` : `local:${identity}/api-key`,
    credential: { versionBefore: String(i), versionAfter: String(i + 1) },
    outcome: { status: 'succeeded', reason: 'rotated, verified and promoted' },
    approvals: [
      {
        approver: 'alice',
        backend: 'github',
        commit: oid(`c${i}`),
        specBlob: oid(`b${i}`),
        at: '2025-06-01T10:00:00.000Z',
      },
      {
        approver: 'bob',
        backend: 'ssh',
        commit: oid(`c${i}`),
        specBlob: oid(`b${i}`),
        at: '2025-06-01T10:05:00.000Z',
      },
    ],
    policy: { tier: 'high', configSha256: sha('config') },
    executor: { runId: `gha-${1000 + i}`, actor: 'nhi-recover-executor' },
    ...over,
  }
}
