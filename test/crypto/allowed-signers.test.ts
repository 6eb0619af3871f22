import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  checkSigner,
  formatAllowedSigner,
  formatSshTime,
  matchPatternList,
  parseAllowedSigners,
  parseSshTime,
  verifyWithAllowedSigners,
} from '../../src/crypto/allowed-signers.js'
import { parsePrivateKey, parsePublicKey, type SshPrivateKey } from '../../src/crypto/ssh-keys.js'
import { APPROVAL_NAMESPACE, AUDIT_NAMESPACE, sign } from '../../src/crypto/sshsig.js'
import { generateKey, sshKeygen, type TestKey } from '../harness/ssh.js'

let dir: string
let oldKey: TestKey
let newKey: TestKey
let reviewer: TestKey
let oldPriv: SshPrivateKey
let newPriv: SshPrivateKey
let reviewerPriv: SshPrivateKey
let file: string
let text: string

// Key rotation on 2025-06-01: the old executor key signs before, the new one from then on.
const ROTATION = new Date('2025-06-01T00:00:00Z')

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nhi-allowed-'))
  oldKey = generateKey(dir, 'executor-old')
  newKey = generateKey(dir, 'executor-new')
  reviewer = generateKey(dir, 'reviewer')
  oldPriv = parsePrivateKey(oldKey.privatePem)
  newPriv = parsePrivateKey(newKey.privatePem)
  reviewerPriv = parsePrivateKey(reviewer.privatePem)
  text = [
    '# executor keys: audit entries only',
    `nhi-recover-executor namespaces="${AUDIT_NAMESPACE}",valid-before="20250601000000Z" ${oldKey.publicLine}`,
    `nhi-recover-executor namespaces="${AUDIT_NAMESPACE},git",valid-after="20250601000000Z" ${newKey.publicLine}`,
    '',
    `"alice@example.com,bob*,!bobby" namespaces="nhi-recover-approval" ${reviewer.publicLine}`,
  ].join('\n')
  file = join(dir, 'allowed_signers')
  writeFileSync(file, text + '\n')
})
afterAll(() => rmSync(dir, { recursive: true, force: true }))

function keygenVerify(sig: string, principal: string, namespace: string, msg: string, at: Date) {
  const sigPath = join(dir, 'sig')
  writeFileSync(sigPath, sig)
  return sshKeygen(
    [
      '-Y',
      'verify',
      '-f',
      file,
      '-I',
      principal,
      '-n',
      namespace,
      '-s',
      sigPath,
      `-Overify-time=${formatSshTime(at)}`,
    ],
    msg,
  )
}

describe('allowed_signers parsing', () => {
  it('reads principals, namespaces and validity windows', () => {
    const signers = parseAllowedSigners(text, '.nhi-recover/allowed_signers')
    expect(signers).toHaveLength(3)
    expect(signers[0]).toMatchObject({
      line: 2,
      principals: 'nhi-recover-executor',
      namespaces: AUDIT_NAMESPACE,
      validBefore: ROTATION.getTime() / 1000,
    })
    expect(signers[1]).toMatchObject({
      namespaces: `${AUDIT_NAMESPACE},git`,
      validAfter: ROTATION.getTime() / 1000,
    })
    expect(signers[2]).toMatchObject({ line: 5, principals: 'alice@example.com,bob*,!bobby' })
  })

  it('names the file and line of a malformed entry', () => {
    expect(() => parseAllowedSigners(`# ok\nalice ssh-ed25519 notbase64!!\n`, 'signers')).toThrowError(
      /signers:2: invalid public key/,
    )
    expect(() =>
      parseAllowedSigners(`alice valid-after=20250101 ${oldKey.publicLine}`, 'signers'),
    ).toThrowError(/signers:1: option value 20250101 must be in double quotes/)
    expect(() => parseAllowedSigners(`alice valid-after="2025" ${oldKey.publicLine}`, 's')).toThrowError(
      /s:1: valid-after is not a time/,
    )
    expect(() => parseAllowedSigners(`alice no-touch-required ${oldKey.publicLine}`, 's')).toThrowError(
      /s:1: unsupported option/,
    )
    expect(() => parseAllowedSigners(`alice`, 's')).toThrowError(/s:1: missing key/)
  })

  it('parses OpenSSH timestamps: UTC with Z, local time without', () => {
    expect(parseSshTime('20250601')).toBe(new Date(2025, 5, 1).getTime() / 1000)
    expect(parseSshTime('20250601Z')).toBe(Date.UTC(2025, 5, 1) / 1000)
    expect(parseSshTime('202506011230Z')).toBe(Date.UTC(2025, 5, 1, 12, 30) / 1000)
    expect(parseSshTime('20250601123045UTC')).toBe(Date.UTC(2025, 5, 1, 12, 30, 45) / 1000)
    expect(parseSshTime('2025060112')).toBeUndefined()
    expect(parseSshTime('20251301Z')).toBeUndefined()
  })

  it('matches principal pattern lists like OpenSSH, negation winning', () => {
    expect(matchPatternList('bob', 'alice,bob*')).toBe(true)
    expect(matchPatternList('bobby', 'alice,bob*,!bobby')).toBe(false)
    expect(matchPatternList('carol', 'alice,bob*')).toBe(false)
    expect(matchPatternList('a.b', 'a?b')).toBe(true)
  })

  it('round-trips a formatted line', () => {
    const pk = parsePublicKey(newKey.publicLine)
    const line = formatAllowedSigner({
      principals: 'x',
      publicKey: pk,
      namespaces: AUDIT_NAMESPACE,
      validAfter: ROTATION,
    })
    const [s] = parseAllowedSigners(line)
    expect(s).toMatchObject({
      principals: 'x',
      namespaces: AUDIT_NAMESPACE,
      validAfter: ROTATION.getTime() / 1000,
    })
  })
})

describe('key rotation with validity windows, in agreement with ssh-keygen -Y verify', () => {
  const before = new Date('2025-05-31T23:59:59Z')
  const after = new Date('2025-06-01T00:00:01Z')
  const msg = 'entry hash'

  it.each([
    ['old key before the rotation', 'old', before, true],
    ['old key at the rotation instant (windows are inclusive)', 'old', ROTATION, true],
    ['old key after the rotation', 'old', after, false],
    ['new key before the rotation', 'new', before, false],
    ['new key after the rotation', 'new', after, true],
  ] as const)('%s', (_name, which, at, expected) => {
    const key = which === 'old' ? oldPriv : newPriv
    const sig = sign(msg, key, AUDIT_NAMESPACE)
    const signers = parseAllowedSigners(text, 'allowed_signers')
    const ours = verifyWithAllowedSigners(msg, sig, signers, {
      namespace: AUDIT_NAMESPACE,
      time: at,
      principal: 'nhi-recover-executor',
    })
    const theirs = keygenVerify(sig, 'nhi-recover-executor', AUDIT_NAMESPACE, msg, at)
    expect(ours.ok).toBe(expected)
    expect(theirs.status === 0).toBe(expected)
    if (!ours.ok) expect(ours.reason).toMatch(/^(expired|not-yet-valid)$/)
  })

  it('refuses a key in a namespace its line does not allow, as ssh-keygen does', () => {
    const sig = sign('x', oldPriv, APPROVAL_NAMESPACE)
    const signers = parseAllowedSigners(text)
    const ours = verifyWithAllowedSigners('x', sig, signers, {
      namespace: APPROVAL_NAMESPACE,
      time: before,
      principal: 'nhi-recover-executor',
    })
    expect(ours).toMatchObject({ ok: false, reason: 'namespace-not-allowed' })
    expect(keygenVerify(sig, 'nhi-recover-executor', APPROVAL_NAMESPACE, 'x', before).status).not.toBe(0)
  })

  it('accepts a listed principal and refuses a negated one, as ssh-keygen does', () => {
    const sig = sign('approve', reviewerPriv, APPROVAL_NAMESPACE)
    const signers = parseAllowedSigners(text)
    for (const [principal, expected] of [
      ['bob', true],
      ['alice@example.com', true],
      ['bobby', false],
    ] as const) {
      const ours = verifyWithAllowedSigners('approve', sig, signers, {
        namespace: APPROVAL_NAMESPACE,
        time: after,
        principal,
      })
      expect(ours.ok).toBe(expected)
      expect(keygenVerify(sig, principal, APPROVAL_NAMESPACE, 'approve', after).status === 0).toBe(expected)
    }
  })

  it('reports an unknown key', () => {
    const stranger = generateKey(dir, 'stranger')
    const c = checkSigner(parseAllowedSigners(text), {
      publicKey: parsePublicKey(stranger.publicLine),
      namespace: AUDIT_NAMESPACE,
      time: after,
    })
    expect(c).toMatchObject({ ok: false, reason: 'unknown-key' })
  })
})
