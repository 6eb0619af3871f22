/**
 * The audit signing backends against real components: OpenBao transit on the real dev server,
 * ssh-agent as started by ssh-agent(1), and an SSH key from an env var, each producing a
 * ledger that verifies offline.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuditSigner } from '../../providers/signers/index.js'
import { sshAgentSigner } from '../../providers/signers/ssh.js'
import { transitAllowedSigner, transitKeyVersions, transitSigner } from '../../providers/signers/transit.js'
import { VaultHttp } from '../../providers/vault-client.js'
import { fingerprint, parsePublicKey } from '../../src/crypto/ssh-keys.js'
import { parseSignature } from '../../src/crypto/sshsig.js'
import { Secret } from '../../src/secret.js'
import { RepoConfig } from '../../src/spec/schema.js'
import { startOpenBao, type OpenBaoServer } from '../harness/openbao.js'
import { generateKey, sshKeygen } from '../harness/ssh.js'
import { AUDIT, EXECUTOR, keySigner, ledgerFixture, readEntry } from './ledger-fixture.js'

describe('OpenBao transit signer (real server)', () => {
  let bao: OpenBaoServer
  let client: VaultHttp
  const mount = 'transit'
  const key = 'nhi-recover-audit'

  beforeAll(async () => {
    bao = await startOpenBao()
    expect((await bao.bao(['secrets', 'enable', 'transit'])).code).toBe(0)
    expect((await bao.bao(['write', '-f', `${mount}/keys/${key}`, 'type=ed25519'])).code).toBe(0)
    client = await VaultHttp.create({ address: bao.addr }, new Secret(bao.rootToken))
  })
  afterAll(async () => bao?.stop())

  it('signs entries on the server; the ledger then verifies offline, and ssh-keygen accepts an entry', async () => {
    const o = { client, mount, key, principal: EXECUTOR }
    const line = await transitAllowedSigner(o)
    expect(line).toMatch(
      /^nhi-recover-executor namespaces="nhi-recover-audit" ssh-ed25519 AAAA\S+ transit:transit\/nhi-recover-audit:v1$/,
    )
    const lf = ledgerFixture({
      signersLines: (exec) => [`${EXECUTOR} namespaces="git" ${exec.key.publicLine}`, line],
    })
    try {
      const r = await lf.append(3, { signer: transitSigner(o) })
      expect(r.entries.map((e) => e.sequence)).toEqual([1, 2, 3])
      // The server's own verify endpoint agrees with the signature inside the SSHSIG.
      const v = await client.call({
        method: 'POST',
        path: `${mount}/verify/${key}`,
        capability: 'update',
        json: {
          input: Buffer.concat([
            Buffer.from('SSHSIG'),
            sshString('nhi-recover-audit'),
            sshString(''),
            sshString('sha512'),
            sshString(sha512(r.entries[0]!.hash)),
          ]).toString('base64'),
          signature: `vault:v1:${rawSig(r.entries[0]!.signature.value).toString('base64')}`,
        },
      })
      expect(v.body.data.valid).toBe(true)

      await bao.stop() // offline from here on
      const result = await lf.verify()
      expect(result.problems).toEqual([])
      expect(result.entries).toBe(3)

      const dir = mkdtempSync(join(tmpdir(), 'nhi-transit-'))
      writeFileSync(join(dir, 'allowed_signers'), lf.signersText)
      writeFileSync(join(dir, 'entry.sig'), r.entries[1]!.signature.value)
      const check = sshKeygen(
        [
          '-Y',
          'verify',
          '-f',
          join(dir, 'allowed_signers'),
          '-I',
          EXECUTOR,
          '-n',
          'nhi-recover-audit',
          '-s',
          join(dir, 'entry.sig'),
        ],
        r.entries[1]!.hash,
      )
      expect(check.status, check.stderr).toBe(0)
      rmSync(dir, { recursive: true, force: true })
    } finally {
      lf.cleanup()
      bao = await startOpenBao()
      await bao.bao(['secrets', 'enable', 'transit'])
      await bao.bao(['write', '-f', `${mount}/keys/${key}`, 'type=ed25519'])
      client = await VaultHttp.create({ address: bao.addr }, new Secret(bao.rootToken))
    }
  })

  it('follows a transit key rotation: new entries use the new version, old ones still verify', async () => {
    const o = { client, mount, key, principal: EXECUTOR }
    const v1 = await transitAllowedSigner(o)
    const lf = ledgerFixture({
      signersLines: (exec) => [`${EXECUTOR} namespaces="git" ${exec.key.publicLine}`, v1],
    })
    try {
      await lf.append(1, { signer: transitSigner(o) })
      expect((await bao.bao(['write', '-f', `${mount}/keys/${key}/rotate`])).code).toBe(0)
      const versions = await transitKeyVersions(o)
      expect(versions.map((v) => v.version)).toEqual([1, 2])
      const v2 = await transitAllowedSigner(o)
      // Without the new line, the repo refuses the new version's signatures up front.
      await expect(lf.append(1, { signer: transitSigner(o) })).rejects.toThrowError(
        /is not in the allowed signers/,
      )
      const signersText = lf.signersText + v2 + '\n'
      await lf.append(1, { signer: transitSigner(o), signersText })
      const r = await verifyWith(lf, signersText)
      expect(r.problems).toEqual([])
      expect(r.entries).toBe(2)
      const [first, second] = [1, 2].map((n) => readEntry(lf.exec, n).signature.keyId)
      expect(first).toBe(fingerprint(versions[0]!.publicKey))
      expect(second).toBe(fingerprint(versions[1]!.publicKey))
    } finally {
      lf.cleanup()
    }
  })

  it('refuses a transit key that is not ed25519', async () => {
    expect((await bao.bao(['write', '-f', `${mount}/keys/rsa-key`, 'type=rsa-2048'])).code).toBe(0)
    await expect(
      transitSigner({ client, mount, key: 'rsa-key', principal: EXECUTOR }).publicKey(),
    ).rejects.toThrowError(/transit\/keys\/rsa-key is rsa-2048, not ed25519/)
  })
})

describe('ssh-agent signer (real ssh-agent)', () => {
  let dir: string
  let agentPid: number | undefined
  let sock: string
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'nhi-agent-'))
    sock = join(dir, 'agent.sock')
    const out = execFileSync('ssh-agent', ['-s', '-a', sock], { encoding: 'utf8' })
    agentPid = Number(/SSH_AGENT_PID=(\d+)/.exec(out)?.[1])
  })
  afterAll(() => {
    if (agentPid) process.kill(agentPid, 'SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  })

  it('signs through the agent exactly as with the key file, and the ledger verifies', async () => {
    const lf = ledgerFixture()
    try {
      const add = spawnSync('ssh-add', [lf.exec.key.privatePath], {
        env: { ...process.env, SSH_AUTH_SOCK: sock },
        encoding: 'utf8',
      })
      expect(add.status, add.stderr).toBe(0)
      const agent = sshAgentSigner({
        principal: EXECUTOR,
        socket: sock,
        publicKey: parsePublicKey(lf.exec.key.publicLine),
      })
      const data = [Buffer.from('one'), Buffer.from('two')]
      expect(await agent.signRaw(data)).toEqual(await keySigner(lf.exec.key).signRaw(data))
      await lf.append(2, { signer: agent })
      expect((await lf.verify()).problems).toEqual([])
    } finally {
      lf.cleanup()
    }
  })

  it('says which key is missing when the agent does not hold it', async () => {
    const other = generateKey(dir, 'other')
    const agent = sshAgentSigner({
      principal: EXECUTOR,
      socket: sock,
      publicKey: parsePublicKey(other.publicLine),
    })
    await expect(agent.publicKey()).rejects.toThrowError(/ssh-agent does not hold the audit key SHA256:/)
  })
})

describe('signer from nhi-recover.yaml', () => {
  const base = {
    apiVersion: 'nhi-recover/v1',
    kind: 'RepoConfig',
    providers: { local: { kind: 'local' } },
    policy: { tiers: { low: { approvals: 1 } } },
  }

  it('reads an SSH key from the configured env var, and names the variable when it is unset', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nhi-envkey-'))
    try {
      const k = generateKey(dir, 'executor')
      const config = RepoConfig.parse({
        ...base,
        audit: { signer: { kind: 'ssh', keyEnv: 'AUDIT_KEY', principal: EXECUTOR } },
      })
      const signer = await createAuditSigner(config, { repoRoot: dir, env: { AUDIT_KEY: k.privatePem } })
      expect((await signer.publicKey()).blob.equals(parsePublicKey(k.publicLine).blob)).toBe(true)
      await expect(createAuditSigner(config, { repoRoot: dir, env: {} })).rejects.toThrowError(
        /\$AUDIT_KEY is not set/,
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('refuses a config without an audit signer', async () => {
    await expect(createAuditSigner(RepoConfig.parse(base), { repoRoot: '/tmp' })).rejects.toThrowError(
      /configures no audit signer/,
    )
  })
})

async function verifyWith(lf: ReturnType<typeof ledgerFixture>, signersText: string) {
  const { verifyLedger } = await import('../../src/audit/verify.js')
  return verifyLedger({
    repoRoot: lf.exec.dir,
    auditPath: AUDIT,
    allowedSigners: { text: signersText, file: 'allowed_signers' },
    checkpoint: false,
  })
}

function sshString(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s) : s
  const len = Buffer.alloc(4)
  len.writeUInt32BE(b.length)
  return Buffer.concat([len, b])
}

function sha512(s: string): Buffer {
  return createHash('sha512').update(s).digest()
}

function rawSig(armored: string): Buffer {
  return parseSignature(armored).signature
}
