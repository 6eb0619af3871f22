/**
 * The answers a new spec is made from. Flags and the wizard fill the same record, so both
 * paths go through the same checks. Each answer names the flag that gives it on the
 * command line, which is how a missing answer is reported in CI.
 */
import type { Mechanism } from '../spec/schema.js'

export type AnswerKey =
  | 'identity'
  | 'type'
  | 'owner'
  | 'risk'
  | 'provider'
  | 'mechanism'
  | 'path'
  | 'role'
  | 'secret'
  | 'user'
  | 'mount'
  | 'action'
  | 'rollbackOf'
  | 'reason'
  | 'ticket'
  | 'requester'
  | 'requesterKind'
  | 'expiresIn'
  | 'retainPrevious'
  | 'id'

export type Answers = Partial<Record<AnswerKey, string>>

export interface FieldInfo {
  /** Flag name without the leading dashes. */
  flag: string
  /** The question the wizard asks. */
  question: string
  /** Short name in the wizard's summary. */
  label: string
}

export const FIELDS: Record<AnswerKey, FieldInfo> = {
  identity: { flag: 'identity', question: 'Name of the identity (e.g. payments-api-key)', label: 'Identity' },
  type: { flag: 'type', question: 'Type of identity', label: 'Type' },
  owner: { flag: 'owner', question: 'Owning team or person', label: 'Owner' },
  risk: { flag: 'risk', question: 'Risk tier', label: 'Risk' },
  provider: { flag: 'provider', question: 'Provider that holds the credential', label: 'Provider' },
  mechanism: { flag: 'mechanism', question: 'Rotation mechanism', label: 'Mechanism' },
  path: { flag: 'path', question: 'Path of the secret', label: 'Path' },
  role: { flag: 'role', question: 'Role name', label: 'Role' },
  secret: { flag: 'secret', question: 'Secrets Manager secret name or ARN', label: 'Secret' },
  user: { flag: 'user', question: 'IAM user name', label: 'IAM user' },
  mount: { flag: 'mount', question: 'Mount path', label: 'Mount' },
  action: { flag: 'action', question: 'Action', label: 'Action' },
  rollbackOf: {
    flag: 'rollback-of',
    question: 'Id of the request whose rotation is undone',
    label: 'Rollback of',
  },
  reason: { flag: 'reason', question: 'Why must the credential be recovered?', label: 'Reason' },
  ticket: { flag: 'ticket', question: 'Incident or change ticket', label: 'Ticket' },
  requester: { flag: 'requester', question: 'Your login or principal', label: 'Requester' },
  requesterKind: {
    flag: 'requester-kind',
    question: 'Are you a person or an agent?',
    label: 'Requester kind',
  },
  expiresIn: { flag: 'expires-in', question: 'The request expires in (e.g. 7d)', label: 'Expires in' },
  retainPrevious: {
    flag: 'retain-previous',
    question: 'Keep the previous credential valid for (e.g. 24h)',
    label: 'Retain previous',
  },
  id: { flag: 'id', question: 'Request id', label: 'Id' },
}

/** The target answers each mechanism needs, in the order the wizard asks them. */
export const TARGET_FIELDS: Record<Mechanism, readonly AnswerKey[]> = {
  local: ['path'],
  'kv-v2': ['path'],
  'approle-secret-id': ['role', 'path'],
  'database-static-role': ['role'],
  'secrets-manager': ['secret'],
  'iam-access-key': ['user', 'secret'],
}

/** Mechanisms with a mount path (optional: the schema has a default). */
export const MOUNT_MECHANISMS: ReadonlySet<string> = new Set([
  'kv-v2',
  'approle-secret-id',
  'database-static-role',
])

/** Question for a target answer, which depends on the mechanism. */
export function targetQuestion(key: AnswerKey, mechanism: string | undefined): string {
  if (key === 'path' && mechanism === 'approle-secret-id') return 'KV v2 path that receives the new secret-id'
  if (key === 'path' && mechanism === 'kv-v2') return 'Path of the secret inside the KV v2 mount'
  if (key === 'path' && mechanism === 'local') return 'Key of the secret in the local store'
  if (key === 'role' && mechanism === 'approle-secret-id') return 'AppRole role name'
  if (key === 'role' && mechanism === 'database-static-role') return 'Database static role name'
  if (key === 'secret' && mechanism === 'iam-access-key')
    return 'Secrets Manager secret that receives the new key pair'
  return FIELDS[key].question
}

const ALWAYS_REQUIRED: readonly AnswerKey[] = [
  'identity',
  'type',
  'owner',
  'risk',
  'provider',
  'mechanism',
  'action',
  'reason',
  'ticket',
  'requester',
  'requesterKind',
]

/** The answers a complete request needs, given what is already known (mechanism, action). */
export function requiredAnswers(a: Answers): AnswerKey[] {
  const out = [...ALWAYS_REQUIRED]
  const mech = a.mechanism as Mechanism | undefined
  if (mech && mech in TARGET_FIELDS) out.splice(out.indexOf('mechanism') + 1, 0, ...TARGET_FIELDS[mech])
  if (a.action === 'rollback') out.splice(out.indexOf('action') + 1, 0, 'rollbackOf')
  return out
}

/** Required answers that are still empty. */
export function missingAnswers(a: Answers): AnswerKey[] {
  return requiredAnswers(a).filter((k) => !a[k]?.trim())
}
