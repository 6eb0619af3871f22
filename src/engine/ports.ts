/**
 * What the execution engine needs from the outside, as small interfaces. The engine's core
 * (plan, run-request) depends only on these; the execute service wires real implementations.
 */
import type { RecoveryRequest, Risk } from '../spec/schema.js'
import type { SecretStore } from './secret-store.js'

export type Outcome = 'succeeded' | 'failed' | 'rolled-back' | 'refused'

/** One approval that counted, as the audit entry records it. */
export interface ApprovalEvidence {
  approver: string
  backend: 'github' | 'ssh'
  commit: string
  specBlob: string
  at: string
}

export interface GateDecision {
  allowed: boolean
  tier: Risk
  /** Every reason, in words a reviewer understands. */
  reasons: string[]
  evidence: ApprovalEvidence[]
}

/** A spec as it will execute: the exact bytes and where they came from. */
export interface ExecutableSpec {
  spec: RecoveryRequest
  /** Repo-relative path, e.g. recovery-specs/rr-x.yaml. */
  path: string
  sha256: string
  /** Git blob id of the spec at the executed commit. */
  blob: string
}

export interface ApprovalGate {
  /**
   * Optional batching: judge all these specs up front (one gate run per merge, not per spec),
   * so that `evaluate` answers from the result. It must not decide anything by itself: a
   * failure here is raised again by `evaluate` for the specs it concerns.
   */
  prepare?(specs: readonly ExecutableSpec[]): Promise<void>
  /** Re-checks approvals for the exact spec content; fails closed (blocked) on any doubt. */
  evaluate(spec: ExecutableSpec): Promise<GateDecision>
}

/** What the audit ledger says already happened to a request. */
export interface LedgerRecord {
  requestId: string
  outcome: Outcome
  action: RecoveryRequest['action'] | 'retire'
  provider: string
  target: string
  versionBefore?: string
  versionAfter?: string
  /** When the previous version may be retired (succeeded rotations only). */
  retireAfter?: string
  time: string
}

/** An entry for the ledger; it assigns sequence, time, hashes and signature. */
export interface AuditDraft {
  requestId: string
  /** Name of the identity whose credential changed. */
  identity: string
  specPath: string
  specSha256: string
  action: RecoveryRequest['action'] | 'retire'
  provider: string
  target: string
  versionBefore?: string
  versionAfter?: string
  outcome: Outcome
  reason: string
  approvals: ApprovalEvidence[]
  tier?: Risk
  retireAfter?: string
}

export interface Ledger {
  /** Every recorded entry, oldest first. */
  records(): Promise<LedgerRecord[]>
  /** Appends the drafts in one signed commit and pushes it (retrying a raced push). */
  append(drafts: AuditDraft[]): Promise<{ commit?: string; entries: number }>
}

export interface LockLease {
  requestId: string
  /** Set when this run took over a lock whose holder's lease had expired. */
  tookOverFrom?: { holder: string; expired: string }
}

export interface Locks {
  /** Takes the locks it can; requests held by a live executor are returned in `held`. */
  acquire(
    requestIds: string[],
  ): Promise<{ leases: LockLease[]; held: Array<{ requestId: string; holder: string; expires: string }> }>
  release(leases: LockLease[]): Promise<void>
}

export interface SecretStores {
  /** The adapter for a provider named in nhi-recover.yaml, created on first use. */
  get(provider: string): Promise<SecretStore>
}
