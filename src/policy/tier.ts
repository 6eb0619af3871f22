/** Which policy tier applies to a subject. Escalation may raise the tier, never lower it. */
import { RISKS, type RepoConfig, type Risk, type Tier } from '../spec/schema.js'
import type { Subject } from './types.js'

const RANK: Record<Risk, number> = { low: 0, medium: 1, high: 2, critical: 3 }

type Escalation = RepoConfig['policy']['escalation'][number]

/** The highest tier the config defines. */
export function highestTier(config: RepoConfig): Risk | undefined {
  for (let i = RISKS.length - 1; i >= 0; i--) if (config.policy.tiers[RISKS[i]!]) return RISKS[i]
  return undefined
}

function matches(rule: Escalation, subject: Extract<Subject, { kind: 'request' }>): boolean {
  const spec = subject.spec
  const w = rule.when
  if (w.identityType !== undefined && w.identityType !== spec.identity.type) return false
  if (w.mechanism !== undefined && w.mechanism !== spec.target.mechanism) return false
  if (w.provider !== undefined && w.provider !== spec.target.provider) return false
  if (w.action !== undefined && w.action !== spec.action) return false
  if (w.requesterKind !== undefined && w.requesterKind !== spec.requester.kind) return false
  if (w.owner !== undefined && w.owner !== spec.identity.owner) return false
  return true
}

function describeRule(rule: Escalation): string {
  if (rule.reason) return rule.reason
  const parts = Object.entries(rule.when).map(([k, v]) => `${k} is ${String(v)}`)
  return `an escalation rule matches (${parts.join(', ')})`
}

export type TierResult =
  | { ok: true; risk: Risk; tier: Tier; because: string[] }
  | { ok: false; risk: Risk | undefined; because: string[]; reason: string }

/** Resolves the tier of a subject under the config in force, with how it got there in words. */
export function resolveTier(
  subject: Subject,
  config: RepoConfig,
  policyChanges: readonly string[],
): TierResult {
  const because: string[] = []
  let risk: Risk | undefined
  if (subject.kind === 'request') {
    risk = subject.spec.identity.risk
    because.push(`the identity's risk is ${risk}`)
    for (const rule of config.policy.escalation) {
      if (matches(rule, subject) && RANK[rule.minTier] > RANK[risk]) {
        risk = rule.minTier
        because.push(`raised to ${risk}: ${describeRule(rule)}`)
      }
    }
  }
  const top = highestTier(config)
  if (subject.kind === 'policy-file') {
    risk = top
    because.push(`changes to ${subject.path} need the highest tier`)
  } else if (policyChanges.length > 0 && top && risk !== top) {
    risk = top
    because.push(`raised to ${top}, the highest tier: this change also edits ${policyChanges.join(' and ')}`)
  }
  const tier = risk ? config.policy.tiers[risk] : undefined
  if (!risk || !tier) {
    return {
      ok: false,
      risk,
      because,
      reason: `the base branch's nhi-recover.yaml defines no policy tier ${risk ?? 'at all'}, so nothing can approve this`,
    }
  }
  return { ok: true, risk, tier, because }
}
