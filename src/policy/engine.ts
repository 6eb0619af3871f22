/**
 * The policy engine: from a subject, the config in force and the evidence, decide allowed or
 * blocked, with every reason in words. Pure: no I/O, no clock (the time is an input), so it is
 * tested as tables and can judge ten thousand requests in well under a second.
 */
import { parseDuration } from '../time.js'
import type { Tier } from '../spec/schema.js'
import { resolveTier } from './tier.js'
import {
  membershipKey,
  type ApprovalView,
  type Backend,
  type BackendOutcome,
  type Decision,
  type GitHubReview,
  type PolicyInput,
  type SshApproval,
} from './types.js'

/** Associations of people who can push to the repository; anyone else's review is just a comment. */
const TRUSTED_ASSOCIATIONS = new Set(['OWNER', 'MEMBER', 'COLLABORATOR'])
/** Review states that set a reviewer's verdict; COMMENTED and PENDING leave it as it was, as on GitHub. */
const VERDICTS = new Set(['APPROVED', 'CHANGES_REQUESTED', 'DISMISSED'])
/** Signed approvals dated further ahead than this are refused. */
const CLOCK_SKEW_MS = 5 * 60 * 1000

/** One approval that passed every check except team membership. */
interface Counted {
  backend: Backend
  approver: string
  view: ApprovalView
}

interface Judged {
  decision: Decision
  counted: Counted[]
  tier: Tier | undefined
  backends: Backend[]
}

/** Subject id: the request id, or policy:PATH for a policy file. */
export function subjectId(input: Pick<PolicyInput, 'subject'>): string {
  return input.subject.kind === 'request' ? input.subject.spec.id : `policy:${input.subject.path}`
}

/** The evidence backends a tier requires. */
export function requiredBackends(tier: Tier): Backend[] {
  const out = new Set<Backend>(tier.backends)
  if (tier.signed) out.add('ssh')
  return [...out].sort()
}

/** Decides one subject. */
export function evaluatePolicy(input: PolicyInput): Decision {
  return judge(input).decision
}

/**
 * The team lookups that could still change the decision: for each team short of its minimum,
 * as many not-yet-looked-up approvers as it is short. The caller looks them up and asks again
 * until this is empty, so a satisfied team costs no further requests.
 */
export function membershipQueries(input: PolicyInput): { team: string; login: string }[] {
  if (input.teamsUnavailable) return []
  const { counted, tier, backends } = judge(input)
  if (!tier) return []
  const out = new Map<string, { team: string; login: string }>()
  for (const backend of backends) {
    const mine = counted.filter((c) => c.backend === backend)
    for (const { team, min } of tier.teams) {
      let active = 0
      const unknown: string[] = []
      for (const c of mine) {
        const m = input.memberships.get(membershipKey(team, c.approver))
        if (m === 'active') active++
        else if (m === undefined) unknown.push(c.approver)
      }
      for (const login of unknown.slice(0, Math.max(0, min - active))) {
        out.set(membershipKey(team, login), { team, login })
      }
    }
  }
  return [...out.values()]
}

function judge(input: PolicyInput): Judged {
  const { subject, config, now } = input
  const id = subjectId(input)
  const noun = subject.kind === 'request' ? 'the spec' : subject.path
  const reasons: string[] = []
  const base: Decision = {
    subject: { kind: subject.kind, path: subject.path, id },
    allowed: false,
    tier: { risk: undefined, because: [] },
    required: undefined,
    backends: [],
    approvals: [],
    reasons,
  }

  const resolved = resolveTier(subject, config, input.policyChanges)
  base.tier = { risk: resolved.risk, because: resolved.because }
  if (!resolved.ok) {
    reasons.push(resolved.reason)
    return { decision: base, counted: [], tier: undefined, backends: [] }
  }
  const { tier, risk } = resolved
  const backends = requiredBackends(tier)
  const maxAgeMs = parseDuration(tier.maxAge)
  base.required = {
    approvals: tier.approvals,
    teams: tier.teams.map((t) => ({ team: t.team, min: t.min })),
    backends,
    maxAge: tier.maxAge,
  }

  const expires = subject.kind === 'request' ? Date.parse(subject.spec.expires) : Infinity
  if (expires <= now.getTime() && subject.kind === 'request') {
    reasons.push(`the request expired on ${subject.spec.expires}; file a new request with "nhi-recover new"`)
  }

  const excluded = exclusions(input)
  const blockers: string[] = []
  const explanations: string[] = []
  const counted: Counted[] = []

  /** Checks common to both backends once an approval is authentic and on the right content. */
  const timely = (who: string, at: string | undefined, what: string): string | undefined => {
    const t = at === undefined ? NaN : Date.parse(at)
    if (Number.isNaN(t)) return `${what} has no valid time`
    if (t > now.getTime() + CLOCK_SKEW_MS) return `${what} is dated in the future (${at})`
    if (t > expires) return `${who} approved after the request expired`
    const age = now.getTime() - t
    if (age > maxAgeMs) {
      return `${what} is ${formatAge(age)} old; the ${risk} tier accepts approvals up to ${tier.maxAge} old`
    }
    return undefined
  }

  for (const backend of backends) {
    const evidence = backend === 'github' ? input.github : input.ssh
    if ('missing' in evidence) {
      blockers.push(evidence.missing)
      continue
    }
    if (backend === 'github') {
      judgeReviews(evidence.items as GitHubReview[])
    } else {
      judgeStatements(evidence.items as SshApproval[])
    }
  }

  function judgeReviews(reviews: GitHubReview[]): void {
    const ordered = [...reviews].sort(
      (a, b) => (a.submittedAt ?? '').localeCompare(b.submittedAt ?? '') || a.id - b.id,
    )
    const latest = new Map<string, GitHubReview>()
    for (const r of ordered) if (VERDICTS.has(r.state)) latest.set(r.reviewer.toLowerCase(), r)
    for (const r of [...latest.values()].sort((a, b) => a.reviewer.localeCompare(b.reviewer))) {
      const who = r.reviewer
      const view: ApprovalView = {
        backend: 'github',
        approver: who,
        at: r.submittedAt,
        commit: r.commitId,
        counted: false,
        teams: [],
        notes: [],
      }
      base.approvals.push(view)
      const note = (text: string, blocking = false) => {
        view.notes.push(text)
        ;(blocking ? blockers : explanations).push(text)
      }
      const ineligible = excluded(who, { type: r.reviewerType, association: r.association })
      if (r.state === 'DISMISSED') {
        note(`${who}'s review was dismissed`)
        continue
      }
      if (r.state === 'CHANGES_REQUESTED') {
        if (ineligible) note(`${ineligible}, so ${who}'s request for changes doesn't block`)
        else
          note(`${who} requested changes; that blocks until ${who} approves or the review is dismissed`, true)
        continue
      }
      if (ineligible) {
        note(`${ineligible}, so ${who}'s approval doesn't count`)
        continue
      }
      if (r.subjectSha256AtCommit === undefined) {
        note(
          `${who}'s approval is on commit ${short(r.commitId)}, which is not in this clone's history (fetch the full history)`,
        )
        continue
      }
      if (r.subjectSha256AtCommit !== input.subjectSha256) {
        note(`${who}'s approval is on an older version of ${noun}`)
        continue
      }
      const late = timely(who, r.submittedAt, `${who}'s approval`)
      if (late) {
        note(late)
        continue
      }
      view.counted = true
      counted.push({ backend: 'github', approver: who, view })
    }
  }

  function judgeStatements(approvals: SshApproval[]): void {
    const best = new Map<string, Counted>()
    for (const a of [...approvals].sort((x, y) => x.file.localeCompare(y.file))) {
      const s = a.statement
      const claimed = s?.approver ?? '(unknown)'
      const view: ApprovalView = {
        backend: 'ssh',
        approver: claimed,
        at: s?.time,
        counted: false,
        teams: [],
        notes: [],
      }
      const note = (text: string) => {
        view.notes.push(text)
        explanations.push(text)
      }
      base.approvals.push(view)
      if (!s) {
        note(`${a.file} is not an approval statement: ${a.problem ?? 'unreadable'}`)
        continue
      }
      if (!a.signature.ok) {
        note(
          `the signed approval in ${a.file} doesn't verify against the base branch's allowed_signers: ${a.signature.detail}`,
        )
        continue
      }
      const who = s.approver
      if (s.requestId !== id) {
        note(`${who}'s signed approval in ${a.file} is for ${s.requestId}, not ${id}`)
        continue
      }
      if (s.specPath !== subject.path) {
        note(`${who}'s signed approval in ${a.file} is for ${s.specPath}, not ${subject.path}`)
        continue
      }
      if (s.specSha256 !== input.subjectSha256) {
        note(
          `${who}'s signed approval is on another version of ${noun} (sha256 ${s.specSha256.slice(0, 12)}…)`,
        )
        continue
      }
      const ineligible = excluded(who, {})
      if (ineligible) {
        note(`${ineligible}, so ${who}'s signed approval doesn't count`)
        continue
      }
      const late = timely(who, s.time, `${who}'s signed approval`)
      if (late) {
        note(late)
        continue
      }
      const key = who.toLowerCase()
      const prev = best.get(key)
      if (prev && (prev.view.at ?? '') >= s.time) {
        view.notes.push(`superseded by ${who}'s later signed approval`)
        continue
      }
      if (prev) {
        prev.view.counted = false
        prev.view.notes.push(`superseded by ${who}'s later signed approval`)
      }
      view.counted = true
      best.set(key, { backend: 'ssh', approver: who, view })
    }
    counted.push(...best.values())
  }

  // Counts, per backend, including teams.
  const missing: string[] = []
  const teamNotes: string[] = []
  for (const backend of backends) {
    const evidence = backend === 'github' ? input.github : input.ssh
    const mine = counted.filter((c) => c.backend === backend)
    const kind = backend === 'github' ? 'approval' : 'signed approval'
    const outcome: BackendOutcome = {
      backend,
      approvals: mine.length,
      required: tier.approvals,
      teams: [],
      satisfied: !('missing' in evidence),
    }
    if (mine.length < tier.approvals) {
      outcome.satisfied = false
      if (!('missing' in evidence)) missing.push(needs(tier.approvals - mine.length, kind))
    }
    for (const { team, min } of tier.teams) {
      const inTeam: string[] = []
      const outsiders: [Counted, string][] = []
      for (const c of mine) {
        const m = input.memberships.get(membershipKey(team, c.approver))
        if (m === 'active') {
          inTeam.push(c.approver)
          c.view.teams.push(team)
        } else if (m === 'pending') {
          outsiders.push([
            c,
            `${c.approver}'s membership in team ${team} is pending (invitation not accepted)`,
          ])
        } else if (m === 'none') {
          outsiders.push([c, `${c.approver} is not in team ${team}`])
        }
      }
      outcome.teams.push({ team, approvals: inTeam.length, required: min })
      if (inTeam.length < min) {
        outcome.satisfied = false
        if (!('missing' in evidence)) missing.push(needs(min - inTeam.length, kind, team))
        if (input.teamsUnavailable) teamNotes.push(`team ${team} can't be checked: ${input.teamsUnavailable}`)
        for (const [c, n] of outsiders) {
          teamNotes.push(n)
          c.view.notes.push(n)
        }
      }
    }
    base.backends.push(outcome)
  }

  reasons.push(...missing, ...blockers, ...unique(teamNotes))
  const satisfied = base.backends.every((b) => b.satisfied) && blockers.length === 0 && reasons.length === 0
  if (!satisfied) reasons.push(...unique(explanations))
  base.allowed = satisfied
  return { decision: base, counted, tier, backends }
}

function needs(n: number, kind: string, team?: string): string {
  return `needs ${n} more ${kind}${n === 1 ? '' : 's'}${team ? ` from team ${team}` : ''}`
}

function unique(list: string[]): string[] {
  return [...new Set(list)]
}

function short(sha: string | undefined): string {
  return sha ? sha.slice(0, 7) : '(unknown)'
}

/** "3d 2h", "5h", "12m": how old something is, to the two largest units. */
export function formatAge(ms: number): string {
  const m = Math.floor(ms / 60_000)
  const d = Math.floor(m / 1440)
  const h = Math.floor((m % 1440) / 60)
  const min = m % 60
  if (d > 0) return h > 0 ? `${d}d ${h}h` : `${d}d`
  if (h > 0) return min > 0 ? `${h}h ${min}m` : `${h}h`
  return `${min}m`
}

/**
 * Who can never approve this subject, as a function from an approver to the reason in words
 * (undefined when they may approve). Names are compared case-insensitively against every
 * login, email and name the evidence gives for a person.
 */
function exclusions(
  input: PolicyInput,
): (who: string, account: { type?: string; association?: string }) => string | undefined {
  const { subject, config } = input
  const noun = subject.kind === 'request' ? 'the spec' : subject.path
  const rules: [Set<string>, string][] = []
  const add = (keys: (string | undefined)[], why: string) => {
    const set = new Set(keys.filter((k): k is string => !!k).map((k) => k.toLowerCase()))
    if (set.size > 0) rules.push([set, why])
  }
  if (subject.kind === 'request') {
    add([subject.spec.requester.name, subject.spec.requester.email], 'filed this request')
  }
  if (input.prAuthor) {
    const p = input.prAuthor
    add([p.login, p.email, p.name], 'opened the pull request')
  }
  for (const c of input.subjectChanges) {
    const verb = c.role === 'author' ? 'authored' : 'committed'
    add([c.login, c.email, c.name], `${verb} commit ${short(c.commit)}, which changed ${noun}`)
  }
  add([config.audit.signer?.principal, ...input.executors], 'is the executor identity')
  const agents = new Set(config.agents.map((a) => a.toLowerCase()))

  return (who, account) => {
    const key = who.toLowerCase()
    for (const [set, why] of rules) if (set.has(key)) return `${who} ${why}`
    if (account.type === 'Bot' || key.endsWith('[bot]')) return `${who} is a bot`
    if (agents.has(key)) return `${who} is an agent (listed under agents in nhi-recover.yaml)`
    if (account.association !== undefined && !TRUSTED_ASSOCIATIONS.has(account.association)) {
      return `${who} is not a member or collaborator of the repository`
    }
    return undefined
  }
}
