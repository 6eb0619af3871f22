import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Octokit } from '@octokit/rest'
import { startGitHubServer, type GitHubServer } from './server.js'
import { OpenApiValidator, nullableToJsonSchema } from './openapi.js'

const TOKEN = 'ghs_testserver_token_0123456789'
/** Octokit logs every failed request; the 404 and 401 here are expected. */
const quiet = { debug() {}, info() {}, warn() {}, error() {} }
const sha = (n: number) => n.toString(16).padStart(40, '0')
const person = (name: string, date = '2025-01-01T00:00:00Z') => ({ name, email: `${name}@example.com`, date })

describe('the local GitHub server, through real Octokit', () => {
  let gh: GitHubServer
  let octokit: Octokit

  beforeAll(async () => {
    gh = await startGitHubServer({ token: TOKEN })
    octokit = new Octokit({ auth: TOKEN, baseUrl: gh.url, log: quiet })
    const s = gh.state
    s.addUser('alice', { email: 'alice@example.com', member: true })
    s.addUser('bob', { email: 'bob@example.com', member: true })
    s.addUser('renovate[bot]', { type: 'Bot' })
    s.addTeam('security', { bob: 'active', alice: 'pending' })
    s.addPull({
      number: 7,
      author: 'alice',
      base: { ref: 'main', sha: sha(1) },
      head: { ref: 'rr', sha: sha(3) },
      commits: [
        {
          sha: sha(2),
          message: 'add',
          author: person('alice'),
          committer: person('alice'),
          parents: [sha(1)],
        },
        { sha: sha(3), message: 'fix', author: person('zed'), committer: person('alice'), parents: [sha(2)] },
      ],
    })
    for (let i = 0; i < 250; i++)
      s.addReview(7, { login: i % 2 ? 'bob' : 'renovate[bot]', state: 'COMMENTED', commitId: sha(3) })
  })
  afterAll(async () => {
    await gh.close()
  })

  it('answers every operation nhi-recover uses with responses that match the OpenAPI description', async () => {
    const o = { owner: 'acme', repo: 'recovery' }
    const pr = await octokit.rest.pulls.get({ ...o, pull_number: 7 })
    expect(pr.data.user.login).toBe('alice')
    const reviews = await octokit.paginate(octokit.rest.pulls.listReviews, {
      ...o,
      pull_number: 7,
      per_page: 100,
    })
    expect(reviews).toHaveLength(250)
    const commits = await octokit.paginate(octokit.rest.pulls.listCommits, {
      ...o,
      pull_number: 7,
      per_page: 100,
    })
    expect(commits.map((c) => c.author?.login ?? null)).toEqual(['alice', null])
    const pulls = await octokit.rest.repos.listPullRequestsAssociatedWithCommit({ ...o, commit_sha: sha(2) })
    expect(pulls.data.map((p) => p.number)).toEqual([7])
    const bob = await octokit.rest.teams.getMembershipForUserInOrg({
      org: 'acme',
      team_slug: 'security',
      username: 'bob',
    })
    expect(bob.data.state).toBe('active')
    const alice = await octokit.rest.teams.getMembershipForUserInOrg({
      org: 'acme',
      team_slug: 'security',
      username: 'alice',
    })
    expect(alice.data.state).toBe('pending')
    await expect(
      octokit.rest.teams.getMembershipForUserInOrg({ org: 'acme', team_slug: 'security', username: 'zed' }),
    ).rejects.toMatchObject({ status: 404 })
    const created = await octokit.rest.issues.createComment({ ...o, issue_number: 7, body: 'hello' })
    await octokit.rest.issues.updateComment({ ...o, comment_id: created.data.id, body: 'hello again' })
    const comments = await octokit.paginate(octokit.rest.issues.listComments, { ...o, issue_number: 7 })
    expect(comments.map((c) => c.body)).toEqual(['hello again'])
    await octokit.rest.repos.createCommitStatus({
      ...o,
      sha: sha(3),
      state: 'failure',
      context: 'c',
      description: 'd',
    })
    const statuses = await octokit.rest.repos.listCommitStatusesForRef({ ...o, ref: sha(3) })
    expect(statuses.data.map((s) => s.state)).toEqual(['failure'])
    expect(gh.problems).toEqual([])
  })

  it('pages 250 reviews in three requests of at most 100', async () => {
    gh.resetLog()
    await octokit.paginate(octokit.rest.pulls.listReviews, {
      owner: 'acme',
      repo: 'recovery',
      pull_number: 7,
      per_page: 100,
    })
    expect(gh.requests.map((r) => r.status)).toEqual([200, 200, 200])
  })

  it('refuses a wrong token with 401', async () => {
    const other = new Octokit({ auth: 'wrong', baseUrl: gh.url, log: quiet })
    await expect(
      other.rest.pulls.get({ owner: 'acme', repo: 'recovery', pull_number: 7 }),
    ).rejects.toMatchObject({
      status: 401,
    })
  })
})

describe('the OpenAPI check itself', () => {
  const v = new OpenApiValidator()

  it('rejects a review without the fields GitHub always sends', () => {
    const op = v.match('GET', '/repos/acme/recovery/pulls/1/reviews')!
    expect(v.validateResponse(op, 200, [{ id: 1, state: 'APPROVED' }]).join('\n')).toMatch(
      /required property 'user'/,
    )
  })

  it('rejects a membership state that GitHub does not have', () => {
    const op = v.match('GET', '/orgs/acme/teams/security/memberships/bob')!
    expect(v.validateResponse(op, 200, { url: 'http://x/m', role: 'member', state: 'invited' })).not.toEqual(
      [],
    )
  })

  it('accepts null only where the description says nullable', () => {
    const op = v.match('GET', '/orgs/acme/teams/security/memberships/bob')!
    expect(v.validateResponse(op, 200, { url: 'http://x/m', role: 'member', state: null })).not.toEqual([])
    expect(nullableToJsonSchema({ type: 'string', nullable: true })).toEqual({
      anyOf: [{ type: 'null' }, { type: 'string' }],
    })
  })

  it('rejects a status description GitHub would refuse', () => {
    const op = v.match('POST', '/repos/acme/recovery/statuses/abc')!
    expect(v.validateRequest(op, { state: 'green' })).not.toEqual([])
  })
})
