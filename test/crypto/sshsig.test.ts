import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ed25519PublicKey,
  fingerprint,
  parsePrivateKey,
  parsePublicKey,
  type SshPrivateKey,
} from '../../src/crypto/ssh-keys.js'
import { AUDIT_NAMESPACE, parseSignature, sign, signWith, verify } from '../../src/crypto/sshsig.js'
import { formatAllowedSigner } from '../../src/crypto/allowed-signers.js'
import { generateKey, sshKeygen, type TestKey } from '../harness/ssh.js'

let dir: string
let alice: TestKey
let aliceKey: SshPrivateKey
let mallory: TestKey
let signersFile: string

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nhi-sshsig-'))
  alice = generateKey(dir, 'alice')
  mallory = generateKey(dir, 'mallory')
  aliceKey = parsePrivateKey(alice.privatePem, alice.privatePath)
  signersFile = join(dir, 'allowed_signers')
  writeFileSync(signersFile, `alice ${alice.publicLine}\n`)
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const message = 'sha256 of an audit entry: 3f1c…'

function keygenSign(key: TestKey, namespace: string, msg: string): string {
  const r = sshKeygen(['-Y', 'sign', '-f', key.privatePath, '-n', namespace], msg)
  expect(r.status, r.stderr).toBe(0)
  return r.stdout
}

function keygenVerify(sig: string, namespace: string, msg: string, principal = 'alice', file = signersFile) {
  const sigPath = join(dir, `sig-${Math.random().toString(36).slice(2)}`)
  writeFileSync(sigPath, sig)
  return sshKeygen(['-Y', 'verify', '-f', file, '-I', principal, '-n', namespace, '-s', sigPath], msg)
}

describe('SSHSIG against the real ssh-keygen', () => {
  it('reads the public key and fingerprint the way ssh-keygen does', () => {
    const pk = parsePublicKey(alice.publicLine)
    expect(aliceKey.publicKey.blob.equals(pk.blob)).toBe(true)
    const r = sshKeygen(['-l', '-E', 'sha256', '-f', alice.publicPath])
    expect(r.stdout.split(' ')[1]).toBe(fingerprint(pk))
  })

  it('produces byte-for-byte the signature ssh-keygen -Y sign produces (Ed25519 is deterministic)', () => {
    expect(sign(message, aliceKey, AUDIT_NAMESPACE)).toBe(keygenSign(alice, AUDIT_NAMESPACE, message))
  })

  it('verifies a signature made by ssh-keygen -Y sign', () => {
    const sig = keygenSign(alice, AUDIT_NAMESPACE, message)
    const v = verify(message, sig, AUDIT_NAMESPACE, { publicKey: aliceKey.publicKey })
    expect(v.ok).toBe(true)
  })

  it('makes signatures that ssh-keygen -Y verify accepts, and ssh-keygen refuses them for another message', () => {
    const sig = sign(message, aliceKey, AUDIT_NAMESPACE)
    const good = keygenVerify(sig, AUDIT_NAMESPACE, message)
    expect(good.status, good.stderr).toBe(0)
    expect(good.stdout).toContain('Good "nhi-recover-audit" signature for alice')
    expect(keygenVerify(sig, AUDIT_NAMESPACE, message + 'x').status).not.toBe(0)
  })

  it('signs through a raw signer (the shape of ssh-agent and transit) with the same result', async () => {
    const { sign: nodeSign } = await import('node:crypto')
    const viaRaw = await signWith(
      async (data) => nodeSign(null, data, aliceKey.keyObject),
      aliceKey.publicKey,
      message,
      AUDIT_NAMESPACE,
    )
    expect(viaRaw).toBe(sign(message, aliceKey, AUDIT_NAMESPACE))
  })

  it('accepts sha256 SSHSIGs as ssh-keygen does', () => {
    const sig = sign(message, aliceKey, AUDIT_NAMESPACE, 'sha256')
    expect(parseSignature(sig).hashAlgorithm).toBe('sha256')
    expect(keygenVerify(sig, AUDIT_NAMESPACE, message).status).toBe(0)
    expect(verify(message, sig, AUDIT_NAMESPACE).ok).toBe(true)
  })

  it('refuses a changed message, another namespace, another key and a flipped signature bit', () => {
    const sig = keygenSign(alice, AUDIT_NAMESPACE, message)
    expect(verify(message + '!', sig, AUDIT_NAMESPACE)).toMatchObject({ ok: false, reason: 'bad-signature' })
    expect(verify(message, sig, 'nhi-recover-approval')).toMatchObject({
      ok: false,
      reason: 'namespace-mismatch',
    })
    const malloryPk = parsePublicKey(mallory.publicLine)
    expect(verify(message, sig, AUDIT_NAMESPACE, { publicKey: malloryPk })).toMatchObject({
      ok: false,
      reason: 'key-mismatch',
    })
    const parsed = parseSignature(sig)
    parsed.signature[10]! ^= 1
    expect(verify(message, parsed, AUDIT_NAMESPACE)).toMatchObject({ ok: false, reason: 'bad-signature' })
    expect(verify(message, 'not a signature', AUDIT_NAMESPACE)).toMatchObject({
      ok: false,
      reason: 'malformed',
    })
  })

  it('ssh-keygen refuses a signature whose embedded key was swapped, and so do we', () => {
    const parsed = parseSignature(sign(message, aliceKey, AUDIT_NAMESPACE))
    parsed.publicKey = parsePublicKey(mallory.publicLine)
    expect(verify(message, parsed, AUDIT_NAMESPACE).ok).toBe(false)
  })

  it('refuses an encrypted private key with a next step and without quoting the key', () => {
    const locked = generateKey(dir, 'locked', { passphrase: 'correct horse battery' })
    expect(() => parsePrivateKey(locked.privatePem, 'keys/locked')).toThrowError(
      /keys\/locked is encrypted with a passphrase/,
    )
    try {
      parsePrivateKey(locked.privatePem, 'keys/locked')
    } catch (err) {
      expect(String((err as Error).message)).not.toContain(locked.privatePem.split('\n')[1]!.slice(0, 20))
    }
  })

  it('formats an allowed_signers line that ssh-keygen accepts for a raw 32-byte key', () => {
    const pk = ed25519PublicKey(aliceKey.publicKey.key)
    const file = join(dir, 'raw_signers')
    writeFileSync(
      file,
      formatAllowedSigner({ principals: 'raw', publicKey: pk, namespaces: AUDIT_NAMESPACE }) + '\n',
    )
    const sig = sign(message, aliceKey, AUDIT_NAMESPACE)
    expect(keygenVerify(sig, AUDIT_NAMESPACE, message, 'raw', file).status).toBe(0)
  })
})
