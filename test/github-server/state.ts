/**
 * The state of the local GitHub: users, teams and memberships, one repository with its pull
 * requests, reviews, commits, statuses and issue comments. Tests change it directly; the
 * server renders it as GitHub's REST API does.
 */

export type UserType = 'User' | 'Bot' | 'Organization'
export type MembershipState = 'active' | 'pending'
export type ReviewState = 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'DISMISSED' | 'PENDING'
export type AuthorAssociation =
  'OWNER' | 'MEMBER' | 'COLLABORATOR' | 'CONTRIBUTOR' | 'FIRST_TIME_CONTRIBUTOR' | 'NONE'

export interface User {
  id: number
  login: string
  type: UserType
  name: string | null
  email: string | null
}

export interface Team {
  id: number
  org: string
  slug: string
  members: Map<string, MembershipState>
}

export interface GitPerson {
  name: string
  email: string
  date: string
}

export interface Commit {
  sha: string
  message: string
  author: GitPerson
  committer: GitPerson
  parents: string[]
}

export interface Review {
  id: number
  login: string
  state: ReviewState
  commitId: string
  submittedAt: string
  body: string
  association: AuthorAssociation
}

export interface PullRequest {
  number: number
  id: number
  title: string
  body: string | null
  author: string
  state: 'open' | 'closed'
  base: { ref: string; sha: string }
  head: { ref: string; sha: string }
  commits: Commit[]
  reviews: Review[]
  mergeCommitSha: string | null
  mergedAt: string | null
  createdAt: string
}

export interface Comment {
  id: number
  issue: number
  login: string
  body: string
  createdAt: string
  updatedAt: string
}

export interface Status {
  id: number
  sha: string
  state: 'error' | 'failure' | 'pending' | 'success'
  context: string
  description: string | null
  targetUrl: string | null
  creator: string
  createdAt: string
}

/** Mutable, inspectable GitHub state for one owner/repo. */
export class GitHubState {
  readonly owner: string
  readonly repo: string
  /** Login of the account the token belongs to; it writes comments and statuses. */
  readonly tokenUser: string
  readonly users = new Map<string, User>()
  readonly teams = new Map<string, Team>()
  readonly pulls = new Map<number, PullRequest>()
  readonly comments: Comment[] = []
  readonly statuses: Status[] = []
  /** Logins with write access; they review as MEMBER unless told otherwise. */
  readonly members = new Set<string>()
  #nextId = 1000

  constructor(opts: { owner: string; repo: string; tokenUser?: string }) {
    this.owner = opts.owner
    this.repo = opts.repo
    this.tokenUser = opts.tokenUser ?? 'github-actions[bot]'
    this.addUser(this.owner, { type: 'Organization' })
    this.addUser(this.tokenUser, { type: 'Bot' })
  }

  nextId(): number {
    return this.#nextId++
  }

  /** Adds a user; `member` gives write access (author association MEMBER). */
  addUser(
    login: string,
    opts: { type?: UserType; name?: string; email?: string; member?: boolean } = {},
  ): User {
    const user: User = {
      id: this.nextId(),
      login,
      type: opts.type ?? 'User',
      name: opts.name ?? null,
      email: opts.email ?? null,
    }
    this.users.set(login, user)
    if (opts.member) this.members.add(login)
    return user
  }

  user(login: string): User {
    const u = this.users.get(login)
    if (!u) throw new Error(`test GitHub has no user ${login}`)
    return u
  }

  /** The user whose commit email is `email`, as GitHub links commits to accounts. */
  userByEmail(email: string): User | undefined {
    const lower = email.toLowerCase()
    for (const u of this.users.values()) if (u.email?.toLowerCase() === lower) return u
    return undefined
  }

  addTeam(slug: string, members: Record<string, MembershipState> = {}): Team {
    const team: Team = { id: this.nextId(), org: this.owner, slug, members: new Map(Object.entries(members)) }
    this.teams.set(slug, team)
    return team
  }

  addPull(pr: {
    number: number
    author: string
    base: { ref: string; sha: string }
    head: { ref: string; sha: string }
    commits: Commit[]
    title?: string
    createdAt?: string
  }): PullRequest {
    const full: PullRequest = {
      id: this.nextId(),
      title: pr.title ?? `Recovery request #${pr.number}`,
      body: null,
      state: 'open',
      reviews: [],
      mergeCommitSha: null,
      mergedAt: null,
      createdAt: pr.createdAt ?? new Date().toISOString(),
      ...pr,
    }
    this.pulls.set(pr.number, full)
    return full
  }

  pull(n: number): PullRequest {
    const pr = this.pulls.get(n)
    if (!pr) throw new Error(`test GitHub has no pull request #${n}`)
    return pr
  }

  /** Records a review as GitHub does when someone submits one. */
  addReview(
    n: number,
    r: {
      login: string
      state: ReviewState
      commitId: string
      submittedAt?: Date | string
      body?: string
      association?: AuthorAssociation
    },
  ): Review {
    const review: Review = {
      id: this.nextId(),
      login: r.login,
      state: r.state,
      commitId: r.commitId,
      submittedAt: new Date(r.submittedAt ?? Date.now()).toISOString(),
      body: r.body ?? '',
      association: r.association ?? this.association(r.login),
    }
    this.pull(n).reviews.push(review)
    return review
  }

  /** Dismisses a review, as a maintainer does with "Dismiss review". */
  dismissReview(n: number, id: number): void {
    const review = this.pull(n).reviews.find((r) => r.id === id)
    if (!review) throw new Error(`no review ${id} on #${n}`)
    review.state = 'DISMISSED'
  }

  /** Closes the pull request as merged by `mergeCommitSha`. */
  merge(n: number, mergeCommitSha: string, at = new Date()): void {
    const pr = this.pull(n)
    pr.state = 'closed'
    pr.mergeCommitSha = mergeCommitSha
    pr.mergedAt = at.toISOString()
  }

  association(login: string): AuthorAssociation {
    if (login === this.owner) return 'OWNER'
    return this.members.has(login) ? 'MEMBER' : 'CONTRIBUTOR'
  }

  /** Pull requests whose commits or merge commit include `sha`, as GitHub associates them. */
  pullsForCommit(sha: string): PullRequest[] {
    return [...this.pulls.values()].filter(
      (pr) => pr.mergeCommitSha === sha || pr.head.sha === sha || pr.commits.some((c) => c.sha === sha),
    )
  }

  commentsOn(issue: number): Comment[] {
    return this.comments.filter((c) => c.issue === issue)
  }

  statusesFor(sha: string): Status[] {
    return this.statuses.filter((s) => s.sha === sha)
  }
}
