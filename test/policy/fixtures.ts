/** Builders for policy-engine tables: a config, a spec and evidence, each overridable. */
import { RecoveryRequest, RepoConfig } from '../../src/spec/schema.js'
import {
  membershipKey,
  type GitHubReview,
  type MembershipState,
  type PolicyInput,
  type SshApproval,
} from '../../src/policy/types.js'

export const NOW = new Date('2026-03-10T12:00:00Z')
export const SPEC_SHA = 'a'.repeat(64)
export const OLD_SHA = 'b'.repeat(64)
export const HEAD = '1'.repeat(40)

export function config(overrides: Record<string, unknown> = {}): RepoConfig {
  return RepoConfig.parse({
    apiVersion: 'nhi-recover/v1',
    kind: 'RepoConfig',
    providers: { local: { kind: 'local' } },
    approvals: { github: {}, ssh: {} },
    policy: {
      tiers: {
        low: { approvals: 1, maxAge: '7d' },
        medium: { approvals: 2, teams: [{ team: 'platform', min: 1 }], maxAge: '3d' },
        high: {
          approvals: 2,
          teams: [
            { team: 'platform', min: 1 },
            { team: 'security', min: 1 },
          ],
          maxAge: '24h',
        },
        critical: { approvals: 2, backends: ['github', 'ssh'], maxAge: '12h' },
      },
      escalation: [
        {
          when: { requesterKind: 'agent' },
          minTier: 'medium',
          reason: 'requests filed by automation need a second person',
        },
        { when: { identityType: 'api-key' }, minTier: 'low' },
      ],
    },
    agents: ['nhi-recover-agent'],
    audit: { path: 'audit', signer: { kind: 'ssh', keyEnv: 'K', principal: 'nhi-recover-executor' } },
    ...overrides,
  })
}

export function spec(overrides: { risk?: string; requester?: string; kind?: string; expires?: string } = {}) {
  return RecoveryRequest.parse({
    apiVersion: 'nhi-recover/v1',
    kind: 'RecoveryRequest',
    id: 'rr-payments-key',
    requester: {
      name: overrides.requester ?? 'alice',
      kind: overrides.kind ?? 'human',
      email: 'alice@example.com',
    },
    reason: 'The key leaked in a log.',
    ticket: 'SEC-1',
    created: '2026-03-01T00:00:00Z',
    expires: overrides.expires ?? '2026-03-20T00:00:00Z',
    identity: {
      name: 'payments-key',
      type: 'api-key',
      owner: 'team-payments',
      risk: overrides.risk ?? 'low',
    },
    target: { provider: 'local', mechanism: 'local', path: 'payments/key' },
    action: 'rotate',
  })
}

let reviewId = 1

/** A review of the current spec content, submitted an hour ago, by a repository member. */
export function review(reviewer: string, over: Partial<GitHubReview> = {}): GitHubReview {
  return {
    id: reviewId++,
    reviewer,
    reviewerType: 'User',
    association: 'MEMBER',
    state: 'APPROVED',
    submittedAt: new Date(NOW.getTime() - 3600_000).toISOString(),
    commitId: HEAD,
    subjectSha256AtCommit: SPEC_SHA,
    ...over,
  }
}

/** A correctly signed SSH approval of the current spec, made an hour ago. */
export function signed(
  approver: string,
  over: Partial<SshApproval['statement'] & object> = {},
  sigOk = true,
): SshApproval {
  return {
    file: `recovery-specs/rr-payments-key.approvals/${approver}.json`,
    statement: {
      type: 'nhi-recover-approval/v1',
      requestId: 'rr-payments-key',
      specPath: 'recovery-specs/rr-payments-key.yaml',
      specSha256: SPEC_SHA,
      approver,
      time: new Date(NOW.getTime() - 3600_000).toISOString(),
      ...over,
    },
    signature: sigOk ? { ok: true } : { ok: false, detail: 'key SHA256:abc is not in the allowed signers' },
  }
}

export function members(map: Record<string, Record<string, MembershipState>>): Map<string, MembershipState> {
  const out = new Map<string, MembershipState>()
  for (const [team, m] of Object.entries(map))
    for (const [login, st] of Object.entries(m)) out.set(membershipKey(team, login), st)
  return out
}

/** An input for the low tier with no evidence; tests add what their case needs. */
export function input(over: Partial<PolicyInput> & { risk?: string; cfg?: RepoConfig } = {}): PolicyInput {
  const { risk, cfg, ...rest } = over
  return {
    subject: {
      kind: 'request',
      path: 'recovery-specs/rr-payments-key.yaml',
      spec: spec({ ...(risk ? { risk } : {}) }),
    },
    subjectSha256: SPEC_SHA,
    config: cfg ?? config(),
    policyChanges: [],
    now: NOW,
    prAuthor: { login: 'dave' },
    subjectChanges: [
      { commit: HEAD, role: 'author', login: 'dave', email: 'dave@example.com', name: 'Dave' },
    ],
    executors: [],
    github: { items: [] },
    ssh: { items: [] },
    memberships: new Map(),
    ...rest,
  }
}
