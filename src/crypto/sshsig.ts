/**
 * OpenSSH SSHSIG signatures (PROTOCOL.sshsig), byte-compatible with `ssh-keygen -Y sign` and
 * `ssh-keygen -Y verify`. Ed25519 only. Signing and verification run in-process: the ledger
 * verifies tens of thousands of entries per second, which a subprocess per entry cannot.
 */
import { createHash, sign as nodeSign, verify as nodeVerify } from 'node:crypto'
import {
  ED25519,
  WireReader,
  publicKeyFromBlob,
  publicKeyObject,
  sameKey,
  wireStrings,
  type SshPrivateKey,
  type SshPublicKey,
} from './ssh-keys.js'

/** Namespace of audit-entry signatures. */
export const AUDIT_NAMESPACE = 'nhi-recover-audit'
/** Namespace of signed approvals. */
export const APPROVAL_NAMESPACE = 'nhi-recover-approval'
/** Namespace git uses for SSH-signed commits and tags. */
export const GIT_NAMESPACE = 'git'

const MAGIC = Buffer.from('SSHSIG', 'latin1')
const SIG_VERSION = 1
const BEGIN = '-----BEGIN SSH SIGNATURE-----'
const END = '-----END SSH SIGNATURE-----'

export type SshsigHash = 'sha256' | 'sha512'

/** A decoded SSHSIG blob. */
export interface SshSignature {
  publicKey: SshPublicKey
  namespace: string
  hashAlgorithm: SshsigHash
  /** Signature algorithm inside the blob, e.g. ssh-ed25519. */
  algorithm: string
  /** The raw 64-byte Ed25519 signature. */
  signature: Buffer
}

/** Raw Ed25519 signing of the exact bytes given; an SSH key file, ssh-agent or OpenBao transit. */
export type RawSigner = (data: Buffer) => Promise<Buffer>

/**
 * The bytes the key actually signs: MAGIC, namespace, reserved, hash algorithm and
 * H(message), each an SSH string (PROTOCOL.sshsig, "Signed Data").
 */
export function signedData(message: Buffer | string, namespace: string, hash: SshsigHash = 'sha512'): Buffer {
  const digest = createHash(hash).update(message).digest()
  return Buffer.concat([MAGIC, wireStrings(namespace, '', hash, digest)])
}

/** Encodes a signature blob (without armor). */
export function encodeSignature(sig: SshSignature): Buffer {
  const version = Buffer.alloc(4)
  version.writeUInt32BE(SIG_VERSION, 0)
  return Buffer.concat([
    MAGIC,
    version,
    wireStrings(
      sig.publicKey.blob,
      sig.namespace,
      '',
      sig.hashAlgorithm,
      wireStrings(sig.algorithm, sig.signature),
    ),
  ])
}

/** Wraps a blob exactly as ssh-keygen does: base64 in 70-column lines between the markers. */
export function armor(blob: Buffer): string {
  const b64 = blob.toString('base64')
  const lines: string[] = []
  for (let i = 0; i < b64.length; i += 70) lines.push(b64.slice(i, i + 70))
  return `${BEGIN}\n${lines.join('\n')}\n${END}\n`
}

/** Decodes an armored or raw SSHSIG blob. Throws RangeError with a short reason when malformed. */
export function parseSignature(input: string | Buffer): SshSignature {
  let blob: Buffer
  if (typeof input === 'string') {
    const start = input.indexOf(BEGIN)
    const end = input.indexOf(END)
    if (start < 0 || end < start) throw new RangeError('not an armored SSH signature')
    const body = input.slice(start + BEGIN.length, end).replace(/\s+/g, '')
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body)) throw new RangeError('armor is not base64')
    blob = Buffer.from(body, 'base64')
  } else blob = input
  try {
    if (!blob.subarray(0, 6).equals(MAGIC)) throw new RangeError('missing SSHSIG magic')
    const r = new WireReader(blob.subarray(6))
    const version = r.uint32()
    if (version !== SIG_VERSION) throw new RangeError(`unsupported SSHSIG version ${version}`)
    const publicKey = publicKeyFromBlob(r.string())
    const namespace = r.text()
    r.string() // reserved
    const hashAlgorithm = r.text()
    if (hashAlgorithm !== 'sha256' && hashAlgorithm !== 'sha512')
      throw new RangeError(`unsupported hash ${hashAlgorithm}`)
    const inner = new WireReader(r.string())
    if (!r.done) throw new RangeError('trailing bytes')
    const algorithm = inner.text()
    const signature = Buffer.from(inner.string())
    if (!inner.done) throw new RangeError('trailing signature bytes')
    return { publicKey, namespace, hashAlgorithm, algorithm, signature }
  } catch (err) {
    throw err instanceof RangeError && err.message !== 'truncated' ? err : new RangeError('truncated blob')
  }
}

/** Signs `message` with a raw signer; returns the armored signature. */
export async function signWith(
  rawSign: RawSigner,
  publicKey: SshPublicKey,
  message: Buffer | string,
  namespace: string,
  hash: SshsigHash = 'sha512',
): Promise<string> {
  if (publicKey.type !== ED25519) throw new RangeError(`unsupported key type ${publicKey.type}`)
  const signature = await rawSign(signedData(message, namespace, hash))
  if (signature.length !== 64) throw new RangeError('an Ed25519 signature has 64 bytes')
  return armor(encodeSignature({ publicKey, namespace, hashAlgorithm: hash, algorithm: ED25519, signature }))
}

/** Signs `message` in `namespace` with a loaded private key, as `ssh-keygen -Y sign -n namespace` does. */
export function sign(
  message: Buffer | string,
  key: SshPrivateKey,
  namespace: string,
  hash: SshsigHash = 'sha512',
): string {
  const signature = nodeSign(null, signedData(message, namespace, hash), key.keyObject)
  return armor(
    encodeSignature({
      publicKey: key.publicKey,
      namespace,
      hashAlgorithm: hash,
      algorithm: ED25519,
      signature,
    }),
  )
}

export type VerifyFailure =
  'malformed' | 'unsupported-key' | 'namespace-mismatch' | 'key-mismatch' | 'bad-signature'

export type VerifyResult =
  { ok: true; signature: SshSignature } | { ok: false; reason: VerifyFailure; detail: string }

/** Raw Ed25519 verification; swappable so a batch verifier can use a faster primitive. */
export type RawVerify = (publicKey: SshPublicKey, data: Buffer, signature: Buffer) => boolean

export const nodeRawVerify: RawVerify = (pk, data, sig) => nodeVerify(null, data, publicKeyObject(pk), sig)

/**
 * Checks an SSHSIG over `message` in `namespace`. With `publicKey`, the signature must also be
 * made by that key. Which keys are trusted for whom is the allowed-signers module's job.
 */
export function verify(
  message: Buffer | string,
  signature: string | Buffer | SshSignature,
  namespace: string,
  opts: { publicKey?: SshPublicKey; rawVerify?: RawVerify } = {},
): VerifyResult {
  let sig: SshSignature
  try {
    sig = typeof signature === 'string' || Buffer.isBuffer(signature) ? parseSignature(signature) : signature
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: `malformed SSH signature: ${(err as Error).message}` }
  }
  if (sig.publicKey.type !== ED25519 || sig.algorithm !== ED25519 || sig.signature.length !== 64)
    return { ok: false, reason: 'unsupported-key', detail: `unsupported signature type ${sig.algorithm}` }
  if (sig.namespace !== namespace)
    return {
      ok: false,
      reason: 'namespace-mismatch',
      detail: `signature is for namespace "${sig.namespace}", expected "${namespace}"`,
    }
  if (opts.publicKey && !sameKey(opts.publicKey, sig.publicKey))
    return { ok: false, reason: 'key-mismatch', detail: 'signature was made by a different key' }
  const data = signedData(message, namespace, sig.hashAlgorithm)
  const good = (opts.rawVerify ?? nodeRawVerify)(sig.publicKey, data, sig.signature)
  return good
    ? { ok: true, signature: sig }
    : { ok: false, reason: 'bad-signature', detail: 'signature does not match the message' }
}
