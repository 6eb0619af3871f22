/**
 * Where a command finds its GitHub context: flags first, then the GitHub Actions environment
 * (GITHUB_REPOSITORY, GITHUB_EVENT_PATH, GITHUB_SHA, GITHUB_API_URL), then the clone's origin.
 * The token is read from the env var the config in force names, and only into a Secret.
 */
import { readFileSync } from 'node:fs'
import { UserError } from '../errors.js'
import { runGit } from '../git/git.js'
import { Secret } from '../secret.js'

export interface GitHubContext {
  owner: string | undefined
  repo: string | undefined
  pr: number | undefined
  commit: string | undefined
  /** The PR's base commit from the event, to read the forge settings in force from. */
  base: string | undefined
  /** GITHUB_API_URL, used when the config gives no baseUrl (GitHub Enterprise runners set it). */
  apiUrl: string | undefined
  /** Timeout, retries and backoff of GitHub calls (NHI_RECOVER_GITHUB_*). */
  tuning: { timeoutMs?: number; retries?: number; retryBaseMs?: number }
}

interface EventPayload {
  pull_request?: { number?: unknown; base?: { sha?: unknown }; head?: { sha?: unknown } }
  after?: unknown
}

/** Resolves the context from flags and the environment; never reads the token. */
export async function resolveGitHubContext(opts: {
  cwd: string
  env: NodeJS.ProcessEnv
  flags: {
    pr?: number | undefined
    commit?: string | undefined
    repo?: string | undefined
    base?: string | undefined
  }
}): Promise<GitHubContext> {
  const { env, flags } = opts
  const event = readEvent(env.GITHUB_EVENT_PATH)
  const eventPr = typeof event?.pull_request?.number === 'number' ? event.pull_request.number : undefined
  const eventBase =
    typeof event?.pull_request?.base?.sha === 'string' ? event.pull_request.base.sha : undefined
  let pr = flags.pr
  let commit = flags.commit
  if (pr === undefined && commit === undefined) {
    if (eventPr !== undefined) pr = eventPr
    else if (env.GITHUB_ACTIONS === 'true' && env.GITHUB_SHA) commit = env.GITHUB_SHA
  }
  const slug = flags.repo ?? env.GITHUB_REPOSITORY ?? (await originRepository(opts.cwd))
  let owner: string | undefined
  let repo: string | undefined
  if (slug) {
    const m = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)$/.exec(slug)
    if (!m)
      throw new UserError('BAD_REPOSITORY', `"${slug}" is not a repository of the form owner/name.`, {
        next: 'Pass --repo owner/name.',
      })
    owner = m[1]
    repo = m[2]
  }
  const num = (name: string) => {
    const v = env[name]
    if (v === undefined || v === '') return undefined
    const n = Number(v)
    if (!Number.isInteger(n) || n < 0)
      throw new UserError('BAD_ENV', `${name} must be a whole number, not "${v}".`)
    return n
  }
  const tuning: GitHubContext['tuning'] = {}
  const t = num('NHI_RECOVER_GITHUB_TIMEOUT_MS')
  const r = num('NHI_RECOVER_GITHUB_RETRIES')
  const b = num('NHI_RECOVER_GITHUB_RETRY_BASE_MS')
  if (t !== undefined) tuning.timeoutMs = t
  if (r !== undefined) tuning.retries = r
  if (b !== undefined) tuning.retryBaseMs = b
  return {
    owner,
    repo,
    pr,
    commit,
    base: flags.base ?? (pr !== undefined && pr === eventPr ? eventBase : undefined),
    apiUrl: env.GITHUB_API_URL || undefined,
    tuning,
  }
}

/** The token from `tokenEnv`, held as a Secret. */
export function readToken(env: NodeJS.ProcessEnv, tokenEnv: string): Secret {
  const value = env[tokenEnv]
  if (!value) {
    throw new UserError(
      'GITHUB_TOKEN_MISSING',
      `${tokenEnv} is not set, so GitHub cannot be asked for reviews and teams.`,
      {
        next: `Set ${tokenEnv} (in GitHub Actions: env: ${tokenEnv}: \${{ github.token }}); approvals.github.tokenEnv names the variable.`,
      },
    )
  }
  return new Secret(value)
}

/** The owner/repo that `origin` points at, for github.com style URLs. */
async function originRepository(cwd: string): Promise<string | undefined> {
  const r = await runGit(cwd, ['remote', 'get-url', 'origin'], { allowFail: true })
  if (r.code !== 0) return undefined
  const url = r.stdout.toString('utf8').trim()
  const m = /[/:]([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+?)(?:\.git)?\/?$/.exec(url)
  return m && /github|^git@/.test(url) ? `${m[1]}/${m[2]}` : undefined
}

function readEvent(path: string | undefined): EventPayload | undefined {
  if (!path) return undefined
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as EventPayload
  } catch {
    throw new UserError('BAD_EVENT', `GITHUB_EVENT_PATH (${path}) is not a readable JSON event.`, {
      next: 'Run inside GitHub Actions, or unset GITHUB_EVENT_PATH and pass --pr or --commit.',
    })
  }
}
