/**
 * The forge interface: what the approval gate and plan need from GitHub (or, later, another
 * forge). Implementations live in providers/forge/; tests run them against a local server.
 * Every method throws ExternalError when the forge is unavailable, so callers fail closed.
 */
import type { MembershipState } from '../policy/types.js'

export interface ForgeUser {
  login: string
  /** User, Bot or Organization. */
  type: string
}

export interface PullRequestInfo {
  number: number
  author: ForgeUser | undefined
  state: 'open' | 'closed'
  mergeCommitSha: string | null
  mergedAt: string | null
  base: { ref: string; sha: string }
  head: { ref: string; sha: string }
  url: string
}

export interface ForgeReview {
  id: number
  user: ForgeUser | undefined
  association: string
  state: string
  submittedAt: string | undefined
  commitId: string | undefined
}

export interface GitIdentity {
  name: string | undefined
  email: string | undefined
  date: string | undefined
}

export interface ForgeCommit {
  sha: string
  parents: string[]
  message: string
  author: GitIdentity
  committer: GitIdentity
  /** The forge accounts the commit's emails belong to, when the forge links them. */
  authorLogin: string | undefined
  committerLogin: string | undefined
}

export type CommitState = 'success' | 'failure' | 'pending' | 'error'

export interface Forge {
  /** "owner/name", for messages. */
  readonly repository: string
  readonly owner: string
  pullRequest(n: number): Promise<PullRequestInfo>
  /** Pull requests the forge associates with a commit (merge commit or one of its commits). */
  pullRequestsForCommit(sha: string): Promise<PullRequestInfo[]>
  /** Every review of a pull request, oldest first. */
  reviews(n: number): Promise<ForgeReview[]>
  /** Every commit of a pull request, oldest first. */
  commits(n: number): Promise<ForgeCommit[]>
  /** A login's membership of a team of the repository owner, as of now. */
  teamMembership(team: string, login: string): Promise<MembershipState>
  /** Creates or updates the one comment that starts with `marker`; never makes a second one. */
  upsertComment(
    n: number,
    marker: string,
    body: string,
  ): Promise<{ id: number; url: string; action: 'created' | 'updated' | 'unchanged' }>
  setStatus(
    sha: string,
    s: { state: CommitState; context: string; description: string; targetUrl?: string },
  ): Promise<void>
}

/** Makes a forge on demand: the gate asks only when the config in force uses one. */
export type ForgeFactory = (settings: { baseUrl: string | undefined; tokenEnv: string }) => Promise<Forge>
