/**
 * The audit entry: its schema, its RFC 8785 canonical form, its hash and where it lives in
 * the repo. docs/audit-format.md is the normative description; keep the two in step.
 */
import { createHash } from 'node:crypto'
import canonicalizeModule from 'canonicalize'
import * as z from 'zod'
import { ACTIONS } from '../spec/schema.js'

export const AUDIT_API_VERSION = 'nhi-recover/audit/v1'
export const OUTCOMES = ['succeeded', 'failed', 'rolled-back', 'refused'] as const
export type Outcome = (typeof OUTCOMES)[number]
/** Signature algorithm name: an OpenSSH SSHSIG made with an Ed25519 key. */
export const SIGNATURE_ALGORITHM = 'sshsig-ed25519'

const HEX64 = /^[0-9a-f]{64}$/
const OID = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/
const ID = /^[A-Za-z0-9][A-Za-z0-9_.:@+=/-]{0,199}(?:\[bot\])?$/
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

const id = z.string().regex(ID)
const sha256 = z.string().regex(HEX64)
const oid = z.string().regex(OID)
const time = z.string().regex(TIME)
// Printable text only: no control characters that could forge lines in a log view.
const text = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[^\p{Cc}]*$/u)
const nullableId = id.nullable()

export const Approval = z.strictObject({
  approver: id,
  backend: z.enum(['github', 'ssh']),
  /** The commit the approval was given on. */
  commit: oid,
  /** The git blob id of the spec file that was approved. */
  specBlob: oid,
  at: time,
})

/** What the execution engine reports; the ledger adds sequence, time, chain and signature. */
export const AuditEvent = z.strictObject({
  request: z.strictObject({
    id,
    identity: id,
    specPath: text(512).min(1),
    specSha256: sha256,
  }),
  /** The spec's action, or retire: the engine destroying a previous credential once its retention passed. */
  action: z.enum([...ACTIONS, 'retire']),
  provider: id,
  /** Where the credential lives, e.g. "kv-v2:secret/payments/api-key#value". Never a value. */
  target: text(1024).min(1),
  credential: z.strictObject({ versionBefore: nullableId, versionAfter: nullableId }),
  outcome: z.strictObject({ status: z.enum(OUTCOMES), reason: text(2000) }),
  approvals: z.array(Approval).max(50),
  policy: z.strictObject({ tier: id.nullable(), configSha256: sha256 }),
  executor: z.strictObject({ runId: id, actor: id }),
})
export type AuditEvent = z.infer<typeof AuditEvent>

export const Signature = z.strictObject({
  algorithm: z.literal(SIGNATURE_ALGORITHM),
  /** ssh-keygen -l fingerprint of the signing key. */
  keyId: z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/),
  /** The principal in allowed_signers that vouches for the key (ssh-keygen -I). */
  principal: id,
  /** Armored SSHSIG over the ASCII bytes of `hash`, namespace nhi-recover-audit. */
  value: z.string().max(4096),
})
export type Signature = z.infer<typeof Signature>

/** The signed part: everything but hash and signature. */
export const EntryBody = AuditEvent.extend({
  apiVersion: z.literal(AUDIT_API_VERSION),
  sequence: z.int().min(1).max(9_999_999_999),
  time,
  prevHash: sha256.nullable(),
})
export type EntryBody = z.infer<typeof EntryBody>

export const AuditEntry = EntryBody.extend({ hash: sha256, signature: Signature })
export type AuditEntry = z.infer<typeof AuditEntry>

// canonicalize is CommonJS (module.exports = fn); its typings describe an ES default export.
const canonicalize = canonicalizeModule as unknown as (value: unknown) => string | undefined

/** RFC 8785 canonical JSON. */
export function canonical(value: unknown): string {
  const out = canonicalize(value)
  if (out === undefined) throw new TypeError('value has no JSON form')
  return out
}

/** The body of an entry: the entry without hash and signature. */
export function bodyOf(entry: AuditEntry | EntryBody): EntryBody {
  const { hash: _h, signature: _s, ...body } = entry as AuditEntry
  return body
}

/** Lowercase hex sha256 of the canonical JSON of the body. */
export function entryHash(body: EntryBody): string {
  return createHash('sha256').update(canonical(body)).digest('hex')
}

/** The exact file content of an entry: its canonical JSON and one newline. */
export function serializeEntry(entry: AuditEntry): string {
  return canonical(entry) + '\n'
}

const SEQ_DIGITS = 10
const PER_DIR = 1000

/**
 * Repo-relative path of the file that holds entries first..last (one audit commit's worth):
 * AUDIT/entries/<first div 1000, 7 digits>/<first, 10 digits>-<last, 10 digits>.jsonl.
 * One new file per commit: appending never touches an existing file, and a directory holds
 * at most 1,000 files however long the ledger grows.
 */
export function batchPath(auditPath: string, first: number, last: number): string {
  const dir = String(Math.floor(first / PER_DIR)).padStart(SEQ_DIGITS - 3, '0')
  const n = (x: number) => String(x).padStart(SEQ_DIGITS, '0')
  return `${auditPath}/entries/${dir}/${n(first)}-${n(last)}.jsonl`
}

const BATCH_NAME = /^(\d{7})\/(\d{10})-(\d{10})\.jsonl$/

/** The range a path under AUDIT/entries/ names, or undefined when it is not a well-formed entry file. */
export function rangeFromPath(relToEntries: string): { first: number; last: number } | undefined {
  const m = BATCH_NAME.exec(relToEntries)
  if (!m) return undefined
  const first = Number(m[2])
  const last = Number(m[3])
  return Math.floor(first / PER_DIR) === Number(m[1]) && first >= 1 && last >= first
    ? { first, last }
    : undefined
}

/** The file content for consecutive entries: one canonical entry per line. */
export function serializeBatch(entries: readonly AuditEntry[]): string {
  return entries.map(serializeEntry).join('')
}
