/**
 * The approval gate as `execute` calls it after merge: each spec is judged again at the merge
 * that last changed it, and must be byte for byte the content that will execute.
 */
import type { ApprovalGate, ExecutableSpec, GateDecision } from '../engine/ports.js'
import type { ForgeFactory } from './forge.js'
import { checkApprovals } from './gate.js'

export interface ExecutionGateOptions {
  cwd: string
  /** The commit that executes (default HEAD). */
  commit?: string
  now: () => Date
  forgeFactory?: ForgeFactory
  /** The identity running execute (e.g. github-actions[bot]); it never counts as an approver. */
  executors?: string[]
}

/** An ApprovalGate over checkApprovals; a forge outage throws, so execute blocks the request. */
export function executionGate(opts: ExecutionGateOptions): ApprovalGate {
  return {
    async evaluate(x: ExecutableSpec): Promise<GateDecision> {
      const res = await checkApprovals({
        cwd: opts.cwd,
        commit: opts.commit ?? 'HEAD',
        paths: [x.path],
        now: opts.now(),
        ...(opts.forgeFactory ? { forgeFactory: opts.forgeFactory } : {}),
        ...(opts.executors ? { executors: opts.executors } : {}),
      })
      const s = res.subjects.find((r) => r.subject.path === x.path)
      const blocked = (reason: string): GateDecision => ({
        allowed: false,
        tier: x.spec.identity.risk,
        reasons: [reason],
        evidence: [],
      })
      if (!s) return blocked(`the approval gate did not judge ${x.path}`)
      if (s.sha256 !== x.sha256) {
        return blocked(
          `the spec that would execute (sha256 ${x.sha256.slice(0, 12)}…) is not the one the gate judged (sha256 ${s.sha256.slice(0, 12)}…)`,
        )
      }
      return {
        allowed: s.allowed,
        tier: s.tier.risk ?? x.spec.identity.risk,
        reasons: s.reasons,
        evidence: s.approvals
          .filter((a) => a.counted)
          .map((a) => ({
            approver: a.approver,
            backend: a.backend,
            commit: a.commit ?? s.commit,
            specBlob: x.blob,
            at: a.at ?? '',
          })),
      }
    },
  }
}
