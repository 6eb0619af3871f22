/**
 * The audit ledger's public surface, for the execution engine and the commands:
 * - appendEntries: chain, sign, commit and push events (fetch, re-chain and retry on a lost race);
 * - verifyLedger: the full offline check;
 * - AuditSigner: the signing-backend interface (implementations: providers/signers/).
 * The format is described in docs/audit-format.md.
 */
export { appendEntries, type AppendOptions, type AppendResult } from './append.js'
export { AuditEvent, AuditEntry, OUTCOMES, type Outcome } from './entry.js'
export type { AuditSigner } from './signer.js'
export { auditContext, type AuditContext } from './service.js'
export {
  loadAllowedSigners,
  verifyLedger,
  type LedgerProblem,
  type VerifyLedgerOptions,
  type VerifyLedgerResult,
} from './verify.js'
