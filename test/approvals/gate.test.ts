/**
 * The approval gate end to end: real git history, real SSH signatures, real Octokit against
 * the local GitHub server. Each issue case is one test, named after it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { startGitHubServer, type GitHubServer } from '../github-server/server.js'
import { ApprovalsUnavailableError, type GateResult } from '../../src/approvals/gate.js'
import { executionGate } from '../../src/approvals/execution-gate.js'
import { approve } from '../../src/approvals/approve.js'
import {
  recoveryRepo,
  seedGitHub,
  specYaml,
  testConfig,
  TOKEN,
  SIGNERS,
  type RecoveryRepo,
} from './harness.js'

let gh: GitHubServer
/** One repo for the cases that only open pull requests; cases that change main make their own. */
let shared: RecoveryRepo
let repo: RecoveryRepo | undefined
let prNumber = 100

beforeAll(async () => {
  gh = await startGitHubServer({ token: TOKEN, owner: 'acme', repo: 'recovery' })
  seedGitHub(gh)
  shared = recoveryRepo(gh)
})
afterAll(async () => {
  shared?.cleanup()
  await gh.close()
})
afterEach(() => {
  repo?.cleanup()
  repo = undefined
  gh.clearFaults()
  expect(gh.problems).toEqual([])
})

const SPEC = (id: string) => `recovery-specs/${id}.yaml`

/** Given a repo and a PR by alice that adds one spec; returns what the test needs. */
function givenPr(
  o: { id?: string; risk?: string; requester?: string; expires?: string; created?: string } = {},
) {
  const r = shared
  const id = o.id ?? `rr-payments-${prNumber + 1}`
  const alice = r.person('alice')
  alice.git('fetch', '-q', 'origin', 'main')
  alice.git('checkout', '-q', '-b', id, 'origin/main')
  alice.write(SPEC(id), specYaml({ id, ...o }))
  alice.commitAll(`Request ${id}`)
  const n = ++prNumber
  const head = r.openPr(n, alice)
  return { r, n, id, alice, head }
}

/** A merged spec as execute hands it to the gate: its bytes in the clone, and their blob at HEAD. */
async function executableIn(ci: { dir: string; git: (...args: string[]) => string }, id: string) {
  const { RecoveryRequest } = await import('../../src/spec/schema.js')
  const { parse } = await import('yaml')
  const bytes = readFileSync(join(ci.dir, SPEC(id)))
  return {
    spec: RecoveryRequest.parse(parse(bytes.toString('utf8'))),
    path: SPEC(id),
    sha256: createHash('sha256').update(bytes).digest('hex'),
    blob: ci.git('rev-parse', `HEAD:${SPEC(id)}`),
  }
}

/** The real GitHub forge (through Octokit) for acme/recovery on the local server. */
async function githubForge() {
  const { githubForgeFactory } = await import('../../providers/forge/github.js')
  return githubForgeFactory(
    {
      owner: 'acme',
      repo: 'recovery',
      pr: undefined,
      commit: undefined,
      base: undefined,
      apiUrl: undefined,
      tuning: {},
    },
    { GITHUB_TOKEN: TOKEN },
  )
}

function subject(res: GateResult, id: string) {
  const s = res.subjects.find((x) => x.subject.id === id)
  if (!s) throw new Error(`no subject ${id} in ${res.subjects.map((x) => x.subject.id).join(', ')}`)
  return s
}

describe('approval gate: who never counts', () => {
  it('allows a fresh approval by an eligible member (control case)', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin' })
    r.review(n, 'bob', 'APPROVED', head)
    const res = await r.check(n)
    expect(res.allowed).toBe(true)
    expect(subject(res, id).approvals).toEqual([expect.objectContaining({ approver: 'bob', counted: true })])
    expect(res.summary).toBe(`approved: ${id}`)
  })

  it('refuses: the requester approves their own request', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin' })
    r.review(n, 'erin', 'APPROVED', head)
    const s = subject(await r.check(n), id)
    expect(s.allowed).toBe(false)
    expect(s.reasons).toEqual([
      'needs 1 more approval',
      "erin filed this request, so erin's approval doesn't count",
    ])
  })

  it('refuses: the PR author approves', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin' })
    r.review(n, 'alice', 'APPROVED', head)
    const s = subject(await r.check(n), id)
    expect(s.reasons).toEqual([
      'needs 1 more approval',
      "alice opened the pull request, so alice's approval doesn't count",
    ])
  })

  it('refuses: someone who committed to the spec approves', async () => {
    const { r, n, id } = givenPr({ requester: 'erin' })
    const bob = r.person('bob')
    bob.git('fetch', '-q', 'origin', id)
    bob.git('checkout', '-q', '-b', id, `origin/${id}`)
    bob.write(
      SPEC(id),
      specYaml({ id, requester: 'erin', reason: 'The key leaked in a build log; rotate both.' }),
    )
    const bobsCommit = bob.commitAll('Clarify the reason')
    const head = r.openPr(n, bob)
    r.review(n, 'bob', 'APPROVED', head)
    const s = subject(await r.check(n), id)
    expect(s.reasons).toEqual([
      'needs 1 more approval',
      `bob authored commit ${bobsCommit.slice(0, 7)}, which changed the spec, so bob's approval doesn't count`,
    ])
  })

  it('refuses: a bot approves', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin' })
    r.review(n, 'renovate[bot]', 'APPROVED', head)
    r.review(n, 'nhi-recover-agent', 'APPROVED', head)
    const s = subject(await r.check(n), id)
    expect(s.reasons).toEqual([
      'needs 1 more approval',
      "nhi-recover-agent is an agent (listed under agents in nhi-recover.yaml), so nhi-recover-agent's approval doesn't count",
      "renovate[bot] is a bot, so renovate[bot]'s approval doesn't count",
    ])
  })
})

describe('approval gate: freshness and review states', () => {
  it('refuses: the spec changes after the approval (a stale approval)', async () => {
    const { r, n, id, alice, head } = givenPr({ requester: 'erin' })
    r.review(n, 'bob', 'APPROVED', head)
    alice.write(
      SPEC(id),
      specYaml({ id, requester: 'erin', risk: 'low', reason: 'Changed after the review.' }),
    )
    alice.commitAll('Change the reason')
    r.openPr(n, alice)
    const s = subject(await r.check(n), id)
    expect(s.reasons).toEqual(['needs 1 more approval', "bob's approval is on an older version of the spec"])
  })

  it('allows: a commit after the approval that does not touch the spec keeps the approval valid', async () => {
    const { r, n, id, alice, head } = givenPr({ requester: 'erin' })
    r.review(n, 'bob', 'APPROVED', head)
    alice.write('recovery-specs/NOTES.md', 'Context for reviewers.\n')
    const later = alice.commitAll('Add notes')
    r.openPr(n, alice)
    const res = await r.check(n)
    expect(res.head).toBe(later)
    expect(subject(res, id).allowed).toBe(true)
  })

  it('refuses: changes are requested after an approval', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin' })
    r.review(n, 'bob', 'APPROVED', head)
    r.review(n, 'carol', 'CHANGES_REQUESTED', head)
    r.review(n, 'dave', 'APPROVED', head)
    r.review(n, 'dave', 'CHANGES_REQUESTED', head)
    const s = subject(await r.check(n), id)
    expect(s.allowed).toBe(false)
    expect(s.reasons).toEqual([
      'carol requested changes; that blocks until carol approves or the review is dismissed',
      'dave requested changes; that blocks until dave approves or the review is dismissed',
    ])
  })

  it('refuses: a review is dismissed', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin' })
    const review = r.review(n, 'bob', 'APPROVED', head)
    gh.state.dismissReview(n, review)
    const s = subject(await r.check(n), id)
    expect(s.reasons).toEqual(['needs 1 more approval', "bob's review was dismissed"])
  })

  it('refuses: the request has expired', async () => {
    const past = new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, 'Z')
    const { r, n, id, head } = givenPr({
      requester: 'erin',
      expires: past,
      created: new Date(Date.now() - 86400_000).toISOString().replace(/\.\d+Z$/, 'Z'),
    })
    r.review(n, 'bob', 'APPROVED', head, new Date(Date.now() - 3600_000))
    const s = subject(await r.check(n), id)
    expect(s.allowed).toBe(false)
    expect(s.reasons[0]).toBe(`the request expired on ${past}; file a new request with "nhi-recover new"`)
  })

  it('refuses: the approval is older than the maximum age', async () => {
    const { r, n, id, head } = givenPr({
      requester: 'erin',
      created: new Date(Date.now() - 10 * 86400_000).toISOString().replace(/\.\d+Z$/, 'Z'),
    })
    r.review(n, 'bob', 'APPROVED', head, new Date(Date.now() - 8 * 86400_000 - 60_000))
    const s = subject(await r.check(n), id)
    expect(s.reasons).toEqual([
      'needs 1 more approval',
      "bob's approval is 8d old; the low tier accepts approvals up to 7d old",
    ])
  })
})

describe('approval gate: teams', () => {
  it('refuses: the approver is not in a required team', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin', risk: 'medium' })
    r.review(n, 'admin', 'APPROVED', head)
    const s = subject(await r.check(n), id)
    expect(s.reasons).toEqual(['needs 1 more approval from team platform', 'admin is not in team platform'])
  })

  it('refuses: the team membership is pending', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin', risk: 'high' })
    r.review(n, 'bob', 'APPROVED', head)
    r.review(n, 'frank', 'APPROVED', head)
    const s = subject(await r.check(n), id)
    expect(s.reasons).toEqual([
      'needs 1 more approval from team security',
      'bob is not in team security',
      "frank's membership in team security is pending (invitation not accepted)",
    ])
  })

  it('refuses: a PR has 2 required teams, one satisfied and one not', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin', risk: 'high' })
    r.review(n, 'bob', 'APPROVED', head)
    r.review(n, 'erin', 'COMMENTED', head)
    r.review(n, 'carol', 'COMMENTED', head)
    r.review(n, 'admin', 'APPROVED', head)
    const s = subject(await r.check(n), id)
    expect(s.backends[0]!.teams).toEqual([
      { team: 'platform', approvals: 1, required: 1 },
      { team: 'security', approvals: 0, required: 1 },
    ])
    expect(s.reasons).toEqual([
      'needs 1 more approval from team security',
      'admin is not in team security',
      'bob is not in team security',
    ])
  })

  it('allows a high request once both teams are satisfied, with one lookup per approver and team', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin', risk: 'high' })
    r.review(n, 'bob', 'APPROVED', head)
    r.review(n, 'carol', 'APPROVED', head)
    gh.resetLog()
    const res = await r.check(n)
    expect(subject(res, id).allowed).toBe(true)
    const lookups = gh.requests
      .filter((q) => q.operationId === 'teams/get-membership-for-user-in-org')
      .map((q) => q.path)
    expect(lookups.sort()).toEqual([
      '/orgs/acme/teams/platform/memberships/bob',
      '/orgs/acme/teams/security/memberships/bob',
      '/orgs/acme/teams/security/memberships/carol',
    ])
  })
})

describe('approval gate: the policy in force', () => {
  it('refuses: a PR lowers its own policy', async () => {
    const r = shared
    const alice = r.person('alice')
    alice.git('fetch', '-q', 'origin', 'main')
    alice.git('checkout', '-q', '-b', 'lower', 'origin/main')
    // Lower every tier to one approval with no teams and no signatures.
    alice.write(
      'nhi-recover.yaml',
      testConfig(gh.url, '    low: { approvals: 1 }\n    critical: { approvals: 1 }'),
    )
    alice.write(
      SPEC('rr-lower-own-bar'),
      specYaml({ id: 'rr-lower-own-bar', requester: 'erin', risk: 'critical' }),
    )
    const head = alice.commitAll('Request and a friendlier policy')
    const n = ++prNumber
    r.openPr(n, alice)
    r.review(n, 'bob', 'APPROVED', head)
    const res = await r.check(n)
    expect(res.allowed).toBe(false)
    expect(res.policyChanges).toEqual(['nhi-recover.yaml'])
    const spec = subject(res, 'rr-lower-own-bar')
    // The base branch's critical tier applies: 2 approvals, team security, signed.
    expect(spec.required).toEqual({
      approvals: 2,
      teams: [{ team: 'security', min: 1 }],
      backends: ['github', 'ssh'],
      maxAge: '24h',
    })
    expect(spec.reasons).toEqual([
      'needs 1 more approval',
      'needs 1 more approval from team security',
      'needs 2 more signed approvals',
      'needs 1 more signed approval from team security',
      'bob is not in team security',
    ])
    const policy = subject(res, 'policy:nhi-recover.yaml')
    expect(policy.tier).toEqual({
      risk: 'critical',
      because: ['changes to nhi-recover.yaml need the highest tier'],
    })
    expect(policy.allowed).toBe(false)
  })

  it('refuses: a PR edits allowed_signers (and signs with the key it adds)', async () => {
    const r = shared
    const mal = r.person('mallory')
    mal.git('fetch', '-q', 'origin', 'main')
    mal.git('checkout', '-q', '-b', 'signers', 'origin/main')
    mal.write(
      SIGNERS,
      mal.read(SIGNERS) + `mallory namespaces="nhi-recover-approval" ${r.keys.mallory!.publicLine}\n`,
    )
    mal.write(
      SPEC('rr-signers-edit'),
      specYaml({ id: 'rr-signers-edit', requester: 'erin', risk: 'critical' }),
    )
    mal.commitAll('Add my key')
    const n = ++prNumber
    r.openPr(n, mal)
    await r.sign(n, mal, SPEC('rr-signers-edit'), r.keys.mallory!)
    const res = await r.check(n)
    expect(res.policyChanges).toEqual([SIGNERS])
    const spec = subject(res, 'rr-signers-edit')
    expect(spec.allowed).toBe(false)
    expect(spec.reasons.at(-1)).toMatch(
      /^the signed approval in recovery-specs\/rr-signers-edit.approvals\/mallory.json doesn't verify against the base branch's allowed_signers: key SHA256:\S+ is not in the allowed signers$/,
    )
    expect(subject(res, `policy:${SIGNERS}`).tier.risk).toBe('critical')
  })
})

describe('approval gate: pull requests with nothing to approve', () => {
  it('passes a PR that touches no spec and no policy file, so the check can be required on every PR', async () => {
    const r = shared
    const alice = r.person('alice')
    alice.git('fetch', '-q', 'origin', 'main')
    alice.git('checkout', '-q', '-b', 'docs-only', 'origin/main')
    alice.write('README.md', '# recovery repo\n\nHow we work.\n')
    alice.commitAll('Docs')
    const n = ++prNumber
    r.openPr(n, alice)
    const res = await r.check(n)
    expect(res).toMatchObject({ allowed: true, subjects: [], policyChanges: [] })
    expect(res.summary).toBe('nothing to approve: this change touches no recovery request and no policy file')
  })
})

describe('approval gate: SSH-signed approvals', () => {
  /** A critical request with two GitHub approvals (carol is in security). */
  async function criticalPr(id: string) {
    const g = givenPr({ id, requester: 'erin', risk: 'critical' })
    return g
  }

  it('allows a critical request with two reviews and two signed approvals (control case)', async () => {
    const { r, n, id, alice } = await criticalPr('rr-critical-ok')
    await r.sign(n, r.person('bob'), await checkoutPr(r, 'bob', id), r.keys.bob!)
    await r.sign(n, r.person('carol'), await checkoutPr(r, 'carol', id), r.keys.carol!)
    const head = r.person('carol').head()
    r.review(n, 'bob', 'APPROVED', head)
    r.review(n, 'carol', 'APPROVED', head)
    const res = await r.check(n)
    expect(subject(res, id).reasons).toEqual([])
    expect(res.allowed).toBe(true)
    expect(
      subject(res, id)
        .approvals.filter((a) => a.counted)
        .map((a) => `${a.backend}:${a.approver}`),
    ).toEqual(['github:bob', 'github:carol', 'ssh:bob', 'ssh:carol'])
    void alice
  })

  it('refuses: an SSH approval is signed by an unknown key', async () => {
    const { r, n, id } = await criticalPr('rr-unknown-key')
    await r.sign(n, r.person('carol'), await checkoutPr(r, 'carol', id), r.keys.carol!)
    // mallory's key is not in the base branch's allowed_signers.
    await r.sign(n, r.person('mallory'), await checkoutPr(r, 'mallory', id), r.keys.mallory!)
    const head = r.person('mallory').head()
    r.review(n, 'bob', 'APPROVED', head)
    r.review(n, 'carol', 'APPROVED', head)
    const s = subject(await r.check(n), id)
    expect(s.reasons[0]).toBe('needs 1 more signed approval')
    expect(s.reasons[1]).toMatch(
      /mallory.json doesn't verify against the base branch's allowed_signers: key SHA256:\S+ is not in the allowed signers$/,
    )
  })

  it('refuses: an SSH approval is signed by the right key but for a different blob', async () => {
    const { r, n, id, alice } = await criticalPr('rr-different-blob')
    await r.sign(n, r.person('bob'), await checkoutPr(r, 'bob', id), r.keys.bob!)
    await r.sign(n, r.person('carol'), await checkoutPr(r, 'carol', id), r.keys.carol!)
    alice.git('pull', '-q', 'origin', id)
    alice.write(
      SPEC(id),
      specYaml({ id, requester: 'erin', risk: 'critical', reason: 'Edited after the signatures.' }),
    )
    const head = alice.commitAll('Edit after signing')
    r.openPr(n, alice)
    r.review(n, 'bob', 'APPROVED', head)
    r.review(n, 'carol', 'APPROVED', head)
    const s = subject(await r.check(n), id)
    expect(s.reasons).toEqual([
      'needs 2 more signed approvals',
      'needs 1 more signed approval from team security',
      expect.stringMatching(
        /^bob's signed approval is on another version of the spec \(sha256 [0-9a-f]{12}…\)$/,
      ),
      expect.stringMatching(
        /^carol's signed approval is on another version of the spec \(sha256 [0-9a-f]{12}…\)$/,
      ),
    ])
  })

  it('refuses: an SSH approval for another request is replayed', async () => {
    const other = await criticalPr('rr-replay-source')
    await other.r.sign(
      other.n,
      other.r.person('carol'),
      await checkoutPr(other.r, 'carol', other.id),
      other.r.keys.carol!,
    )
    const carolsStatement = join(
      other.r.person('carol').dir,
      'recovery-specs/rr-replay-source.approvals/carol.json',
    )
    // A second request in the same repo; mallory copies carol's signed statement beside it.
    const r = other.r
    const mal = r.person('mallory')
    mal.git('fetch', '-q', 'origin', 'main')
    mal.git('checkout', '-q', '-b', 'rr-replay-target', 'origin/main')
    mal.write(
      SPEC('rr-replay-target'),
      specYaml({ id: 'rr-replay-target', requester: 'erin', risk: 'critical' }),
    )
    mkdirSync(join(mal.dir, 'recovery-specs/rr-replay-target.approvals'), { recursive: true })
    copyFileSync(carolsStatement, join(mal.dir, 'recovery-specs/rr-replay-target.approvals/carol.json'))
    const head = mal.commitAll('Request, with an approval')
    const n = ++prNumber
    r.openPr(n, mal)
    r.review(n, 'bob', 'APPROVED', head)
    r.review(n, 'carol', 'APPROVED', head)
    const s = subject(await r.check(n), 'rr-replay-target')
    expect(s.allowed).toBe(false)
    expect(s.reasons).toContain(
      "carol's signed approval in recovery-specs/rr-replay-target.approvals/carol.json is for rr-replay-source, not rr-replay-target",
    )
    expect(readFileSync(carolsStatement, 'utf8')).toContain('"requestId": "rr-replay-source"')
  })
})

describe('approval gate: GitHub failures fail closed', () => {
  it('blocks: the GitHub API answers 5xx (fail closed, with a clear message)', async () => {
    const { r, n, head } = givenPr({ requester: 'erin' })
    r.review(n, 'bob', 'APPROVED', head)
    gh.fail(/\/reviews$/, 502)
    const err = await r.check(n).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApprovalsUnavailableError)
    const e = err as ApprovalsUnavailableError
    expect(e.exitCode).toBe(3)
    expect(e.message).toBe(
      `Blocked: GitHub (${gh.url}) answered HTTP 502 while reading the reviews of pull request #${n} (after 1 retries). Approvals cannot be checked, so none count.`,
    )
    expect(e.details).toEqual({ allowed: false, reason: e.message })
    // One try plus one retry, then it gave up.
    expect(gh.requests.filter((q) => q.path.includes(`/pulls/${n}/reviews`)).length).toBe(2)
  })

  it('blocks: the GitHub API times out (fail closed, with a clear message)', async () => {
    const { r, n, head } = givenPr({ requester: 'erin' })
    r.review(n, 'bob', 'APPROVED', head)
    gh.fail(/\/pulls\/\d+$/, 'hang')
    const { githubForgeFactory } = await import('../../providers/forge/github.js')
    const factory = githubForgeFactory(
      {
        owner: 'acme',
        repo: 'recovery',
        pr: n,
        commit: undefined,
        base: undefined,
        apiUrl: undefined,
        tuning: { retries: 0, timeoutMs: 300 },
      },
      { GITHUB_TOKEN: TOKEN },
    )
    const err = (await r.check(n, { forgeFactory: factory }).catch((e: unknown) => e)) as Error
    expect(err).toBeInstanceOf(ApprovalsUnavailableError)
    expect(err.message).toBe(
      `Blocked: GitHub (${gh.url}) did not answer within 0.3s while reading pull request #${n}. Approvals cannot be checked, so none count.`,
    )
  })

  it('blocks with a usage error when the token is refused, and never prints the token', async () => {
    const { r, n } = givenPr({ requester: 'erin' })
    const { githubForgeFactory } = await import('../../providers/forge/github.js')
    const factory = githubForgeFactory(
      {
        owner: 'acme',
        repo: 'recovery',
        pr: n,
        commit: undefined,
        base: undefined,
        apiUrl: undefined,
        tuning: {},
      },
      { GITHUB_TOKEN: 'ghs_wrong_token_value_123456' },
    )
    const err = (await r.check(n, { forgeFactory: factory }).catch((e: unknown) => e)) as Error & {
      exitCode: number
    }
    expect(err.exitCode).toBe(2)
    expect(err.message).toBe(
      `GitHub refused the token in GITHUB_TOKEN while reading pull request #${n} (401).`,
    )
    expect(JSON.stringify({ m: err.message, s: err.stack })).not.toContain('ghs_wrong_token_value_123456')
  })
  it('refuses to send the token to a baseUrl other than the GitHub the job runs on', async () => {
    const { r, n } = givenPr({ requester: 'erin' })
    const { githubForgeFactory } = await import('../../providers/forge/github.js')
    const factory = githubForgeFactory(
      {
        owner: 'acme',
        repo: 'recovery',
        pr: n,
        commit: undefined,
        base: undefined,
        apiUrl: 'https://github.example.com/api/v3',
        tuning: {},
      },
      { GITHUB_TOKEN: TOKEN },
    )
    gh.resetLog()
    const err = (await r.check(n, { forgeFactory: factory }).catch((e: unknown) => e)) as Error & {
      code: string
    }
    expect(err.code).toBe('GITHUB_URL_MISMATCH')
    expect(err.message).toBe(
      `approvals.github.baseUrl (${gh.url}) is not the GitHub this job runs on (GITHUB_API_URL=https://github.example.com/api/v3), so the token is not sent there.`,
    )
    expect(gh.requests).toEqual([])
  })
})

describe('approval gate: volume', () => {
  it('handles a PR with 250 reviews (pagination) in 1 + 3 + 1 requests', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin' })
    for (let i = 0; i < 249; i++) r.review(n, ['carol', 'dave', 'erin', 'frank'][i % 4]!, 'COMMENTED', head)
    r.review(n, 'bob', 'APPROVED', head)
    gh.resetLog()
    const res = await r.check(n)
    expect(subject(res, id).allowed).toBe(true)
    const counts = gh.requests.reduce<Record<string, number>>(
      (m, q) => ({ ...m, [q.operationId!]: (m[q.operationId!] ?? 0) + 1 }),
      {},
    )
    expect(counts).toEqual({ 'pulls/get': 1, 'pulls/list-reviews': 3, 'pulls/list-commits': 1 })
  })
})

describe('approval gate after merge (what execute runs)', () => {
  it('re-checks a merge commit: finds the PR, its base and its reviews', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin' })
    r.review(n, 'bob', 'APPROVED', head)
    const admin = r.admin
    admin.git('fetch', '-q', 'origin', id)
    admin.git('merge', '-q', '--no-ff', '-m', `Merge #${n}`, `origin/${id}`)
    admin.git('push', '-q', 'origin', 'HEAD:main')
    const merge = admin.head()
    gh.state.merge(n, merge)
    const res = await r.checkCommit(merge)
    expect(res.pr?.number).toBe(n)
    expect(res.base).toBe(admin.git('rev-parse', `${merge}^1`))
    expect(subject(res, id).allowed).toBe(true)
  })

  it('re-checks a squash merge whose PR head is only on GitHub (fetched from pull/N/head)', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin' })
    r.review(n, 'bob', 'APPROVED', head)
    const admin = r.admin
    admin.git('fetch', '-q', 'origin', id)
    admin.git('merge', '-q', '--squash', `origin/${id}`)
    admin.git('commit', '-q', '-m', `Request ${id} (#${n})`)
    admin.git('push', '-q', 'origin', 'HEAD:main')
    admin.git('push', '-q', 'origin', `:refs/heads/${id}`)
    const merge = admin.head()
    gh.state.merge(n, merge)
    const res = await r.checkCommit(merge)
    expect(subject(res, id).allowed).toBe(true)
  })

  it('judges a rebase-merged PR that lowered its own policy under the policy below its commits', async () => {
    repo = recoveryRepo(gh)
    const r = repo
    const alice = r.person('alice')
    alice.git('checkout', '-q', '-b', 'rebase-lower', 'origin/main')
    alice.write(
      'nhi-recover.yaml',
      testConfig(gh.url, '    low: { approvals: 1 }\n    critical: { approvals: 1 }'),
    )
    alice.commitAll('Friendlier policy')
    alice.write(SPEC('rr-rebased'), specYaml({ id: 'rr-rebased', requester: 'erin', risk: 'critical' }))
    const head = alice.commitAll('Request')
    const n = ++prNumber
    r.openPr(n, alice)
    r.review(n, 'bob', 'APPROVED', head)
    // main moves on, then the PR is rebased onto it and fast-forwarded, as "Rebase and merge" does.
    r.admin.write('README.md', '# recovery repo, updated\n')
    const mainTip = r.admin.commitAll('Unrelated change on main')
    r.admin.git('push', '-q', 'origin', 'HEAD:main')
    r.admin.git('fetch', '-q', 'origin', 'rebase-lower')
    r.admin.git('checkout', '-q', '-b', 'rb', 'origin/rebase-lower')
    r.admin.git('rebase', '-q', 'main')
    r.admin.git('push', '-q', 'origin', 'HEAD:main')
    const merge = r.admin.head()
    gh.state.merge(n, merge)
    const res = await r.checkCommit(merge)
    expect(res.base).toBe(mainTip)
    expect(res.policyChanges).toEqual(['nhi-recover.yaml'])
    expect(subject(res, 'rr-rebased').allowed).toBe(false)
    expect(subject(res, 'rr-rebased').required?.backends).toEqual(['github', 'ssh'])
  })

  it('checks one spec at a later commit by the merge that last changed it', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin' })
    r.review(n, 'bob', 'APPROVED', head)
    const admin = r.admin
    admin.git('fetch', '-q', 'origin', id)
    admin.git('merge', '-q', '--no-ff', '-m', `Merge #${n}`, `origin/${id}`)
    const merge = admin.head()
    admin.write('README.md', '# later\n')
    const later = admin.commitAll('Later change')
    admin.git('push', '-q', 'origin', 'HEAD:main')
    gh.state.merge(n, merge)
    const res = await r.checkCommit(later, { paths: [SPEC(id)] })
    expect(res.head).toBe(later)
    expect(res.subjects.map((s) => [s.subject.id, s.commit, s.allowed])).toEqual([[id, merge, true]])
  })
})

describe('execution gate (the ApprovalGate execute uses)', () => {
  it('approves the merged bytes with the evidence that counted, and refuses other bytes', async () => {
    const { r, n, id, head } = givenPr({ requester: 'erin' })
    r.review(n, 'bob', 'APPROVED', head)
    r.admin.git('fetch', '-q', 'origin', id)
    r.admin.git('merge', '-q', '--no-ff', '-m', `Merge #${n}`, `origin/${id}`)
    r.admin.git('push', '-q', 'origin', 'HEAD:main')
    gh.state.merge(n, r.admin.head())
    const ci = r.fixture.clone(`ci-exec-${n}`, { key: r.admin.key })
    const x = await executableIn(ci, id)
    const gate = executionGate({
      cwd: ci.dir,
      now: () => new Date(),
      forgeFactory: await githubForge(),
      executors: ['github-actions[bot]'],
    })
    const d = await gate.evaluate(x)
    expect(d).toEqual({
      allowed: true,
      tier: 'low',
      reasons: [],
      evidence: [
        { approver: 'bob', backend: 'github', commit: head, specBlob: x.blob, at: expect.any(String) },
      ],
    })
    const other = await gate.evaluate({ ...x, sha256: 'f'.repeat(64) })
    expect(other.allowed).toBe(false)
    expect(other.reasons[0]).toMatch(
      /^the spec that would execute \(sha256 ffffffffffff…\) is not the one the gate judged/,
    )
  })
})

describe('execution gate, batched (prepare, then evaluate per spec)', () => {
  it('judges once per merge, answers each spec as a lone evaluate would, and confines a failure to its merge', async () => {
    const merged: Array<{ id: string; n: number }> = []
    for (let k = 0; k < 2; k++) {
      const { r, n, id, head } = givenPr({ requester: 'erin' })
      r.review(n, 'bob', 'APPROVED', head)
      r.admin.git('fetch', '-q', 'origin', 'main', id)
      r.admin.git('merge', '-q', '--no-ff', '-m', `Merge #${n}`, `origin/${id}`)
      r.admin.git('push', '-q', 'origin', 'HEAD:main')
      gh.state.merge(n, r.admin.head())
      merged.push({ id, n })
    }
    const ci = shared.fixture.clone(`ci-batch-${merged[1]!.n}`, { key: shared.admin.key })
    const xs = await Promise.all(merged.map(({ id }) => executableIn(ci, id)))
    const real = await githubForge()
    let lookups = 0
    /** GitHub, except that the second PR's reviews cannot be read. */
    const flaky = async (settings: Parameters<typeof real>[0]) => {
      const f = await real(settings)
      return new Proxy(f, {
        get(t, k) {
          if (k === 'pullRequestsForCommit')
            return (sha: string) => {
              lookups++
              return t.pullRequestsForCommit(sha)
            }
          if (k === 'reviews')
            return (n: number) =>
              n === merged[1]!.n ? Promise.reject(new Error('GitHub answered 502')) : t.reviews(n)
          const v = Reflect.get(t, k) as unknown
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v
        },
      })
    }
    const opts = { cwd: ci.dir, now: () => new Date(), executors: ['github-actions[bot]'] }
    const batched = executionGate({ ...opts, forgeFactory: flaky })
    await batched.prepare!(xs)
    expect(lookups, 'one gate run per merge').toBe(2)
    const first = await batched.evaluate(xs[0]!)
    await expect(batched.evaluate(xs[1]!)).rejects.toThrow(/502/)
    expect(lookups, 'evaluate answers from the prepared runs').toBe(2)

    const lone = await executionGate({ ...opts, forgeFactory: real }).evaluate(xs[0]!)
    expect(first).toEqual(lone)
    expect(first).toMatchObject({ allowed: true, evidence: [expect.objectContaining({ approver: 'bob' })] })
    // A spec prepare never saw is judged on its own, as before.
    const fresh = executionGate({ ...opts, forgeFactory: real })
    await fresh.prepare!([xs[1]!])
    expect(await fresh.evaluate(xs[0]!)).toEqual(lone)
  })
})

describe('approval gate without GitHub (signed approvals only, as the offline demo runs)', () => {
  it('approves a local merge with two signed approvals and no forge at all', async () => {
    const sshOnly = `apiVersion: nhi-recover/v1
kind: RepoConfig
providers:
  local:
    kind: local
approvals:
  ssh:
    allowedSigners: ${SIGNERS}
policy:
  tiers:
    low: { approvals: 2, backends: [ssh] }
`
    repo = recoveryRepo(gh, { config: sshOnly })
    const r = repo
    const id = 'rr-offline-demo'
    const alice = r.person('alice')
    alice.git('checkout', '-q', '-b', id, 'origin/main')
    alice.write(SPEC(id), specYaml({ id, requester: 'dave' }))
    alice.commitAll(`Request ${id}`)
    alice.git('push', '-q', 'origin', `HEAD:refs/heads/${id}`)
    // dave filed the request: his signature is valid but must not count.
    for (const who of ['bob', 'carol', 'dave'] as const) {
      const c = r.person(who)
      c.git('fetch', '-q', 'origin', id)
      c.git('checkout', '-q', '-b', id, `origin/${id}`)
      await approve({
        cwd: c.dir,
        path: SPEC(id),
        keyFile: r.keys[who]!.privatePath,
        principal: who,
        now: new Date(),
      })
      c.git('push', '-q', 'origin', `HEAD:refs/heads/${id}`)
    }
    r.admin.git('fetch', '-q', 'origin', id)
    r.admin.git('merge', '-q', '--no-ff', '-m', `Merge ${id}`, `origin/${id}`)
    r.admin.git('push', '-q', 'origin', 'HEAD:main')
    const res = await r.checkCommit(r.admin.head(), { forgeFactory: undefined })
    const s = subject(res, id)
    expect(res.pr).toBeUndefined()
    expect(s.allowed).toBe(true)
    expect(s.approvals.map((a) => [a.approver, a.counted, a.notes])).toEqual([
      ['bob', true, []],
      ['carol', true, []],
      ['dave', false, ["dave filed this request, so dave's signed approval doesn't count"]],
    ])
  })
})

/** Checks out the PR branch of `id` in a person's clone; returns the spec path. */
async function checkoutPr(r: RecoveryRepo, person: string, id: string): Promise<string> {
  const c = r.person(person)
  c.git('fetch', '-q', 'origin', id)
  const has = c.tryGit('rev-parse', '--verify', '--quiet', `refs/heads/${id}`).status === 0
  if (has) {
    c.git('checkout', '-q', id)
    c.git('merge', '-q', '--ff-only', `origin/${id}`)
  } else c.git('checkout', '-q', '-b', id, `origin/${id}`)
  return SPEC(id)
}
