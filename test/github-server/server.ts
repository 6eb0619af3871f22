/**
 * A stateful local GitHub REST server on loopback, for tests that drive real Octokit. Every
 * response it sends (and every request body it receives) is checked against GitHub's published
 * OpenAPI description; tests assert that `problems` stays empty.
 */
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { OpenApiValidator, type OperationMatch } from './openapi.js'
import {
  GitHubState,
  type Commit,
  type PullRequest,
  type Review,
  type User,
  type Comment,
  type Status,
} from './state.js'

export interface LoggedRequest {
  method: string
  path: string
  operationId: string | undefined
  status: number
}

export interface Fault {
  /** Which requests fail: a regex over "METHOD /path". */
  match: RegExp
  /** HTTP status to answer with, or "hang" to never answer (a timeout for the client). */
  status: number | 'hang'
  /** How many matching requests fail; Infinity for all. */
  times: number
}

export interface GitHubServer {
  url: string
  state: GitHubState
  requests: LoggedRequest[]
  /** Schema violations seen in traffic; a test of correct behaviour expects none. */
  problems: string[]
  /** Makes matching requests fail. */
  fail(match: RegExp, status: number | 'hang', times?: number): void
  clearFaults(): void
  resetLog(): void
  close(): Promise<void>
}

const MAX_PER_PAGE = 100
const DEFAULT_PER_PAGE = 30

/** Starts the server. `token` is the only credential it accepts. */
export async function startGitHubServer(opts: {
  token: string
  owner?: string
  repo?: string
  tokenUser?: string
}): Promise<GitHubServer> {
  const validator = new OpenApiValidator()
  const state = new GitHubState({ owner: opts.owner ?? 'acme', repo: opts.repo ?? 'recovery', ...opts })
  const requests: LoggedRequest[] = []
  const problems: string[] = []
  let faults: Fault[] = []
  const hanging = new Set<ServerResponse>()
  let base = ''

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      problems.push(`server error: ${err instanceof Error ? err.stack : String(err)}`)
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ message: 'test server error' }))
    })
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', base)
    const method = req.method ?? 'GET'
    const op = validator.match(method, url.pathname)
    const raw = await readBody(req)
    const log: LoggedRequest = {
      method,
      path: url.pathname + url.search,
      operationId: op?.operationId,
      status: 0,
    }
    requests.push(log)

    const send = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      log.status = status
      if (op) {
        for (const p of validator.validateResponse(op, status, body)) {
          problems.push(`response ${status} to ${method} ${url.pathname} (${op.operationId}): ${p}`)
        }
      }
      res.writeHead(status, {
        ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
        'x-github-api-version-selected': '2022-11-28',
        'x-ratelimit-limit': '5000',
        'x-ratelimit-remaining': '4999',
        ...headers,
      })
      res.end(body === undefined ? undefined : JSON.stringify(body))
    }

    const fault = faults.find((f) => f.times > 0 && f.match.test(`${method} ${url.pathname}`))
    if (fault) {
      fault.times--
      if (fault.status === 'hang') {
        log.status = -1
        hanging.add(res)
        res.on('close', () => hanging.delete(res))
        return
      }
      return send(fault.status, {
        message: 'Server Error',
        documentation_url: 'https://docs.github.com/rest',
      })
    }

    const auth = req.headers.authorization ?? ''
    if (auth !== `token ${opts.token}` && auth !== `Bearer ${opts.token}`) {
      return send(401, { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' })
    }
    if (!op) {
      problems.push(`request to an operation outside the fixture: ${method} ${url.pathname}`)
      return send(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' })
    }
    let body: unknown
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw)
      } catch {
        return send(400, {
          message: 'Problems parsing JSON',
          documentation_url: 'https://docs.github.com/rest',
        })
      }
    }
    for (const p of validator.validateRequest(op, body)) {
      problems.push(`request body of ${method} ${url.pathname} (${op.operationId}): ${p}`)
    }
    route(op, url, body, send)
  }

  type Send = (status: number, body?: unknown, headers?: Record<string, string>) => void
  const notFound = (send: Send) =>
    send(404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' })

  function route(op: OperationMatch, url: URL, body: unknown, send: Send): void {
    const p = op.params
    if ('owner' in p && (p.owner !== state.owner || p.repo !== state.repo)) return notFound(send)
    switch (op.operationId) {
      case 'pulls/get': {
        const pr = state.pulls.get(Number(p.pull_number))
        return pr ? send(200, renderPull(pr, true)) : notFound(send)
      }
      case 'pulls/list-reviews': {
        const pr = state.pulls.get(Number(p.pull_number))
        if (!pr) return notFound(send)
        return paginate(url, pr.reviews, (r) => renderReview(pr, r), send)
      }
      case 'pulls/list-commits': {
        const pr = state.pulls.get(Number(p.pull_number))
        if (!pr) return notFound(send)
        // GitHub lists at most 250 commits here; the tests stay below that.
        return paginate(url, pr.commits, renderCommit, send)
      }
      case 'repos/list-pull-requests-associated-with-commit':
        return paginate(url, state.pullsForCommit(p.commit_sha!), (pr) => renderPull(pr, false), send)
      case 'teams/get-membership-for-user-in-org': {
        if (p.org !== state.owner) return notFound(send)
        const m = state.teams.get(p.team_slug!)?.members.get(p.username!)
        if (!m) return send(404)
        return send(200, {
          url: `${base}/organizations/1/team/${state.teams.get(p.team_slug!)!.id}/memberships/${p.username}`,
          role: 'member',
          state: m,
        })
      }
      case 'issues/list-comments': {
        const n = Number(p.issue_number)
        if (!state.pulls.has(n)) return notFound(send)
        return paginate(url, state.commentsOn(n), renderComment, send)
      }
      case 'issues/create-comment': {
        const n = Number(p.issue_number)
        if (!state.pulls.has(n)) return notFound(send)
        const text = (body as { body?: unknown } | undefined)?.body
        if (typeof text !== 'string') return validationFailed(send, 'body')
        const now = new Date().toISOString()
        const c: Comment = {
          id: state.nextId(),
          issue: n,
          login: state.tokenUser,
          body: text,
          createdAt: now,
          updatedAt: now,
        }
        state.comments.push(c)
        return send(201, renderComment(c), { location: commentUrl(c) })
      }
      case 'issues/update-comment': {
        const c = state.comments.find((x) => x.id === Number(p.comment_id))
        if (!c) return notFound(send)
        const text = (body as { body?: unknown } | undefined)?.body
        if (typeof text !== 'string') return validationFailed(send, 'body')
        c.body = text
        c.updatedAt = new Date().toISOString()
        return send(200, renderComment(c))
      }
      case 'repos/create-commit-status': {
        const b = (body ?? {}) as {
          state?: Status['state']
          context?: string
          description?: string
          target_url?: string
        }
        if (!b.state || !['error', 'failure', 'pending', 'success'].includes(b.state)) {
          return validationFailed(send, 'state')
        }
        if (b.description !== undefined && b.description.length > 140)
          return validationFailed(send, 'description')
        const s: Status = {
          id: state.nextId(),
          sha: p.sha!,
          state: b.state,
          context: b.context ?? 'default',
          description: b.description ?? null,
          targetUrl: b.target_url ?? null,
          creator: state.tokenUser,
          createdAt: new Date().toISOString(),
        }
        state.statuses.push(s)
        return send(201, renderStatus(s))
      }
      case 'repos/list-commit-statuses-for-ref':
        return paginate(url, [...state.statusesFor(p.ref!)].reverse(), renderStatus, send)
      default:
        problems.push(`no handler for ${op.operationId}`)
        return notFound(send)
    }
  }

  function validationFailed(send: Send, field: string) {
    send(422, {
      message: 'Validation Failed',
      documentation_url: 'https://docs.github.com/rest',
      errors: [{ resource: 'Request', field, code: 'invalid' }],
    })
  }

  function paginate<T>(url: URL, items: T[], render: (x: T) => unknown, send: Send): void {
    const perPage = Math.min(
      MAX_PER_PAGE,
      Math.max(1, Number(url.searchParams.get('per_page') ?? DEFAULT_PER_PAGE)),
    )
    const page = Math.max(1, Number(url.searchParams.get('page') ?? 1))
    const last = Math.max(1, Math.ceil(items.length / perPage))
    const slice = items.slice((page - 1) * perPage, page * perPage)
    const link = (n: number, rel: string) => {
      const u = new URL(url)
      u.searchParams.set('per_page', String(perPage))
      u.searchParams.set('page', String(n))
      return `<${base}${u.pathname}${u.search}>; rel="${rel}"`
    }
    const links: string[] = []
    if (page > 1) links.push(link(page - 1, 'prev'), link(1, 'first'))
    if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'))
    send(200, slice.map(render), links.length > 0 ? { link: links.join(', ') } : {})
  }

  // ---- rendering, field for field as GitHub's schemas require ----

  const repoApi = () => `${base}/repos/${state.owner}/${state.repo}`
  const web = (path: string) => `${base}/web/${path}`

  function renderUser(u: User) {
    const api = `${base}/users/${encodeURIComponent(u.login)}`
    return {
      login: u.login,
      id: u.id,
      node_id: `U_${u.id}`,
      avatar_url: `${base}/avatars/${u.id}`,
      gravatar_id: '',
      url: api,
      html_url: web(encodeURIComponent(u.login)),
      followers_url: `${api}/followers`,
      following_url: `${api}/following{/other_user}`,
      gists_url: `${api}/gists{/gist_id}`,
      starred_url: `${api}/starred{/owner}{/repo}`,
      subscriptions_url: `${api}/subscriptions`,
      organizations_url: `${api}/orgs`,
      repos_url: `${api}/repos`,
      events_url: `${api}/events{/privacy}`,
      received_events_url: `${api}/received_events`,
      type: u.type,
      user_view_type: 'public',
      site_admin: false,
    }
  }

  function renderRepo() {
    const api = repoApi()
    const owner = state.user(state.owner)
    const t = '2024-01-01T00:00:00Z'
    return {
      id: 1,
      node_id: 'R_1',
      name: state.repo,
      full_name: `${state.owner}/${state.repo}`,
      owner: renderUser(owner),
      private: true,
      html_url: web(`${state.owner}/${state.repo}`),
      description: null,
      fork: false,
      url: api,
      archive_url: `${api}/{archive_format}{/ref}`,
      assignees_url: `${api}/assignees{/user}`,
      blobs_url: `${api}/git/blobs{/sha}`,
      branches_url: `${api}/branches{/branch}`,
      collaborators_url: `${api}/collaborators{/collaborator}`,
      comments_url: `${api}/comments{/number}`,
      commits_url: `${api}/commits{/sha}`,
      compare_url: `${api}/compare/{base}...{head}`,
      contents_url: `${api}/contents/{+path}`,
      contributors_url: `${api}/contributors`,
      deployments_url: `${api}/deployments`,
      downloads_url: `${api}/downloads`,
      events_url: `${api}/events`,
      forks_url: `${api}/forks`,
      git_commits_url: `${api}/git/commits{/sha}`,
      git_refs_url: `${api}/git/refs{/sha}`,
      git_tags_url: `${api}/git/tags{/sha}`,
      git_url: `git://localhost/${state.owner}/${state.repo}.git`,
      issue_comment_url: `${api}/issues/comments{/number}`,
      issue_events_url: `${api}/issues/events{/number}`,
      issues_url: `${api}/issues{/number}`,
      keys_url: `${api}/keys{/key_id}`,
      labels_url: `${api}/labels{/name}`,
      languages_url: `${api}/languages`,
      merges_url: `${api}/merges`,
      milestones_url: `${api}/milestones{/number}`,
      notifications_url: `${api}/notifications{?since,all,participating}`,
      pulls_url: `${api}/pulls{/number}`,
      releases_url: `${api}/releases{/id}`,
      ssh_url: `git@localhost:${state.owner}/${state.repo}.git`,
      stargazers_url: `${api}/stargazers`,
      statuses_url: `${api}/statuses/{sha}`,
      subscribers_url: `${api}/subscribers`,
      subscription_url: `${api}/subscription`,
      tags_url: `${api}/tags`,
      teams_url: `${api}/teams`,
      trees_url: `${api}/git/trees{/sha}`,
      clone_url: `${base}/${state.owner}/${state.repo}.git`,
      mirror_url: null,
      hooks_url: `${api}/hooks`,
      svn_url: web(`${state.owner}/${state.repo}`),
      homepage: null,
      language: null,
      forks_count: 0,
      forks: 0,
      stargazers_count: 0,
      watchers_count: 0,
      watchers: 0,
      size: 1,
      default_branch: 'main',
      open_issues_count: 0,
      open_issues: 0,
      is_template: false,
      topics: [],
      has_issues: true,
      has_projects: false,
      has_wiki: false,
      has_pages: false,
      has_downloads: false,
      has_discussions: false,
      archived: false,
      disabled: false,
      visibility: 'private',
      license: null,
      pushed_at: t,
      created_at: t,
      updated_at: t,
    }
  }

  function renderPull(pr: PullRequest, full: boolean) {
    const api = `${repoApi()}/pulls/${pr.number}`
    const issue = `${repoApi()}/issues/${pr.number}`
    const user = renderUser(state.user(pr.author))
    const side = (s: { ref: string; sha: string }) => ({
      label: `${state.owner}:${s.ref}`,
      ref: s.ref,
      sha: s.sha,
      user: renderUser(state.user(state.owner)),
      repo: renderRepo(),
    })
    const simple = {
      url: api,
      id: pr.id,
      node_id: `PR_${pr.id}`,
      html_url: web(`${state.owner}/${state.repo}/pull/${pr.number}`),
      diff_url: web(`${state.owner}/${state.repo}/pull/${pr.number}.diff`),
      patch_url: web(`${state.owner}/${state.repo}/pull/${pr.number}.patch`),
      issue_url: issue,
      commits_url: `${api}/commits`,
      review_comments_url: `${api}/comments`,
      review_comment_url: `${repoApi()}/pulls/comments{/number}`,
      comments_url: `${issue}/comments`,
      statuses_url: `${repoApi()}/statuses/${pr.head.sha}`,
      number: pr.number,
      state: pr.state,
      locked: false,
      title: pr.title,
      user,
      body: pr.body,
      labels: [],
      milestone: null,
      active_lock_reason: null,
      created_at: pr.createdAt,
      updated_at: pr.mergedAt ?? pr.createdAt,
      closed_at: pr.mergedAt,
      merged_at: pr.mergedAt,
      merge_commit_sha: pr.mergeCommitSha,
      assignee: null,
      assignees: [],
      requested_reviewers: [],
      requested_teams: [],
      head: side(pr.head),
      base: side(pr.base),
      _links: {
        self: { href: api },
        html: { href: web(`${state.owner}/${state.repo}/pull/${pr.number}`) },
        issue: { href: issue },
        comments: { href: `${issue}/comments` },
        review_comments: { href: `${api}/comments` },
        review_comment: { href: `${repoApi()}/pulls/comments{/number}` },
        commits: { href: `${api}/commits` },
        statuses: { href: `${repoApi()}/statuses/${pr.head.sha}` },
      },
      author_association: state.association(pr.author),
      auto_merge: null,
      draft: false,
    }
    if (!full) return simple
    return {
      ...simple,
      merged: pr.mergedAt !== null,
      mergeable: pr.state === 'open' ? true : null,
      rebaseable: pr.state === 'open' ? true : null,
      mergeable_state: pr.state === 'open' ? 'clean' : 'unknown',
      merged_by: pr.mergedAt ? renderUser(state.user(state.owner)) : null,
      comments: state.commentsOn(pr.number).length,
      review_comments: 0,
      maintainer_can_modify: false,
      commits: pr.commits.length,
      additions: 1,
      deletions: 0,
      changed_files: 1,
    }
  }

  function renderReview(pr: PullRequest, r: Review) {
    const html = web(`${state.owner}/${state.repo}/pull/${pr.number}#pullrequestreview-${r.id}`)
    return {
      id: r.id,
      node_id: `PRR_${r.id}`,
      user: state.users.has(r.login) ? renderUser(state.user(r.login)) : null,
      body: r.body,
      state: r.state,
      html_url: html,
      pull_request_url: `${repoApi()}/pulls/${pr.number}`,
      _links: { html: { href: html }, pull_request: { href: `${repoApi()}/pulls/${pr.number}` } },
      ...(r.state === 'PENDING' ? {} : { submitted_at: r.submittedAt }),
      commit_id: r.commitId,
      author_association: r.association,
    }
  }

  function renderCommit(c: Commit) {
    const api = `${repoApi()}/commits/${c.sha}`
    const account = (email: string) => {
      const u = state.userByEmail(email)
      return u ? renderUser(u) : null
    }
    return {
      url: api,
      sha: c.sha,
      node_id: `C_${c.sha.slice(0, 12)}`,
      html_url: web(`${state.owner}/${state.repo}/commit/${c.sha}`),
      comments_url: `${api}/comments`,
      commit: {
        url: `${repoApi()}/git/commits/${c.sha}`,
        author: c.author,
        committer: c.committer,
        message: c.message,
        comment_count: 0,
        tree: { sha: '0'.repeat(40), url: `${repoApi()}/git/trees/${'0'.repeat(40)}` },
        verification: {
          verified: false,
          reason: 'unsigned',
          payload: null,
          signature: null,
          verified_at: null,
        },
      },
      author: account(c.author.email),
      committer: account(c.committer.email),
      parents: c.parents.map((sha) => ({
        sha,
        url: `${repoApi()}/commits/${sha}`,
        html_url: web(`${state.owner}/${state.repo}/commit/${sha}`),
      })),
    }
  }

  const commentUrl = (c: Comment) => `${repoApi()}/issues/comments/${c.id}`

  function renderComment(c: Comment) {
    return {
      id: c.id,
      node_id: `IC_${c.id}`,
      url: commentUrl(c),
      html_url: web(`${state.owner}/${state.repo}/pull/${c.issue}#issuecomment-${c.id}`),
      body: c.body,
      user: renderUser(state.user(c.login)),
      created_at: c.createdAt,
      updated_at: c.updatedAt,
      issue_url: `${repoApi()}/issues/${c.issue}`,
      author_association: state.association(c.login),
      performed_via_github_app: null,
    }
  }

  function renderStatus(s: Status) {
    return {
      url: `${repoApi()}/statuses/${s.sha}`,
      avatar_url: null,
      id: s.id,
      node_id: `SC_${s.id}`,
      state: s.state,
      description: s.description,
      target_url: s.targetUrl,
      context: s.context,
      created_at: s.createdAt,
      updated_at: s.createdAt,
      creator: renderUser(state.user(s.creator)),
    }
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`

  return {
    url: base,
    state,
    requests,
    problems,
    fail(match, status, times = Infinity) {
      faults.push({ match, status, times })
    },
    clearFaults() {
      faults = []
      for (const res of hanging) res.destroy()
    },
    resetLog() {
      requests.length = 0
    },
    async close() {
      for (const res of hanging) res.destroy()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}
