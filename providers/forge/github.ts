/**
 * The GitHub forge, over Octokit with its throttling and retry plugins. Octokit is imported
 * lazily, so commands that never reach GitHub never load it. Errors become typed: an
 * unreachable or failing GitHub is an ExternalError (exit 3), a refused token or a missing
 * pull request a UserError (exit 2). The token stays in a Secret and never appears in output.
 */
import { ExternalError, UserError } from '../../src/errors.js'
import type { Secret } from '../../src/secret.js'
import type {
  CommitState,
  Forge,
  ForgeCommit,
  ForgeFactory,
  ForgeReview,
  ForgeUser,
  PullRequestInfo,
} from '../../src/approvals/forge.js'
import type { MembershipState } from '../../src/policy/types.js'
import { readToken, type GitHubContext } from '../../src/approvals/github-context.js'

export const DEFAULT_GITHUB_API = 'https://api.github.com'

export interface GitHubForgeOptions {
  token: Secret
  /** Name of the env var the token came from, for messages. */
  tokenEnv: string
  owner: string
  repo: string
  /** API base URL; GitHub Enterprise Server uses https://HOST/api/v3. */
  baseUrl?: string | undefined
  /** Per-request timeout. */
  timeoutMs?: number
  /** Retries of a 5xx or network error, with quadratic backoff from retryBaseMs. */
  retries?: number
  retryBaseMs?: number
}

interface RequestErrorLike {
  status?: number
  message?: string
  name?: string
  response?: { headers?: Record<string, string | undefined> }
}

const silent = { debug() {}, info() {}, warn() {}, error() {} }
const PER_PAGE = 100

/** Creates the GitHub forge. Loads Octokit on first use. */
export async function createGitHubForge(opts: GitHubForgeOptions): Promise<Forge> {
  const [{ Octokit }, { throttling }, { retry }] = await Promise.all([
    import('@octokit/rest'),
    import('@octokit/plugin-throttling'),
    import('@octokit/plugin-retry'),
  ])
  const timeoutMs = opts.timeoutMs ?? 10_000
  const retries = opts.retries ?? 2
  const baseUrl = (opts.baseUrl ?? DEFAULT_GITHUB_API).replace(/\/+$/, '')
  const timedFetch: typeof fetch = (url, init) =>
    fetch(url, {
      ...init,
      signal: init?.signal
        ? AbortSignal.any([init.signal, AbortSignal.timeout(timeoutMs)])
        : AbortSignal.timeout(timeoutMs),
    })
  const Kit = Octokit.plugin(throttling, retry)
  // Rate limits: wait and retry twice when GitHub says how long; beyond a minute, fail closed.
  const onLimit = (after: number, _o: unknown, _k: unknown, count: number) => count < 2 && after <= 60
  const octokit = new Kit({
    auth: opts.token.reveal(),
    baseUrl,
    userAgent: 'nhi-recover',
    log: silent,
    request: { fetch: timedFetch },
    retry: { retries, retryAfterBaseValue: opts.retryBaseMs ?? 1000 },
    throttle: { onRateLimit: onLimit, onSecondaryRateLimit: onLimit },
  })
  const repo = { owner: opts.owner, repo: opts.repo }
  const repository = `${opts.owner}/${opts.repo}`

  /** Runs one API operation and turns any failure into a typed error that says what failed. */
  async function call<T>(what: string, fn: () => Promise<T>, notFound?: () => T | never): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      const e = err as RequestErrorLike
      const status = e.status
      if (status === 404 && notFound) return notFound()
      if (status === 401) {
        throw new UserError(
          'GITHUB_AUTH',
          `GitHub refused the token in ${opts.tokenEnv} while reading ${what} (401).`,
          {
            next: `Set ${opts.tokenEnv} to a valid token for ${repository}${baseUrl === DEFAULT_GITHUB_API ? '' : ` on ${baseUrl}`}.`,
          },
        )
      }
      const limited = status === 403 && e.response?.headers?.['x-ratelimit-remaining'] === '0'
      if (status === 403 && !limited) {
        throw new UserError('GITHUB_FORBIDDEN', `The token in ${opts.tokenEnv} may not read ${what} (403).`, {
          next: 'Give the token pull-requests: read and statuses: write on the repository, and members: read on the organization for team checks.',
        })
      }
      if (status === 404 || status === 410 || status === 422) {
        throw new UserError('GITHUB_NOT_FOUND', `GitHub has no ${what} in ${repository} (${status}).`, {
          next: 'Check the pull request number, the commit and the repository (--repo or GITHUB_REPOSITORY).',
        })
      }
      const timedOut = e.name === 'TimeoutError' || /timeout|timed out|aborted/i.test(e.message ?? '')
      const why = timedOut
        ? `did not answer within ${timeoutMs / 1000}s`
        : e.response
          ? `answered HTTP ${status}`
          : `could not be reached (${scrub(e.message)})`
      throw new ExternalError(
        'github',
        'GITHUB_UNAVAILABLE',
        `GitHub (${baseUrl}) ${why} while reading ${what}${retries > 0 ? ` (after ${retries} retries)` : ''}.`,
        { next: 'Nothing was approved or changed. Re-run the check when GitHub is reachable.', cause: err },
      )
    }
  }

  return {
    repository,
    owner: opts.owner,

    pullRequest: (n) =>
      call(`pull request #${n}`, async () =>
        toPull((await octokit.rest.pulls.get({ ...repo, pull_number: n })).data),
      ),

    pullRequestsForCommit: (sha) =>
      call(`the pull requests of commit ${sha.slice(0, 7)}`, async () => {
        const list = await octokit.paginate(octokit.rest.repos.listPullRequestsAssociatedWithCommit, {
          ...repo,
          commit_sha: sha,
          per_page: PER_PAGE,
        })
        return list.map(toPull)
      }),

    reviews: (n) =>
      call(`the reviews of pull request #${n}`, async () => {
        const list = await octokit.paginate(octokit.rest.pulls.listReviews, {
          ...repo,
          pull_number: n,
          per_page: PER_PAGE,
        })
        return list.map((r): ForgeReview => ({
          id: r.id,
          user: toUser(r.user),
          association: r.author_association,
          state: r.state,
          submittedAt: r.submitted_at ?? undefined,
          commitId: r.commit_id ?? undefined,
        }))
      }),

    commits: (n) =>
      call(`the commits of pull request #${n}`, async () => {
        const list = await octokit.paginate(octokit.rest.pulls.listCommits, {
          ...repo,
          pull_number: n,
          per_page: PER_PAGE,
        })
        return list.map((c): ForgeCommit => ({
          sha: c.sha,
          parents: c.parents.map((p) => p.sha),
          message: c.commit.message,
          author: { name: c.commit.author?.name, email: c.commit.author?.email, date: c.commit.author?.date },
          committer: {
            name: c.commit.committer?.name,
            email: c.commit.committer?.email,
            date: c.commit.committer?.date,
          },
          authorLogin: c.author && 'login' in c.author ? c.author.login : undefined,
          committerLogin: c.committer && 'login' in c.committer ? c.committer.login : undefined,
        }))
      }),

    teamMembership: (team, login) =>
      call(
        `the membership of ${login} in team ${team}`,
        async (): Promise<MembershipState> => {
          const r = await octokit.rest.teams.getMembershipForUserInOrg({
            org: opts.owner,
            team_slug: team,
            username: login,
          })
          return r.data.state === 'active' ? 'active' : 'pending'
        },
        () => 'none',
      ),

    upsertComment: (n, marker, body) =>
      call(`the comments of pull request #${n}`, async () => {
        const comments = await octokit.paginate(octokit.rest.issues.listComments, {
          ...repo,
          issue_number: n,
          per_page: PER_PAGE,
        })
        const mine = comments.find((c) => (c.body ?? '').startsWith(marker))
        if (!mine) {
          const r = await octokit.rest.issues.createComment({ ...repo, issue_number: n, body })
          return { id: r.data.id, url: r.data.html_url, action: 'created' as const }
        }
        if (mine.body === body) return { id: mine.id, url: mine.html_url, action: 'unchanged' as const }
        const r = await octokit.rest.issues.updateComment({ ...repo, comment_id: mine.id, body })
        return { id: r.data.id, url: r.data.html_url, action: 'updated' as const }
      }),

    setStatus: (sha, s) =>
      call(`the statuses of commit ${sha.slice(0, 7)}`, async () => {
        await octokit.rest.repos.createCommitStatus({
          ...repo,
          sha,
          state: s.state as CommitState,
          context: s.context,
          description: s.description.slice(0, 140),
          ...(s.targetUrl ? { target_url: s.targetUrl } : {}),
        })
      }),
  }
}

function normalize(url: string): string {
  return url.replace(/\/+$/, '').toLowerCase()
}

function toUser(u: { login: string; type: string } | null | undefined): ForgeUser | undefined {
  return u ? { login: u.login, type: u.type } : undefined
}

function toPull(p: {
  number: number
  user: { login: string; type: string } | null
  state: string
  merge_commit_sha: string | null
  merged_at: string | null
  base: { ref: string; sha: string }
  head: { ref: string; sha: string }
  html_url: string
}): PullRequestInfo {
  return {
    number: p.number,
    author: toUser(p.user),
    state: p.state === 'open' ? 'open' : 'closed',
    mergeCommitSha: p.merge_commit_sha,
    mergedAt: p.merged_at,
    base: { ref: p.base.ref, sha: p.base.sha },
    head: { ref: p.head.ref, sha: p.head.sha },
    url: p.html_url,
  }
}

/** Error text from the network layer can carry a URL; keep it short and free of credentials. */
function scrub(message: string | undefined): string {
  return (message ?? 'unknown error').replace(/\/\/[^@/\s]*@/g, '//').slice(0, 200)
}

/**
 * The forge factory a command hands to the gate: the repository and tuning come from the
 * command's context, the base URL and token variable from the config in force.
 */
export function githubForgeFactory(ctx: GitHubContext, env: NodeJS.ProcessEnv): ForgeFactory {
  return async ({ baseUrl, tokenEnv }) => {
    if (!ctx.owner || !ctx.repo) {
      throw new UserError(
        'REPOSITORY_UNKNOWN',
        'Which GitHub repository is this? It is not in --repo, GITHUB_REPOSITORY or the origin remote.',
        {
          next: 'Pass --repo owner/name.',
        },
      )
    }
    // In GitHub Actions the token belongs to the runner's GitHub; never send it anywhere else.
    if (baseUrl && ctx.apiUrl && normalize(baseUrl) !== normalize(ctx.apiUrl)) {
      throw new UserError(
        'GITHUB_URL_MISMATCH',
        `approvals.github.baseUrl (${baseUrl}) is not the GitHub this job runs on (GITHUB_API_URL=${ctx.apiUrl}), so the token is not sent there.`,
        { next: 'Set approvals.github.baseUrl to this GitHub API URL, or remove it.' },
      )
    }
    return createGitHubForge({
      token: readToken(env, tokenEnv),
      tokenEnv,
      owner: ctx.owner,
      repo: ctx.repo,
      baseUrl: baseUrl ?? ctx.apiUrl,
      ...ctx.tuning,
    })
  }
}
