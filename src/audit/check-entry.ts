/**
 * The check of one entry on its own: well-formed, canonical, in its own file, hash right,
 * signature valid and made by a key the allowed signers accept at the entry's time. The
 * chain between entries is the verifier's job. Pure, so worker threads can run it.
 */
import { createHash } from 'node:crypto'
import { checkSigner, type AllowedSigner } from '../crypto/allowed-signers.js'
import { fingerprint } from '../crypto/ssh-keys.js'
import { AUDIT_NAMESPACE, parseSignature, signedData, type RawVerify } from '../crypto/sshsig.js'
import { AuditEntry, bodyOf, canonical } from './entry.js'

export interface EntryProblem {
  code: string
  message: string
}

/** What the chain check needs from an entry, or the problem that made it unusable. */
export interface EntrySummary {
  /** The sequence number its file name gives. */
  seq: number
  hash?: string
  prevHash?: string | null
  /** Entry time in ms since the epoch. */
  time?: number
  problem?: EntryProblem
}

export interface EntryCheckContext {
  signers: readonly AllowedSigner[]
  rawVerify: RawVerify
}

/** Checks the bytes of the file that should hold entry `seq`. */
export function checkEntry(seq: number, bytes: Buffer, ctx: EntryCheckContext): EntrySummary {
  const fail = (code: string, message: string, extra: Partial<EntrySummary> = {}): EntrySummary => ({
    seq,
    ...extra,
    problem: { code, message },
  })
  const text = bytes.toString('utf8')
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch {
    return fail('ENTRY_MALFORMED', 'is not valid JSON')
  }
  const parsed = AuditEntry.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    return fail(
      'ENTRY_MALFORMED',
      `does not match the entry format at ${issue?.path.join('.') || '(root)'}: ${issue?.message}`,
    )
  }
  const entry = parsed.data
  const summary = { hash: entry.hash, prevHash: entry.prevHash, time: Date.parse(entry.time) }
  if (entry.sequence !== seq)
    return fail('ENTRY_MISPLACED', `holds entry ${entry.sequence}: entries were moved or reordered`, summary)
  if (canonical(raw) + '\n' !== text)
    return fail(
      'ENTRY_NOT_CANONICAL',
      'is not in canonical form (RFC 8785 JSON and one newline): its bytes were edited',
      summary,
    )
  const hash = createHash('sha256')
    .update(canonical(bodyOf(entry)))
    .digest('hex')
  if (hash !== entry.hash)
    return fail(
      'ENTRY_HASH_MISMATCH',
      `content does not match its hash ${entry.hash.slice(0, 12)}…: it was changed after signing`,
      summary,
    )

  let sig
  try {
    sig = parseSignature(entry.signature.value)
  } catch (err) {
    return fail('SIGNATURE_MALFORMED', `has a malformed signature: ${(err as Error).message}`, summary)
  }
  if (
    sig.namespace !== AUDIT_NAMESPACE ||
    sig.algorithm !== 'ssh-ed25519' ||
    sig.publicKey.type !== 'ssh-ed25519'
  )
    return fail(
      'SIGNATURE_MALFORMED',
      `signature is not an ssh-ed25519 SSHSIG in namespace ${AUDIT_NAMESPACE}`,
      summary,
    )
  const fp = fingerprint(sig.publicKey)
  if (fp !== entry.signature.keyId)
    return fail(
      'SIGNATURE_KEY_MISMATCH',
      `names key ${entry.signature.keyId} but was signed by ${fp}`,
      summary,
    )
  if (
    !ctx.rawVerify(sig.publicKey, signedData(entry.hash, AUDIT_NAMESPACE, sig.hashAlgorithm), sig.signature)
  )
    return fail('SIGNATURE_INVALID', `signature by ${fp} does not verify`, summary)
  const allowed = checkSigner(ctx.signers, {
    publicKey: sig.publicKey,
    namespace: AUDIT_NAMESPACE,
    time: new Date(summary.time),
    principal: entry.signature.principal,
  })
  if (!allowed.ok) {
    const code =
      allowed.reason === 'unknown-key'
        ? 'SIGNER_UNKNOWN'
        : allowed.reason === 'expired' || allowed.reason === 'not-yet-valid'
          ? 'SIGNER_OUTSIDE_VALIDITY'
          : 'SIGNER_NOT_ALLOWED'
    return fail(code, `is signed by a key the allowed signers do not accept: ${allowed.detail}`, summary)
  }
  return { seq, ...summary }
}
