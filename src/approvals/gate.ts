/**
 * The approval gate: gathers the evidence for every subject of a pull request or a merge
 * commit (reviews, commits and teams from the forge; spec history and signed statements from
 * the local clone), lets the pure policy engine decide, and fails closed on any doubt.
 *
 * The policy in force is always the base commit's: its nhi-recover.yaml, its allowed_signers
 * and its forge settings. Nothing a pull request changes can lower its own bar.
 *
 * `execute` calls checkApprovals({ commit, paths }) after merge; `approvals check` and `plan`
 * call it with { pr } or { commit }.
 */
import { posix } from 'node:path'
import { ConfigInvalidError, CONFIG_FILE } from '../config/repo.js'
import { ExternalError, UserError, isNhiError } from '../errors.js'
import { git, resolveCommit } from '../git/git.js'
import {
  blobIdsAt,
  blobSha256s,
  changedPaths,
  commitsChangingMany,
  existingObjects,
  firstParentChain,
  lastFirstParentChanges,
  listFilesIn,
  mergeBase,
  readBlobs,
  readFileAt,
  readFilesAt,
  sha256,
  tryFetch,
  type CommitPeople,
} from '../git/history.js'
import {
  parseAllowedSigners,
  verifyWithAllowedSigners,
  type AllowedSigner,
} from '../crypto/allowed-signers.js'
import { APPROVAL_NAMESPACE } from '../crypto/sshsig.js'
import { evaluatePolicy, membershipQueries } from '../policy/engine.js'
import type {
  Decision,
  Evidence,
  GitHubReview,
  MembershipState,
  PolicyInput,
  ReviewState,
  SshApproval,
  Subject,
  SubjectChange,
} from '../policy/types.js'
import { membershipKey } from '../policy/types.js'
import { parseSource } from '../spec/parse.js'
import { DEFAULT_LIMITS, RecoveryRequest, RepoConfig } from '../spec/schema.js'
import { formatProblem } from '../spec/problems.js'
import type { Forge, ForgeCommit, ForgeFactory, ForgeReview, PullRequestInfo } from './forge.js'
import {
  MAX_STATEMENTS,
  STATEMENT_FILE,
  parseStatementFile,
  statementBytes,
  statementsDir,
} from './statement.js'

export const SPECS_DIR = 'recovery-specs'
const SPEC_FILE = /\.ya?ml$/

export interface GateOptions {
  /** A directory inside the local clone of the recovery repo. */
  cwd: string
  /** Check an open (or merged) pull request. */
  pr?: number
  /** Check a commit, e.g. the merge commit on the default branch. */
  commit?: string
  /**
   * A base branch or commit. With pr: where the forge settings are first read from (the PR's
   * own base then confirms them). With commit: overrides the base found from history.
   */
  base?: string
  /** With commit: only these subjects (repo-relative paths), each judged at the merge that last changed it. */
  paths?: string[]
  now: Date
  /** Makes the forge; called only when the config in force configures one. */
  forgeFactory?: ForgeFactory
  /** Executor identities besides the config's audit signer principal. */
  executors?: string[]
  /** Fetch a missing PR head or base from origin (default true). */
  fetchMissing?: boolean
}

export interface SubjectResult extends Decision {
  /** sha256 of the content that is judged (and will execute). */
  sha256: string
  /** The commit whose content is judged. */
  commit: string
  /** The parsed request, for requests. */
  spec?: RecoveryRequest
  request?: {
    id: string
    identity: string
    type: string
    risk: string
    action: string
    provider: string
    mechanism: string
    target: string
    expires: string
  }
}

export interface GateResult {
  allowed: boolean
  repository: string | undefined
  pr: { number: number; url: string; author: string | undefined; head: string } | undefined
  /** The commit whose config is in force. */
  base: string
  /** The commit whose content is judged. */
  head: string
  /** Policy files this change edits. */
  policyChanges: string[]
  subjects: SubjectResult[]
  /** One line for a status or a log. */
  summary: string
}

/** Error for a forge that failed mid-check: blocked, exit 3, with what was known so far. */
export class ApprovalsUnavailableError extends ExternalError {
  readonly details: { allowed: false; reason: string }
  constructor(cause: ExternalError) {
    super(cause.system, cause.code, `Blocked: ${cause.message} Approvals cannot be checked, so none count.`, {
      ...(cause.next ? { next: cause.next } : {}),
      cause,
    })
    this.details = { allowed: false, reason: this.message }
  }
}

interface Side {
  forge: Forge | undefined
  pr: PullRequestInfo | undefined
  reviews: ForgeReview[] | undefined
  prCommits: ForgeCommit[] | undefined
  githubMissing: string | undefined
}

/** Checks the approvals of a pull request or a commit. Never changes anything. */
export async function checkApprovals(opts: GateOptions): Promise<GateResult> {
  if ((opts.pr === undefined) === (opts.commit === undefined)) {
    throw new UserError('USAGE', 'Pass exactly one of --pr N or --commit SHA.', {
      next: 'In GitHub Actions both are read from the event; in a terminal pass one of them.',
    })
  }
  const cwd = await repoRoot(opts.cwd)
  const gate = new Gate(cwd, opts)
  try {
    if (opts.pr !== undefined) return await gate.pullRequest(opts.pr)
    return await gate.commit(opts.commit!)
  } catch (err) {
    if (err instanceof ExternalError && err.system !== 'git' && !(err instanceof ApprovalsUnavailableError)) {
      throw new ApprovalsUnavailableError(err)
    }
    throw err
  }
}

async function repoRoot(cwd: string): Promise<string> {
  try {
    return await git(cwd, ['rev-parse', '--show-toplevel'])
  } catch (err) {
    if (isNhiError(err) && err.code === 'GIT_FAILED') {
      throw new UserError('NOT_A_CLONE', `${cwd} is not inside a git clone of the recovery repo.`, {
        next: 'Run from a clone with full history (in GitHub Actions: actions/checkout with fetch-depth: 0).',
      })
    }
    throw err
  }
}

class Gate {
  readonly #forges = new Map<string, Forge>()
  readonly #memberships = new Map<string, MembershipState>()
  readonly #sha = new Map<string, string>()

  constructor(
    readonly cwd: string,
    readonly opts: GateOptions,
  ) {}

  async pullRequest(n: number): Promise<GateResult> {
    const boot = await this.#bootstrapBase()
    const bootConfig = await this.#configAt(boot)
    if (!bootConfig.approvals.github) {
      throw new UserError(
        'GITHUB_NOT_CONFIGURED',
        `--pr needs GitHub, but ${CONFIG_FILE} on the base branch has no approvals.github.`,
        {
          next: 'Configure approvals.github, or check a commit with --commit SHA (signed approvals only).',
        },
      )
    }
    let forge = await this.#forge(bootConfig)
    let pr = await forge!.pullRequest(n)
    const base = await this.#ensureCommit(pr.base.sha, pr.base.sha, 'the base of the pull request')
    const config = await this.#configAt(base)
    if (!sameGitHub(config, bootConfig)) {
      forge = await this.#forge(config)
      if (!forge) {
        throw new UserError(
          'GITHUB_NOT_CONFIGURED',
          `${CONFIG_FILE} at the PR's base ${short(base)} has no approvals.github.`,
          {
            next: 'Check a commit with --commit SHA instead.',
          },
        )
      }
      pr = await forge.pullRequest(n)
    }
    const head = await this.#ensureCommit(pr.head.sha, `pull/${n}/head`, 'the head of the pull request')
    const [reviews, prCommits] = await Promise.all([forge!.reviews(n), forge!.commits(n)])
    const fork = (await mergeBase(this.cwd, base, head)) ?? base
    const side: Side = { forge, pr, reviews, prCommits, githubMissing: undefined }
    const changed = await changedPaths(this.cwd, fork, head)
    return this.#judge({
      base,
      config,
      evalCommit: head,
      ranges: [[fork, head]],
      changed,
      side,
      only: undefined,
    })
  }

  async commit(rev: string): Promise<GateResult> {
    const target = await this.#resolve(rev, 'commit')
    if (!this.opts.paths) return this.#merge(target, undefined)
    // Each subject is judged at the first-parent commit that last changed it: its merge.
    const groups = new Map<string, string[]>()
    const paths = [...new Set(this.opts.paths.map((p) => posix.normalize(p.replace(/\\/g, '/'))))]
    const changes = await lastFirstParentChanges(this.cwd, target, paths)
    for (const path of paths) {
      const at = changes.get(path)
      if (!at)
        throw new UserError('NOT_IN_HISTORY', `${path} does not exist at ${short(target)}.`, {
          next: 'Pass paths relative to the repo root.',
        })
      const group = groups.get(at)
      if (group) group.push(path)
      else groups.set(at, [path])
    }
    const results: GateResult[] = []
    for (const [at, group] of groups) results.push(await this.#merge(at, group))
    if (results.length === 1) return { ...results[0]!, head: target }
    const subjects = results.flatMap((r) => r.subjects)
    return {
      allowed: results.every((r) => r.allowed),
      repository: results[0]!.repository,
      pr: undefined,
      base: results[0]!.base,
      head: target,
      policyChanges: [...new Set(results.flatMap((r) => r.policyChanges))],
      subjects,
      summary: summarize(subjects),
    }
  }

  /** Judges the change a merge (or direct) commit brought onto its base. */
  async #merge(m: string, only: string[] | undefined): Promise<GateResult> {
    const parents = (await git(this.cwd, ['rev-list', '--parents', '-n1', m])).split(' ').slice(1)
    if (parents.length === 0) {
      throw new UserError(
        'ROOT_COMMIT',
        `Commit ${short(m)} has no parent, so there is no base whose policy is in force.`,
        {
          next: 'Check a later commit.',
        },
      )
    }
    const override = this.opts.base ? await this.#resolve(this.opts.base, 'base') : undefined
    let base = override ?? parents[0]!
    let config = await this.#configAt(base)
    let side = await this.#forgeSide(config, m)
    if (side.pr && side.prCommits && !override) {
      // A rebase merge puts copies of the PR's commits on the branch; the base is below them.
      const found = await this.#baseBelowCopies(m, side.prCommits)
      if (found && found !== base) {
        base = found
        const real = await this.#configAt(base)
        if (!sameGitHub(real, config)) side = await this.#forgeSide(real, m)
        config = real
      }
    }
    let head = parents.length > 1 ? parents[1]! : m
    if (side.pr) {
      head = (await this.#tryCommit(side.pr.head.sha, `pull/${side.pr.number}/head`)) ?? head
    }
    const fork = (await mergeBase(this.cwd, base, head)) ?? base
    const changed = await changedPaths(this.cwd, base, m)
    const ranges: [string, string][] = [[fork, head]]
    if (head !== m) ranges.push([base, m])
    return this.#judge({ base, config, evalCommit: m, ranges, changed, side, only })
  }

  async #forgeSide(config: RepoConfig, m: string): Promise<Side> {
    const forge = await this.#forge(config)
    if (!forge)
      return { forge, pr: undefined, reviews: undefined, prCommits: undefined, githubMissing: undefined }
    const prs = await forge.pullRequestsForCommit(m)
    const pr =
      prs.find((p) => p.mergeCommitSha === m) ??
      prs.find((p) => p.head.sha === m) ??
      prs.find((p) => p.mergedAt !== null)
    if (!pr) {
      return {
        forge,
        pr: undefined,
        reviews: undefined,
        prCommits: undefined,
        githubMissing: `commit ${short(m)} is not part of any pull request on GitHub, so it has no reviews`,
      }
    }
    const [reviews, prCommits] = await Promise.all([forge.reviews(pr.number), forge.commits(pr.number)])
    return { forge, pr, reviews, prCommits, githubMissing: undefined }
  }

  /** Walks down the first-parent chain past commits that are (copies of) the PR's commits. */
  async #baseBelowCopies(m: string, prCommits: ForgeCommit[]): Promise<string | undefined> {
    const shas = new Set(prCommits.map((c) => c.sha))
    const marks = new Set(
      prCommits.map((c) => copyMark(c.author.email, c.author.date, c.message.split('\n', 1)[0])),
    )
    const chain = await firstParentChain(this.cwd, m, prCommits.length + 1)
    let i = 0
    while (
      i < chain.length &&
      (shas.has(chain[i]!.oid) ||
        marks.has(copyMark(chain[i]!.author.email, chain[i]!.author.date, chain[i]!.subject)))
    )
      i++
    return i > 0 ? chain[i]?.oid : undefined
  }

  async #judge(ctx: {
    base: string
    config: RepoConfig
    evalCommit: string
    ranges: [string, string][]
    changed: { status: string; path: string }[]
    side: Side
    only: string[] | undefined
  }): Promise<GateResult> {
    const { config, side } = ctx
    const signersPath = config.approvals.ssh?.allowedSigners
    const policyFiles = new Set([CONFIG_FILE, ...(signersPath ? [signersPath] : [])])
    const policyChanges = ctx.changed.filter((c) => policyFiles.has(c.path)).map((c) => c.path)
    const subjectPaths = ctx.only ?? [
      ...ctx.changed.filter((c) => c.status !== 'D' && isSpecPath(c.path)).map((c) => c.path),
      ...policyChanges.filter((p) => ctx.changed.some((c) => c.path === p && c.status !== 'D')),
    ]
    const deletedPolicy = ctx.changed
      .filter((c) => policyFiles.has(c.path) && c.status === 'D')
      .map((c) => c.path)

    const signers = await this.#signers(ctx.base, signersPath)
    const prAuthor = side.pr?.author ? { login: side.pr.author.login } : undefined
    const loginOf = new Map<string, { author?: string | undefined; committer?: string | undefined }>()
    for (const c of side.prCommits ?? [])
      loginOf.set(c.sha, { author: c.authorLogin, committer: c.committerLogin })

    // Everything each subject needs from git, read for all of them at once: a few git
    // processes per merge instead of several per subject.
    const [contents, statementFiles, ...rangeChanges] = await Promise.all([
      readFilesAt(this.cwd, ctx.evalCommit, subjectPaths),
      listFilesIn(this.cwd, ctx.evalCommit, subjectPaths.map(statementsDir)),
      ...ctx.ranges.map(([from, to]) => commitsChangingMany(this.cwd, from, to, subjectPaths)),
    ])
    const statementsOf = (path: string) =>
      (statementFiles.get(statementsDir(path)) ?? [])
        .filter((f) => STATEMENT_FILE.test(posix.basename(f.path)))
        .slice(0, MAX_STATEMENTS)
    const statementData = await readBlobs(
      this.cwd,
      subjectPaths.flatMap((p) => statementsOf(p).map((f) => f.oid)),
    )

    const results: SubjectResult[] = []
    for (const path of subjectPaths) {
      results.push(
        await this.#subject(
          path,
          ctx,
          {
            content: contents.get(path),
            changesByRange: rangeChanges.map((m) => m.get(path) ?? []),
            statements: statementsOf(path).map((f) => ({ ...f, data: statementData.get(f.oid) })),
          },
          {
            signers,
            prAuthor,
            loginOf,
            policyChanges: [...policyChanges, ...deletedPolicy],
            policyFiles,
          },
        ),
      )
    }
    // Deleting a policy file is a policy change with no content to approve; it needs the highest tier too.
    for (const path of deletedPolicy) {
      results.push(
        blockedSubject({ kind: 'policy-file', path }, ctx.evalCommit, '', [
          `this change deletes ${path}; remove the deletion, or have an administrator merge it`,
        ]),
      )
    }
    const repository = side.forge?.repository
    return {
      allowed: results.every((r) => r.allowed),
      repository,
      pr: side.pr
        ? { number: side.pr.number, url: side.pr.url, author: side.pr.author?.login, head: side.pr.head.sha }
        : undefined,
      base: ctx.base,
      head: ctx.evalCommit,
      policyChanges: [...policyChanges, ...deletedPolicy],
      subjects: results,
      summary: summarize(results),
    }
  }

  async #subject(
    path: string,
    ctx: { base: string; config: RepoConfig; evalCommit: string; ranges: [string, string][]; side: Side },
    read: {
      /** The subject's bytes at the evaluated commit. */
      content: Buffer | undefined
      /** The commits that changed it, per range of ctx.ranges. */
      changesByRange: CommitPeople[][]
      /** Its approval statement files at the evaluated commit. */
      statements: { path: string; oid: string; data: Buffer | undefined }[]
    },
    shared: {
      signers: { list: AllowedSigner[]; problem?: string } | undefined
      prAuthor: { login: string } | undefined
      loginOf: Map<string, { author?: string | undefined; committer?: string | undefined }>
      policyChanges: string[]
      policyFiles: Set<string>
    },
  ): Promise<SubjectResult> {
    const { config, side } = ctx
    const { content } = read
    const kind: Subject['kind'] = shared.policyFiles.has(path) ? 'policy-file' : 'request'
    if (!content)
      return blockedSubject({ kind, path }, ctx.evalCommit, '', [
        `${path} does not exist at ${short(ctx.evalCommit)}`,
      ])
    const digest = sha256(content)
    let subject: Subject
    if (kind === 'request') {
      const parsed = parseSource(RecoveryRequest, content.toString('utf8'), path, config.limits)
      if (!parsed.ok) {
        const first = parsed.problems[0]
        return blockedSubject({ kind, path }, ctx.evalCommit, digest, [
          `the spec is invalid${first ? ` (${formatProblem(first)})` : ''}; run "nhi-recover validate"`,
        ])
      }
      subject = { kind, path, spec: parsed.parsed.value }
    } else subject = { kind, path }

    // Who changed the subject, over every range the change spans.
    const changes: SubjectChange[] = []
    const seen = new Set<string>()
    for (const range of read.changesByRange) {
      for (const c of range) {
        if (seen.has(c.oid)) continue
        seen.add(c.oid)
        changes.push(...people(c, shared.loginOf.get(c.oid)))
      }
    }

    const github: Evidence<GitHubReview> = !config.approvals.github
      ? {
          missing: `GitHub approvals are required, but ${CONFIG_FILE} on the base branch has no approvals.github`,
        }
      : side.githubMissing
        ? { missing: side.githubMissing }
        : { items: await this.#reviews(side.reviews ?? [], path) }
    const ssh: Evidence<SshApproval> = !config.approvals.ssh
      ? {
          missing: `signed approvals are required, but ${CONFIG_FILE} on the base branch has no approvals.ssh`,
        }
      : { items: this.#statements(read.statements, shared.signers) }

    const input: PolicyInput = {
      subject,
      subjectSha256: digest,
      config,
      policyChanges: kind === 'request' ? shared.policyChanges : [],
      now: this.opts.now,
      prAuthor: shared.prAuthor,
      subjectChanges: changes,
      executors: this.opts.executors ?? [],
      github,
      ssh,
      memberships: this.#memberships,
      teamsUnavailable: side.forge
        ? undefined
        : `${CONFIG_FILE} on the base branch has no approvals.github to look teams up in`,
    }
    if (side.forge) {
      for (let q = membershipQueries(input); q.length > 0; q = membershipQueries(input)) {
        const states = await Promise.all(q.map((x) => side.forge!.teamMembership(x.team, x.login)))
        q.forEach((x, i) => this.#memberships.set(membershipKey(x.team, x.login), states[i]!))
      }
    }
    const decision = evaluatePolicy(input)
    return {
      ...decision,
      sha256: digest,
      commit: ctx.evalCommit,
      ...(subject.kind === 'request' ? { spec: subject.spec, request: requestSummary(subject.spec) } : {}),
    }
  }

  async #reviews(reviews: ForgeReview[], path: string): Promise<GitHubReview[]> {
    const commits = [...new Set(reviews.map((r) => r.commitId).filter((c): c is string => !!c))]
    const known = await existingObjects(this.cwd, commits)
    const present = commits.filter((c) => known.has(c))
    const blobs = await blobIdsAt(
      this.cwd,
      present.map((commit) => ({ commit, path })),
    )
    const blobAt = new Map(present.map((c, i) => [c, blobs[i] ?? null]))
    const need = [...new Set(blobs.filter((b): b is string => !!b && !this.#sha.has(b)))]
    for (const [oid, digest] of await blobSha256s(this.cwd, need)) this.#sha.set(oid, digest)
    return reviews.map((r) => {
      const blob = r.commitId && known.has(r.commitId) ? blobAt.get(r.commitId) : undefined
      return {
        id: r.id,
        reviewer: r.user?.login ?? 'ghost',
        reviewerType: r.user?.type ?? 'User',
        association: r.user ? r.association : 'NONE',
        state: (['APPROVED', 'CHANGES_REQUESTED', 'COMMENTED', 'DISMISSED', 'PENDING'].includes(r.state)
          ? r.state
          : 'COMMENTED') as ReviewState,
        submittedAt: r.submittedAt,
        commitId: r.commitId,
        subjectSha256AtCommit: blob === undefined ? undefined : blob === null ? null : this.#sha.get(blob),
      }
    })
  }

  #statements(
    files: { path: string; data: Buffer | undefined }[],
    signers: { list: AllowedSigner[]; problem?: string } | undefined,
  ): SshApproval[] {
    return files.map((f): SshApproval => {
      const parsed = parseStatementFile(f.data ?? Buffer.alloc(0))
      if (!parsed.ok)
        return {
          file: f.path,
          statement: undefined,
          problem: parsed.problem,
          signature: { ok: false, detail: parsed.problem },
        }
      if (!signers || signers.problem) {
        return {
          file: f.path,
          statement: parsed.statement,
          signature: { ok: false, detail: signers?.problem ?? 'approvals.ssh is not configured' },
        }
      }
      const v = verifyWithAllowedSigners(statementBytes(parsed.statement), parsed.signature, signers.list, {
        namespace: APPROVAL_NAMESPACE,
        time: new Date(parsed.statement.time),
        principal: parsed.statement.approver,
      })
      return {
        file: f.path,
        statement: parsed.statement,
        signature: v.ok ? { ok: true } : { ok: false, detail: v.detail },
      }
    })
  }

  async #signers(
    base: string,
    path: string | undefined,
  ): Promise<{ list: AllowedSigner[]; problem?: string } | undefined> {
    if (!path) return undefined
    const data = await readFileAt(this.cwd, base, path)
    if (!data) return { list: [], problem: `the base branch has no ${path}` }
    try {
      return { list: parseAllowedSigners(data.toString('utf8'), `${path} at ${short(base)}`) }
    } catch (err) {
      if (isNhiError(err)) return { list: [], problem: err.message }
      throw err
    }
  }

  #configAt(commit: string): Promise<RepoConfig> {
    return loadConfigAt(this.cwd, commit)
  }

  async #forge(config: RepoConfig): Promise<Forge | undefined> {
    const gh = config.approvals.github
    if (!gh) return undefined
    if (!this.opts.forgeFactory) {
      throw new UserError(
        'GITHUB_UNAVAILABLE_HERE',
        'The policy in force uses GitHub, but no GitHub connection was given.',
        {
          next: 'Run the command with GitHub settings (GITHUB_TOKEN and GITHUB_REPOSITORY, or --repo).',
        },
      )
    }
    const key = `${gh.baseUrl ?? ''}\u0000${gh.tokenEnv}`
    let forge = this.#forges.get(key)
    if (!forge) {
      forge = await this.opts.forgeFactory({ baseUrl: gh.baseUrl, tokenEnv: gh.tokenEnv })
      this.#forges.set(key, forge)
    }
    return forge
  }

  /** Never HEAD: in a PR job HEAD carries the PR's own config, which must not choose where the token goes. */
  async #bootstrapBase(): Promise<string> {
    const candidates = this.opts.base ? [this.opts.base] : ['origin/HEAD', 'origin/main', 'main']
    for (const c of candidates) {
      const sha = await resolveCommit(this.cwd, c)
      if (sha) return sha
    }
    throw new UserError('BASE_NOT_FOUND', `Cannot find the base branch (${candidates.join(', ')}).`, {
      next: 'Pass --base REF.',
    })
  }

  async #resolve(rev: string, what: string): Promise<string> {
    const sha = await resolveCommit(this.cwd, rev)
    if (!sha)
      throw new UserError('COMMIT_NOT_FOUND', `The ${what} ${rev} is not a commit in this clone.`, {
        next: 'Fetch it (git fetch) or check the name.',
      })
    return sha
  }

  async #tryCommit(sha: string, refspec: string): Promise<string | undefined> {
    if (await resolveCommit(this.cwd, sha)) return sha
    if (
      this.opts.fetchMissing !== false &&
      (await tryFetch(this.cwd, refspec)) &&
      (await resolveCommit(this.cwd, sha))
    )
      return sha
    return undefined
  }

  async #ensureCommit(sha: string, refspec: string, what: string): Promise<string> {
    const found = await this.#tryCommit(sha, refspec)
    if (!found) {
      throw new UserError(
        'COMMIT_NOT_FOUND',
        `${what} (${short(sha)}) is not in this clone, and fetching it failed.`,
        {
          next: 'Clone with the full history (in GitHub Actions: actions/checkout with fetch-depth: 0) and fetch the pull request.',
        },
      )
    }
    return found
  }
}

/** The repo config at a commit (the policy in force when that commit is the base). */
export async function loadConfigAt(cwd: string, commit: string): Promise<RepoConfig> {
  const data = await readFileAt(cwd, commit, CONFIG_FILE)
  if (!data) {
    throw new UserError(
      'CONFIG_NOT_FOUND',
      `The base commit ${short(commit)} has no ${CONFIG_FILE}, so no policy is in force.`,
      {
        next: 'Merge the first nhi-recover.yaml with an administrator; after that, every change is checked against it.',
      },
    )
  }
  const file = `${CONFIG_FILE} at ${short(commit)} (the base)`
  const r = parseSource(RepoConfig, data.toString('utf8'), file, DEFAULT_LIMITS)
  if (!r.ok) throw new ConfigInvalidError(file, r.problems)
  return r.parsed.value
}

function sameGitHub(a: RepoConfig, b: RepoConfig): boolean {
  return (
    a.approvals.github?.baseUrl === b.approvals.github?.baseUrl &&
    a.approvals.github?.tokenEnv === b.approvals.github?.tokenEnv
  )
}

function copyMark(email: string | undefined, date: string | undefined, subject: string | undefined): string {
  const t = date ? Date.parse(date) : NaN
  return `${(email ?? '').toLowerCase()}\u0000${Number.isNaN(t) ? '' : t}\u0000${subject ?? ''}`
}

/** A spec file: YAML under recovery-specs/, outside the schema folder. */
export function isSpecPath(path: string): boolean {
  return path.startsWith(`${SPECS_DIR}/`) && SPEC_FILE.test(path) && !path.startsWith(`${SPECS_DIR}/schema/`)
}

function people(
  c: CommitPeople,
  logins: { author?: string | undefined; committer?: string | undefined } | undefined,
): SubjectChange[] {
  return [
    { commit: c.oid, role: 'author', name: c.author.name, email: c.author.email, login: logins?.author },
    {
      commit: c.oid,
      role: 'committer',
      name: c.committer.name,
      email: c.committer.email,
      login: logins?.committer,
    },
  ]
}

function requestSummary(spec: RecoveryRequest): NonNullable<SubjectResult['request']> {
  const t = spec.target
  const where = 'path' in t ? t.path : 'role' in t ? t.role : t.secret
  return {
    id: spec.id,
    identity: spec.identity.name,
    type: spec.identity.type,
    risk: spec.identity.risk,
    action: spec.action,
    provider: t.provider,
    mechanism: t.mechanism,
    target: where,
    expires: spec.expires,
  }
}

function blockedSubject(
  s: { kind: Subject['kind']; path: string },
  commit: string,
  digest: string,
  reasons: string[],
): SubjectResult {
  return {
    subject: {
      kind: s.kind,
      path: s.path,
      id: s.kind === 'policy-file' ? `policy:${s.path}` : posix.basename(s.path).replace(SPEC_FILE, ''),
    },
    allowed: false,
    tier: { risk: undefined, because: [] },
    required: undefined,
    backends: [],
    approvals: [],
    reasons,
    sha256: digest,
    commit,
  }
}

/** One line: what is approved, or what blocks, per subject. */
export function summarize(subjects: SubjectResult[]): string {
  if (subjects.length === 0)
    return 'nothing to approve: this change touches no recovery request and no policy file'
  const blocked = subjects.filter((s) => !s.allowed)
  if (blocked.length === 0) return `approved: ${subjects.map((s) => s.subject.id).join(', ')}`
  return `blocked: ${blocked.map((s) => `${s.subject.id} ${s.reasons.join('; ')}`).join(' | ')}`
}

function short(sha: string): string {
  return sha.slice(0, 7)
}
