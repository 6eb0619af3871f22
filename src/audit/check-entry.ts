/**
 * The check of one entry on its own: canonical, in its place, hash right, signature valid and
 * made by a key the allowed signers accept at the entry's time. The chain between entries is
 * the verifier's job. Pure, so worker threads can run it; tuned, because it runs per entry.
 */
import { createHash } from 'node:crypto'
import { checkSigner, matchPatternList, type AllowedSigner } from '../crypto/allowed-signers.js'
import { fingerprint } from '../crypto/ssh-keys.js'
import {
  AUDIT_NAMESPACE,
  parseSignature,
  signedData,
  type RawVerify,
  type SshSignature,
} from '../crypto/sshsig.js'

export interface EntryProblem {
  code: string
  message: string
}

/** What the chain check needs from an entry, or the problem that made it unusable. */
export interface EntrySummary {
  /** The sequence number its place in the ledger gives. */
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
  /** Signature blobs differ only in their last 64 bytes per key; parse each kind once. */
  sigCache?: Map<string, KnownSigner>
}

/** What one signature prefix (key, namespace, hash) tells, worked out once. */
interface KnownSigner {
  sig: SshSignature
  fp: string
  /** SSHSIG signed-data bytes up to the message digest (PROTOCOL.sshsig). */
  head: Buffer
  /** Per principal: the validity windows (unix seconds) of the lines that allow this key. */
  windows: Map<string, { after: number; before: number }[]>
}

// Kept here rather than imported from entry.ts, so worker threads need not load zod.
const SIGNATURE_ALGORITHM = 'sshsig-ed25519'
const TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/
const BEGIN = '-----BEGIN SSH SIGNATURE-----\n'
const END = '\n-----END SSH SIGNATURE-----\n'

/**
 * True when every object's keys are in ascending UTF-16 order. With that, JSON.stringify of
 * what JSON.parse read is exactly RFC 8785 (as the canonicalize package produces it: sorted
 * keys, JSON.stringify for every string and number), without a second, slower serializer.
 */
function keysSorted(v: unknown): boolean {
  if (v === null || typeof v !== 'object') return true
  if (Array.isArray(v)) return v.every(keysSorted)
  let prev: string | undefined
  for (const k in v) {
    if (prev !== undefined && !(prev < k)) return false
    prev = k
    if (!keysSorted((v as Record<string, unknown>)[k])) return false
  }
  return true
}

/** Decodes an armored SSHSIG strictly: the exact armor ssh-keygen writes, nothing else. */
function strictBlob(value: string): Buffer | undefined {
  if (!value.startsWith(BEGIN) || !value.endsWith(END)) return undefined
  const lines = value.slice(BEGIN.length, value.length - END.length).split('\n')
  for (let i = 0; i < lines.length - 1; i++) if (lines[i]!.length !== 70) return undefined
  const b64 = lines.join('')
  const blob = Buffer.from(b64, 'base64')
  return blob.toString('base64') === b64 ? blob : undefined
}

/** Checks the bytes of one line of an entry file: the entry that should be number `seq`. */
export function checkEntry(seq: number, bytes: Buffer, ctx: EntryCheckContext): EntrySummary {
  const fail = (code: string, message: string, extra: Partial<EntrySummary> = {}): EntrySummary => ({
    seq,
    ...extra,
    problem: { code, message },
  })
  const text = bytes.toString('utf8')
  let e: Record<string, unknown>
  try {
    e = JSON.parse(text)
  } catch {
    return fail('ENTRY_MALFORMED', 'is not valid JSON')
  }
  if (e === null || typeof e !== 'object' || Array.isArray(e))
    return fail('ENTRY_MALFORMED', 'is not a JSON object')
  const { hash, prevHash, time, sequence } = e
  const signature = e.signature as Record<string, unknown> | undefined
  // hash is compared with a sha256 below and prevHash with the previous entry's hash, so
  // their form needs no regex here.
  if (
    typeof hash !== 'string' ||
    !(prevHash === null || typeof prevHash === 'string') ||
    typeof time !== 'string' ||
    !TIME.test(time) ||
    !Number.isSafeInteger(sequence) ||
    signature === null ||
    typeof signature !== 'object' ||
    typeof signature.value !== 'string' ||
    typeof signature.keyId !== 'string' ||
    typeof signature.principal !== 'string' ||
    signature.algorithm !== SIGNATURE_ALGORITHM
  )
    return fail('ENTRY_MALFORMED', 'lacks a well-formed sequence, time, prevHash, hash or signature')
  const summary = { hash, prevHash, time: Date.parse(time) }
  if (sequence !== seq)
    return fail(
      'ENTRY_MISPLACED',
      `holds entry ${String(sequence)}: entries were moved or reordered`,
      summary,
    )
  if (!text.endsWith('\n') || !keysSorted(e) || JSON.stringify(e) !== text.slice(0, -1))
    return fail(
      'ENTRY_NOT_CANONICAL',
      'is not in canonical form (RFC 8785 JSON and one newline): its bytes were edited',
      summary,
    )
  const body: Record<string, unknown> = {}
  for (const k in e) if (k !== 'hash' && k !== 'signature') body[k] = e[k]
  if (createHash('sha256').update(JSON.stringify(body)).digest('hex') !== hash)
    return fail(
      'ENTRY_HASH_MISMATCH',
      `content does not match its hash ${hash.slice(0, 12)}…: it was changed after signing`,
      summary,
    )

  const blob = strictBlob(signature.value)
  if (!blob || blob.length <= 64)
    return fail('SIGNATURE_MALFORMED', 'has a malformed signature armor', summary)
  const cache = (ctx.sigCache ??= new Map())
  const prefixKey = blob.toString('latin1', 0, blob.length - 64)
  let known = cache.get(prefixKey)
  if (!known) {
    let sig: SshSignature
    try {
      sig = parseSignature(blob)
    } catch (err) {
      return fail('SIGNATURE_MALFORMED', `has a malformed signature: ${(err as Error).message}`, summary)
    }
    if (
      sig.namespace !== AUDIT_NAMESPACE ||
      sig.algorithm !== 'ssh-ed25519' ||
      sig.publicKey.type !== 'ssh-ed25519' ||
      sig.signature.length !== 64
    )
      return fail(
        'SIGNATURE_MALFORMED',
        `signature is not an ssh-ed25519 SSHSIG in namespace ${AUDIT_NAMESPACE}`,
        summary,
      )
    const emptyDigest = signedData('', AUDIT_NAMESPACE, sig.hashAlgorithm)
    const digestLen = sig.hashAlgorithm === 'sha512' ? 64 : 32
    const head = Buffer.from(emptyDigest.subarray(0, emptyDigest.length - digestLen))
    known = { sig, fp: fingerprint(sig.publicKey), head, windows: new Map() }
    if (cache.size < 1000) cache.set(prefixKey, known)
  }
  const { sig, fp } = known
  if (fp !== signature.keyId)
    return fail(
      'SIGNATURE_KEY_MISMATCH',
      `names key ${String(signature.keyId)} but was signed by ${fp}`,
      summary,
    )
  const raw = blob.subarray(blob.length - 64)
  // signedData(hash) without rebuilding its constant head for every entry.
  const data = Buffer.concat([known.head, createHash(sig.hashAlgorithm).update(hash).digest()])
  if (!ctx.rawVerify(sig.publicKey, data, raw))
    return fail('SIGNATURE_INVALID', `signature by ${fp} does not verify`, summary)
  const principal = signature.principal
  let windows: { after: number; before: number }[] | undefined = known.windows.get(principal)
  if (!windows) {
    windows = ctx.signers
      .filter(
        (l) =>
          !l.certAuthority &&
          l.publicKey.blob.equals(sig.publicKey.blob) &&
          matchPatternList(principal, l.principals) &&
          (l.namespaces === undefined || matchPatternList(AUDIT_NAMESPACE, l.namespaces)),
      )
      .map((l) => ({ after: l.validAfter ?? -Infinity, before: l.validBefore ?? Infinity }))
    if (known.windows.size < 100) known.windows.set(principal, windows)
  }
  const when = Math.floor(summary.time / 1000)
  if (windows.some((w) => w.after <= when && when <= w.before)) return { seq, ...summary }
  // Refused: let checkSigner say exactly why, as ssh-keygen would.
  const allowed = checkSigner(ctx.signers, {
    publicKey: sig.publicKey,
    namespace: AUDIT_NAMESPACE,
    time: new Date(summary.time),
    principal: signature.principal,
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
  // The fast path and checkSigner apply the same rules; a disagreement is a bug, so refuse.
  return fail(
    'SIGNER_NOT_ALLOWED',
    'is signed by a key whose allowed_signers entry could not be matched',
    summary,
  )
}
