/**
 * OpenSSH key formats for Ed25519: the wire encoding (RFC 4251 strings), public key lines
 * ("ssh-ed25519 AAAA… comment"), SHA256 fingerprints, and unencrypted "openssh-key-v1"
 * private keys. Only what SSHSIG needs; other key types are parsed but never used to verify.
 */
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { UserError } from '../errors.js'

export const ED25519 = 'ssh-ed25519'

/** Reads RFC 4251 values from a buffer; every read is bounds-checked. */
export class WireReader {
  #buf: Buffer
  #pos = 0

  constructor(buf: Buffer) {
    this.#buf = buf
  }

  get done(): boolean {
    return this.#pos === this.#buf.length
  }

  bytes(n: number): Buffer {
    if (n < 0 || this.#pos + n > this.#buf.length) throw new RangeError('truncated')
    const out = this.#buf.subarray(this.#pos, this.#pos + n)
    this.#pos += n
    return out
  }

  uint32(): number {
    const v = this.bytes(4).readUInt32BE(0)
    return v
  }

  string(): Buffer {
    return this.bytes(this.uint32())
  }

  text(): string {
    return this.string().toString('latin1')
  }
}

/** Concatenates RFC 4251 `string` fields (uint32 length + bytes). */
export function wireStrings(...parts: (Buffer | string)[]): Buffer {
  const bufs: Buffer[] = []
  for (const p of parts) {
    const b = typeof p === 'string' ? Buffer.from(p, 'latin1') : p
    const len = Buffer.alloc(4)
    len.writeUInt32BE(b.length, 0)
    bufs.push(len, b)
  }
  return Buffer.concat(bufs)
}

/** A parsed public key. `key` holds the 32 raw bytes for ssh-ed25519 and is empty otherwise. */
export interface SshPublicKey {
  type: string
  /** The full wire blob: string type + key data. */
  blob: Buffer
  key: Buffer
  comment?: string
}

const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')

/** Parses a public key wire blob. */
export function publicKeyFromBlob(blob: Buffer, comment?: string): SshPublicKey {
  const r = new WireReader(blob)
  const type = r.text()
  let key = Buffer.alloc(0)
  if (type === ED25519) {
    key = Buffer.from(r.string())
    if (key.length !== 32 || !r.done) throw new RangeError('bad ssh-ed25519 key blob')
  }
  return { type, blob: Buffer.from(blob), key, ...(comment ? { comment } : {}) }
}

/** Makes an ssh-ed25519 public key from its 32 raw bytes. */
export function ed25519PublicKey(raw: Buffer, comment?: string): SshPublicKey {
  if (raw.length !== 32) throw new RangeError('an Ed25519 public key has 32 bytes')
  return {
    type: ED25519,
    blob: wireStrings(ED25519, raw),
    key: Buffer.from(raw),
    ...(comment ? { comment } : {}),
  }
}

/**
 * Parses "ssh-ed25519 AAAA… [comment]" (as in a .pub file). Throws a UserError naming
 * `where` when the text is not a public key or its blob disagrees with its type.
 */
export function parsePublicKey(text: string, where = 'public key'): SshPublicKey {
  const m = /^\s*(\S+)\s+([A-Za-z0-9+/]+={0,2})(?:\s+(.*?))?\s*$/.exec(text)
  if (!m) throw keyError(where, 'is not an OpenSSH public key ("ssh-ed25519 AAAA… comment")')
  const [, type, b64, comment] = m as unknown as [string, string, string, string | undefined]
  let pk: SshPublicKey
  try {
    pk = publicKeyFromBlob(Buffer.from(b64, 'base64'), comment)
  } catch {
    throw keyError(where, 'has a malformed key blob')
  }
  if (pk.type !== type) throw keyError(where, `says ${type} but its blob holds ${pk.type}`)
  return pk
}

/** "ssh-ed25519 AAAA… [comment]". */
export function formatPublicKey(pk: SshPublicKey, comment = pk.comment): string {
  return `${pk.type} ${pk.blob.toString('base64')}${comment ? ' ' + comment : ''}`
}

/** The fingerprint ssh-keygen -l prints: "SHA256:" + unpadded base64 of sha256(blob). */
export function fingerprint(pk: SshPublicKey): string {
  return 'SHA256:' + createHash('sha256').update(pk.blob).digest('base64').replace(/=+$/, '')
}

export function sameKey(a: SshPublicKey, b: SshPublicKey): boolean {
  return a.blob.equals(b.blob)
}

const keyObjects = new Map<string, KeyObject>()

/** A cached node:crypto KeyObject for an ssh-ed25519 public key. */
export function publicKeyObject(pk: SshPublicKey): KeyObject {
  if (pk.type !== ED25519) throw new RangeError(`unsupported key type ${pk.type}`)
  const id = pk.key.toString('hex')
  let ko = keyObjects.get(id)
  if (!ko) {
    ko = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, pk.key]), format: 'der', type: 'spki' })
    keyObjects.set(id, ko)
  }
  return ko
}

/** An Ed25519 private key loaded in memory; the seed lives only inside the KeyObject. */
export interface SshPrivateKey {
  publicKey: SshPublicKey
  keyObject: KeyObject
  comment: string
}

const PRIVATE_BEGIN = '-----BEGIN OPENSSH PRIVATE KEY-----'
const PRIVATE_END = '-----END OPENSSH PRIVATE KEY-----'

/**
 * Parses an unencrypted OpenSSH ed25519 private key ("openssh-key-v1"). Errors name `where`
 * and never quote key material.
 */
export function parsePrivateKey(text: string, where = 'private key'): SshPrivateKey {
  const start = text.indexOf(PRIVATE_BEGIN)
  const end = text.indexOf(PRIVATE_END)
  if (start < 0 || end < start)
    throw keyError(where, 'is not an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----)')
  const der = Buffer.from(text.slice(start + PRIVATE_BEGIN.length, end).replace(/\s+/g, ''), 'base64')
  try {
    const magic = Buffer.from('openssh-key-v1\0', 'latin1')
    if (!der.subarray(0, magic.length).equals(magic)) throw new RangeError('magic')
    const r = new WireReader(der.subarray(magic.length))
    const cipher = r.text()
    const kdf = r.text()
    r.string() // kdf options
    if (cipher !== 'none' || kdf !== 'none') {
      throw keyError(where, 'is encrypted with a passphrase', {
        next: 'Load the key into ssh-agent and use the agent signer, or provide an unencrypted key.',
      })
    }
    if (r.uint32() !== 1) throw keyError(where, 'holds more than one key')
    const pub = publicKeyFromBlob(r.string())
    if (pub.type !== ED25519) throw keyError(where, `is a ${pub.type} key; only ssh-ed25519 is supported`)
    const priv = new WireReader(r.string())
    if (priv.uint32() !== priv.uint32()) throw keyError(where, 'is corrupt (check bytes differ)')
    if (priv.text() !== ED25519) throw new RangeError('type')
    const pk = priv.string()
    const sk = priv.string()
    const comment = priv.text()
    if (!pk.equals(pub.key) || sk.length !== 64 || !sk.subarray(32).equals(pk)) throw new RangeError('key')
    const keyObject = createPrivateKey({
      key: Buffer.concat([PKCS8_ED25519_PREFIX, sk.subarray(0, 32)]),
      format: 'der',
      type: 'pkcs8',
    })
    return { publicKey: { ...pub, ...(comment ? { comment } : {}) }, keyObject, comment }
  } catch (err) {
    if (err instanceof UserError) throw err
    throw keyError(where, 'is a malformed OpenSSH private key')
  }
}

function keyError(where: string, what: string, opts: { next?: string } = {}): UserError {
  return new UserError('SSH_KEY_INVALID', `${where} ${what}.`, {
    next: opts.next ?? 'Generate an Ed25519 key with: ssh-keygen -t ed25519 -N "" -f KEYFILE',
  })
}
