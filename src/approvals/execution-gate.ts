/**
 * The approval gate as `execute` calls it after merge: each spec is judged again at the merge
 * that last changed it, and must be byte for byte the content that will execute.
 */
import type { ApprovalGate, ExecutableSpec, GateDecision } from '../engine/ports.js'
import type { ForgeFactory } from './forge.js'
import { lastFirstParentChanges } from '../git/history.js'
import { checkApprovals, type GateResult } from './gate.js'

export interface ExecutionGateOptions {
  cwd: string
  /** The commit that executes (default HEAD). */
  commit?: string
  now: () => Date
  forgeFactory?: ForgeFactory
  /** The identity running execute (e.g. github-actions[bot]); it never counts as an approver. */
  executors?: string[]
}

type Judged = { result: GateResult } | { error: unknown }

/**
 * An ApprovalGate over checkApprovals; a forge outage throws, so execute blocks the request.
 * `prepare` judges many specs with one gate run per merge, and `evaluate` then answers from
 * those runs; a merge whose run failed throws its error for each of its specs, so one merge's
 * outage blocks only its own requests.
 */
export function executionGate(opts: ExecutionGateOptions): ApprovalGate {
  const judged = new Map<string, Judged>()
  const check = (paths: string[]) =>
    checkApprovals({
      cwd: opts.cwd,
      commit: opts.commit ?? 'HEAD',
      paths,
      now: opts.now(),
      ...(opts.forgeFactory ? { forgeFactory: opts.forgeFactory } : {}),
      ...(opts.executors ? { executors: opts.executors } : {}),
    })
  return {
    async prepare(specs: readonly ExecutableSpec[]): Promise<void> {
      const paths = specs.map((x) => x.path)
      const merges = await lastFirstParentChanges(opts.cwd, opts.commit ?? 'HEAD', paths)
      const groups = new Map<string, string[]>()
      for (const p of paths) {
        const at = merges.get(p)
        if (!at) continue // evaluate asks the gate alone, which names the problem.
        const group = groups.get(at)
        if (group) group.push(p)
        else groups.set(at, [p])
      }
      for (const group of groups.values()) {
        let judgement: Judged
        try {
          judgement = { result: await check(group) }
        } catch (error) {
          judgement = { error }
        }
        for (const p of group) judged.set(p, judgement)
      }
    },
    async evaluate(x: ExecutableSpec): Promise<GateDecision> {
      const prepared = judged.get(x.path)
      if (prepared && 'error' in prepared) throw prepared.error
      return decide(x, prepared ? prepared.result : await check([x.path]))
    },
  }
}

function decide(x: ExecutableSpec, res: GateResult): GateDecision {
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
}
