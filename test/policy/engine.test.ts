import { describe, expect, it } from 'vitest'
import { evaluatePolicy, formatAge, membershipQueries } from '../../src/policy/engine.js'
import { resolveTier } from '../../src/policy/tier.js'
import { config, input, members, NOW, OLD_SHA, review, signed, spec } from './fixtures.js'

const hoursAgo = (h: number) => new Date(NOW.getTime() - h * 3600_000).toISOString()

describe('policy engine: who never counts', () => {
  const cases = [
    {
      name: 'refuses the requester approving their own request',
      reviews: [review('alice')],
      reason: "alice filed this request, so alice's approval doesn't count",
    },
    {
      name: 'refuses the requester approving under their email as login (case-insensitive)',
      reviews: [review('Alice@Example.com')],
      reason: "Alice@Example.com filed this request, so Alice@Example.com's approval doesn't count",
    },
    {
      name: 'refuses the PR author approving',
      reviews: [review('dave')],
      reason: "dave opened the pull request, so dave's approval doesn't count",
      prAuthor: 'dave',
      changes: [],
    },
    {
      name: 'refuses someone who committed to the spec',
      reviews: [review('erin')],
      changes: [{ commit: 'c0ffee0000', role: 'committer' as const, login: 'erin' }],
      reason: "erin committed commit c0ffee0, which changed the spec, so erin's approval doesn't count",
    },
    {
      name: 'refuses a bot (GitHub account type Bot)',
      reviews: [review('deploy-helper', { reviewerType: 'Bot' })],
      reason: "deploy-helper is a bot, so deploy-helper's approval doesn't count",
    },
    {
      name: 'refuses an agent listed in the config',
      reviews: [review('nhi-recover-agent')],
      reason:
        "nhi-recover-agent is an agent (listed under agents in nhi-recover.yaml), so nhi-recover-agent's approval doesn't count",
    },
    {
      name: 'refuses the executor identity',
      reviews: [review('nhi-recover-executor')],
      reason:
        "nhi-recover-executor is the executor identity, so nhi-recover-executor's approval doesn't count",
    },
    {
      name: 'refuses someone who is not a member or collaborator',
      reviews: [review('mallory', { association: 'CONTRIBUTOR' })],
      reason:
        "mallory is not a member or collaborator of the repository, so mallory's approval doesn't count",
    },
  ]
  for (const c of cases) {
    it(c.name, () => {
      const d = evaluatePolicy(
        input({
          github: { items: c.reviews },
          ...(c.prAuthor ? { prAuthor: { login: c.prAuthor } } : {}),
          ...(c.changes ? { subjectChanges: c.changes } : {}),
        }),
      )
      expect(d.allowed).toBe(false)
      expect(d.reasons).toEqual(['needs 1 more approval', c.reason])
    })
  }

  it('allows one eligible member approving a low-risk request', () => {
    const d = evaluatePolicy(input({ github: { items: [review('bob')] } }))
    expect(d).toMatchObject({ allowed: true, reasons: [], tier: { risk: 'low' } })
    expect(d.approvals).toEqual([expect.objectContaining({ approver: 'bob', counted: true })])
  })
})

describe('policy engine: which reviews count', () => {
  it('counts only the latest verdict: changes requested after an approval blocks', () => {
    const d = evaluatePolicy(
      input({
        github: {
          items: [
            review('bob', { submittedAt: hoursAgo(3) }),
            review('bob', { state: 'CHANGES_REQUESTED', submittedAt: hoursAgo(1) }),
          ],
        },
      }),
    )
    expect(d.allowed).toBe(false)
    expect(d.reasons).toEqual([
      'needs 1 more approval',
      'bob requested changes; that blocks until bob approves or the review is dismissed',
    ])
  })

  it('blocks on changes requested even when enough others approved', () => {
    const d = evaluatePolicy(
      input({ github: { items: [review('bob'), review('carol', { state: 'CHANGES_REQUESTED' })] } }),
    )
    expect(d.allowed).toBe(false)
    expect(d.reasons).toEqual([
      'carol requested changes; that blocks until carol approves or the review is dismissed',
    ])
  })

  it('lets an approval after a request for changes supersede it', () => {
    const d = evaluatePolicy(
      input({
        github: {
          items: [
            review('bob', { state: 'CHANGES_REQUESTED', submittedAt: hoursAgo(3) }),
            review('bob', { submittedAt: hoursAgo(1) }),
          ],
        },
      }),
    )
    expect(d.allowed).toBe(true)
  })

  it('keeps an approval when the same reviewer only comments afterwards', () => {
    const d = evaluatePolicy(
      input({
        github: {
          items: [
            review('bob', { submittedAt: hoursAgo(3) }),
            review('bob', { state: 'COMMENTED', submittedAt: hoursAgo(1) }),
          ],
        },
      }),
    )
    expect(d.allowed).toBe(true)
  })

  it('ignores a dismissed review: a dismissed approval does not count', () => {
    const d = evaluatePolicy(input({ github: { items: [review('bob', { state: 'DISMISSED' })] } }))
    expect(d.allowed).toBe(false)
    expect(d.reasons).toEqual(['needs 1 more approval', "bob's review was dismissed"])
  })

  it('ignores a dismissed review: a dismissed request for changes no longer blocks', () => {
    const d = evaluatePolicy(
      input({ github: { items: [review('bob'), review('carol', { state: 'DISMISSED' })] } }),
    )
    expect(d.allowed).toBe(true)
  })

  it('does not let an ineligible reviewer block with a request for changes', () => {
    const d = evaluatePolicy(
      input({
        github: {
          items: [
            review('bob'),
            review('renovate[bot]', { state: 'CHANGES_REQUESTED', reviewerType: 'Bot' }),
          ],
        },
      }),
    )
    expect(d.allowed).toBe(true)
  })
})

describe('policy engine: freshness', () => {
  it('refuses an approval made before the spec changed (a stale approval)', () => {
    const d = evaluatePolicy(
      input({ github: { items: [review('bob', { subjectSha256AtCommit: OLD_SHA })] } }),
    )
    expect(d.reasons).toEqual(['needs 1 more approval', "bob's approval is on an older version of the spec"])
  })

  it('keeps an approval made on an earlier commit when the spec content is the same', () => {
    const d = evaluatePolicy(input({ github: { items: [review('bob', { commitId: '9'.repeat(40) })] } }))
    expect(d.allowed).toBe(true)
  })

  it('refuses an approval on a commit missing from the local history', () => {
    const d = evaluatePolicy(
      input({
        github: { items: [review('bob', { commitId: 'deadbeef00', subjectSha256AtCommit: undefined })] },
      }),
    )
    expect(d.reasons[1]).toBe(
      "bob's approval is on commit deadbee, which is not in this clone's history (fetch the full history)",
    )
  })

  it('refuses an approval older than the maximum age', () => {
    const d = evaluatePolicy(
      input({ github: { items: [review('bob', { submittedAt: hoursAgo(24 * 7 + 5) })] } }),
    )
    expect(d.reasons).toEqual([
      'needs 1 more approval',
      "bob's approval is 7d 5h old; the low tier accepts approvals up to 7d old",
    ])
  })

  it('refuses everything once the request has expired', () => {
    const i = input({ github: { items: [review('bob')] } })
    i.subject = {
      kind: 'request',
      path: 'recovery-specs/rr-payments-key.yaml',
      spec: spec({ expires: hoursAgo(2) }),
    }
    const d = evaluatePolicy(i)
    expect(d.allowed).toBe(false)
    expect(d.reasons).toEqual([
      `the request expired on ${hoursAgo(2)}; file a new request with "nhi-recover new"`,
      'needs 1 more approval',
      'bob approved after the request expired',
    ])
  })
})

describe('policy engine: teams', () => {
  it('refuses an approver who is not in a required team', () => {
    const d = evaluatePolicy(
      input({
        risk: 'medium',
        github: { items: [review('bob'), review('carol')] },
        memberships: members({ platform: { bob: 'none', carol: 'none' } }),
      }),
    )
    expect(d.reasons).toEqual([
      'needs 1 more approval from team platform',
      'bob is not in team platform',
      'carol is not in team platform',
    ])
  })

  it('refuses an approver whose team membership is pending', () => {
    const d = evaluatePolicy(
      input({
        risk: 'medium',
        github: { items: [review('bob'), review('carol')] },
        memberships: members({ platform: { bob: 'pending', carol: 'none' } }),
      }),
    )
    expect(d.reasons).toContain("bob's membership in team platform is pending (invitation not accepted)")
    expect(d.allowed).toBe(false)
  })

  it('blocks when 2 teams are required and only one is satisfied', () => {
    const d = evaluatePolicy(
      input({
        risk: 'high',
        github: { items: [review('bob'), review('carol')] },
        memberships: members({
          platform: { bob: 'active', carol: 'active' },
          security: { bob: 'none', carol: 'none' },
        }),
      }),
    )
    expect(d.allowed).toBe(false)
    expect(d.reasons).toEqual([
      'needs 1 more approval from team security',
      'bob is not in team security',
      'carol is not in team security',
    ])
    expect(d.backends).toEqual([
      {
        backend: 'github',
        approvals: 2,
        required: 2,
        satisfied: false,
        teams: [
          { team: 'platform', approvals: 2, required: 1 },
          { team: 'security', approvals: 0, required: 1 },
        ],
      },
    ])
  })

  it('allows when both required teams are satisfied', () => {
    const d = evaluatePolicy(
      input({
        risk: 'high',
        github: { items: [review('bob'), review('carol')] },
        memberships: members({ platform: { bob: 'active' }, security: { carol: 'active' } }),
      }),
    )
    expect(d.allowed).toBe(true)
  })

  it('reads as the issue asks: a missing team approval and a stale approval in one sentence list', () => {
    const d = evaluatePolicy(
      input({
        risk: 'high',
        github: {
          items: [review('carol'), review('frank'), review('bob', { subjectSha256AtCommit: OLD_SHA })],
        },
        memberships: members({ platform: { carol: 'active' }, security: { carol: 'none', frank: 'none' } }),
      }),
    )
    expect(d.reasons.join('; ')).toBe(
      "needs 1 more approval from team security; carol is not in team security; frank is not in team security; bob's approval is on an older version of the spec",
    )
  })

  it('explains that teams cannot be checked without GitHub', () => {
    const d = evaluatePolicy(
      input({
        risk: 'medium',
        github: { items: [review('bob'), review('carol')] },
        teamsUnavailable: 'approvals.github is not configured',
      }),
    )
    expect(d.reasons).toEqual([
      'needs 1 more approval from team platform',
      "team platform can't be checked: approvals.github is not configured",
    ])
  })

  it('asks only for the team lookups that can still change the decision', () => {
    const base = input({ risk: 'high', github: { items: [review('bob'), review('carol'), review('erin')] } })
    expect(membershipQueries(base)).toEqual([
      { team: 'platform', login: 'bob' },
      { team: 'security', login: 'bob' },
    ])
    const next = membershipQueries({
      ...base,
      memberships: members({ platform: { bob: 'active' }, security: { bob: 'none' } }),
    })
    expect(next).toEqual([{ team: 'security', login: 'carol' }])
    const done = membershipQueries({
      ...base,
      memberships: members({ platform: { bob: 'active' }, security: { bob: 'none', carol: 'active' } }),
    })
    expect(done).toEqual([])
  })
})

describe('policy engine: the policy in force', () => {
  it('raises a PR that lowers its own policy to the highest tier', () => {
    const d = evaluatePolicy(
      input({ policyChanges: ['nhi-recover.yaml'], github: { items: [review('bob')] } }),
    )
    expect(d.tier).toEqual({
      risk: 'critical',
      because: [
        "the identity's risk is low",
        'raised to critical, the highest tier: this change also edits nhi-recover.yaml',
      ],
    })
    expect(d.allowed).toBe(false)
    expect(d.reasons).toEqual(['needs 1 more approval', 'needs 2 more signed approvals'])
  })

  it('requires the highest tier for an edit of allowed_signers itself', () => {
    const d = evaluatePolicy(
      input({
        subject: { kind: 'policy-file', path: '.nhi-recover/allowed_signers' },
        github: { items: [review('bob'), review('carol')] },
        ssh: { items: [] },
      }),
    )
    expect(d.subject.id).toBe('policy:.nhi-recover/allowed_signers')
    expect(d.tier.risk).toBe('critical')
    expect(d.reasons).toEqual(['needs 2 more signed approvals'])
  })

  it('escalates an agent request but never lowers a tier', () => {
    const s = spec({ kind: 'agent', requester: 'nhi-recover-agent' })
    expect(resolveTier({ kind: 'request', path: 'x', spec: s }, config(), [])).toMatchObject({
      risk: 'medium',
      because: [
        "the identity's risk is low",
        'raised to medium: requests filed by automation need a second person',
      ],
    })
    const high = spec({ kind: 'agent', risk: 'high' })
    expect(resolveTier({ kind: 'request', path: 'x', spec: high }, config(), [])).toMatchObject({
      risk: 'high',
    })
  })

  it('blocks when the base config has no tier for the risk', () => {
    const cfg = config({ policy: { tiers: { low: { approvals: 1 } } } })
    const d = evaluatePolicy(input({ risk: 'high', cfg, github: { items: [review('bob')] } }))
    expect(d.reasons).toEqual([
      "the base branch's nhi-recover.yaml defines no policy tier high, so nothing can approve this",
    ])
  })

  it('blocks a required backend that has no evidence, with its reason', () => {
    const d = evaluatePolicy(input({ github: { missing: 'commit 1234567 is not part of any pull request' } }))
    expect(d.reasons).toEqual(['commit 1234567 is not part of any pull request'])
  })
})

describe('policy engine: SSH-signed approvals', () => {
  const critical = (items: ReturnType<typeof signed>[]) =>
    evaluatePolicy(
      input({ risk: 'critical', github: { items: [review('bob'), review('carol')] }, ssh: { items } }),
    )

  it('allows two valid signed approvals plus two reviews on a critical request', () => {
    expect(critical([signed('bob'), signed('carol')]).allowed).toBe(true)
  })

  it('refuses an SSH approval signed by an unknown key', () => {
    const d = critical([signed('bob'), signed('carol', {}, false)])
    expect(d.reasons).toEqual([
      'needs 1 more signed approval',
      "the signed approval in recovery-specs/rr-payments-key.approvals/carol.json doesn't verify against the base branch's allowed_signers: key SHA256:abc is not in the allowed signers",
    ])
  })

  it('refuses an SSH approval signed by the right key but for a different blob', () => {
    const d = critical([signed('bob'), signed('carol', { specSha256: OLD_SHA })])
    expect(d.reasons).toEqual([
      'needs 1 more signed approval',
      "carol's signed approval is on another version of the spec (sha256 bbbbbbbbbbbb…)",
    ])
  })

  it('refuses an SSH approval for another request that is replayed', () => {
    const d = critical([signed('bob'), signed('carol', { requestId: 'rr-other-key' })])
    expect(d.reasons).toEqual([
      'needs 1 more signed approval',
      "carol's signed approval in recovery-specs/rr-payments-key.approvals/carol.json is for rr-other-key, not rr-payments-key",
    ])
  })

  it('refuses a signed approval dated in the future', () => {
    const d = critical([signed('bob'), signed('carol', { time: '2026-03-11T00:00:00Z' })])
    expect(d.reasons[1]).toBe("carol's signed approval is dated in the future (2026-03-11T00:00:00Z)")
  })

  it('refuses a signed approval by the requester', () => {
    const d = critical([signed('bob'), signed('alice')])
    expect(d.reasons[1]).toBe("alice filed this request, so alice's signed approval doesn't count")
  })
})

describe('formatAge', () => {
  it('shows the two largest units', () => {
    expect([formatAge(90_000), formatAge(3 * 3600_000 + 60_000), formatAge(26 * 3600_000)]).toEqual([
      '1m',
      '3h 1m',
      '1d 2h',
    ])
  })
})
