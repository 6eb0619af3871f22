/**
 * SSH-signed approval statements: the exact bytes signed, the file that carries them, and where
 * that file lives (beside the spec, one file per approver). Signatures use the SSHSIG code in
 * src/crypto with the namespace nhi-recover-approval, so `ssh-keygen -Y verify` agrees.
 */
import * as z from 'zod'
import { posix } from 'node:path'
import type { ApprovalStatement } from '../policy/types.js'

export const STATEMENT_TYPE = 'nhi-recover-approval/v1'
/** Largest statement file read; a real one is well under 2 KiB. */
export const MAX_STATEMENT_BYTES = 16 * 1024
/** Most statement files read beside one spec. */
export const MAX_STATEMENTS = 200

const Statement = z.strictObject({
  type: z.literal(STATEMENT_TYPE),
  // Narrow charsets: these fields are quoted in reasons, logs and the PR comment.
  requestId: z
    .string()
    .max(200)
    .regex(/^(?:policy:)?[A-Za-z0-9][A-Za-z0-9_.@+=/-]*$/),
  specPath: z
    .string()
    .max(1024)
    .regex(/^[A-Za-z0-9_.@+=/-]+$/),
  specSha256: z.string().regex(/^[0-9a-f]{64}$/),
  approver: z
    .string()
    .min(1)
    .max(128)
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.@+-]*(?:\[bot\])?$/),
  time: z.iso.datetime({ offset: true }),
})

const StatementFile = z.strictObject({ statement: Statement, signature: z.string().min(1).max(8192) })

/** The signed bytes: the statement as JSON with sorted keys, so every signer and verifier agrees. */
export function statementBytes(s: ApprovalStatement): Buffer {
  const sorted = Object.fromEntries(Object.entries(s).sort(([a], [b]) => (a < b ? -1 : 1)))
  return Buffer.from(JSON.stringify(sorted), 'utf8')
}

/** The statement file's content. */
export function formatStatementFile(statement: ApprovalStatement, signature: string): string {
  return JSON.stringify({ statement, signature }, null, 2) + '\n'
}

export type ParsedStatement =
  { ok: true; statement: ApprovalStatement; signature: string } | { ok: false; problem: string }

/** Reads a statement file; never throws. */
export function parseStatementFile(data: Buffer): ParsedStatement {
  if (data.length > MAX_STATEMENT_BYTES)
    return { ok: false, problem: `larger than ${MAX_STATEMENT_BYTES} bytes` }
  let json: unknown
  try {
    json = JSON.parse(data.toString('utf8'))
  } catch {
    return { ok: false, problem: 'not JSON' }
  }
  const r = StatementFile.safeParse(json)
  if (!r.success) {
    const i = r.error.issues[0]!
    return { ok: false, problem: `${i.path.join('.') || 'file'}: ${i.message}` }
  }
  return { ok: true, statement: r.data.statement, signature: r.data.signature }
}

/** The directory of a subject's statements: recovery-specs/rr-x.yaml → recovery-specs/rr-x.approvals */
export function statementsDir(subjectPath: string): string {
  const { dir, name, ext, base } = posix.parse(subjectPath)
  const stem = ext === '.yaml' || ext === '.yml' ? name : base
  return posix.join(dir, `${stem}.approvals`)
}

/** A statement file's name: <principal>.json. Anything else beside a spec is not a statement. */
export const STATEMENT_FILE = /^[A-Za-z0-9][A-Za-z0-9_.@+-]*(?:\[bot\])?\.json$/

/** Where an approver's statement for a subject lives. */
export function statementPath(subjectPath: string, approver: string): string {
  return posix.join(statementsDir(subjectPath), `${approver}.json`)
}
