/**
 * What the policy engine decides from: the subject (a recovery request, or a policy file a PR
 * edits), the config in force (the base branch's) and the evidence gathered for it. Pure data;
 * no field here is ever a secret.
 */
import type { RecoveryRequest, RepoConfig, Risk } from '../spec/schema.js'

export type Backend = 'github' | 'ssh'

/** Something that is approved: a recovery request, or a policy file that a change edits. */
export type Subject =
  { kind: 'request'; path: string; spec: RecoveryRequest } | { kind: 'policy-file'; path: string }

/** A person or account as the evidence names them; compared case-insensitively on every key. */
export interface Person {
  login?: string | undefined
  email?: string | undefined
  name?: string | undefined
}

/** Someone who changed the subject, and the commit in which they did. */
export interface SubjectChange extends Person {
  commit: string
  role: 'author' | 'committer'
}

export type ReviewState = 'APPROVED' | 'CHANGES_REQUESTED' | 'COMMENTED' | 'DISMISSED' | 'PENDING'

/** One pull request review, with the subject's content at the reviewed commit already looked up. */
export interface GitHubReview {
  id: number
  reviewer: string
  /** GitHub account type: User, Bot, Organization. */
  reviewerType: string
  /** GitHub author association: OWNER, MEMBER, COLLABORATOR, CONTRIBUTOR, NONE… */
  association: string
  state: ReviewState
  submittedAt: string | undefined
  commitId: string | undefined
  /**
   * sha256 of the subject's content at commitId: null when the file did not exist there,
   * undefined when that commit is not in the local history (e.g. force-pushed away).
   */
  subjectSha256AtCommit: string | null | undefined
}

/** The statement an SSH-signed approval signs (`nhi-recover approve`). */
export interface ApprovalStatement {
  type: 'nhi-recover-approval/v1'
  requestId: string
  specPath: string
  specSha256: string
  approver: string
  time: string
}

/** One statement file found beside the subject, with its signature already checked. */
export interface SshApproval {
  /** Repo path of the statement file. */
  file: string
  /** The parsed statement; undefined when the file is not a statement. */
  statement: ApprovalStatement | undefined
  /** Why the file could not be read as a statement. */
  problem?: string
  /** The signature checked against the allowed_signers of the base branch, as statement.approver. */
  signature: { ok: true } | { ok: false; detail: string }
}

/** A backend's evidence, or why there is none. */
export type Evidence<T> = { items: T[] } | { missing: string }

export type MembershipState = 'active' | 'pending' | 'none'

/** Key of one (team, login) membership lookup. */
export function membershipKey(team: string, login: string): string {
  return `${team}\u0000${login.toLowerCase()}`
}

export interface PolicyInput {
  subject: Subject
  /** sha256 of the subject's content that will execute (or merge). */
  subjectSha256: string
  /** The config in force: the base branch's, never the change's own. */
  config: RepoConfig
  /** Policy files (config, allowed_signers) that this change edits; they raise the tier to the highest. */
  policyChanges: string[]
  now: Date
  prAuthor?: Person | undefined
  /** Authors and committers of every commit that changed the subject. */
  subjectChanges: SubjectChange[]
  /** Executor identities besides the config's audit signer principal. */
  executors: string[]
  github: Evidence<GitHubReview>
  ssh: Evidence<SshApproval>
  /** Team memberships looked up so far, by membershipKey. Absent means not looked up. */
  memberships: ReadonlyMap<string, MembershipState>
  /** Why team membership cannot be looked up at all (no forge); undefined when it can. */
  teamsUnavailable?: string | undefined
}

/** How one approver's approval was judged. */
export interface ApprovalView {
  backend: Backend
  approver: string
  /** When the approval was made. */
  at: string | undefined
  /** The reviewed commit (GitHub reviews). */
  commit?: string | undefined
  counted: boolean
  /** Teams (of the tier) this approval counts for. */
  teams: string[]
  /** Why it does not count, or does not count for a team, in words. */
  notes: string[]
}

export interface BackendOutcome {
  backend: Backend
  approvals: number
  required: number
  teams: { team: string; approvals: number; required: number }[]
  satisfied: boolean
}

export interface Decision {
  subject: { kind: Subject['kind']; path: string; id: string }
  allowed: boolean
  /** The tier that applies, and how it was reached in words. */
  tier: { risk: Risk | undefined; because: string[] }
  required:
    | { approvals: number; teams: { team: string; min: number }[]; backends: Backend[]; maxAge: string }
    | undefined
  backends: BackendOutcome[]
  approvals: ApprovalView[]
  /** Every reason it is blocked, each a sentence a reviewer can act on. Empty when allowed. */
  reasons: string[]
}
