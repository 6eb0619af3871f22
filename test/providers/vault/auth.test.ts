import { generateKeyPairSync, randomBytes, sign } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectVault, type VaultConfig } from '../../../providers/secret-stores/vault/auth.js'
import { createVaultSecretStore } from '../../../providers/secret-stores/vault/index.js'
import { apiPath, VaultHttp } from '../../../providers/vault-client.js'
import { ProviderConfig } from '../../../src/spec/schema.js'
import { Secret } from '../../../src/secret.js'
import type { Target } from '../../../src/spec/schema.js'
import { freePort } from '../../harness/free-port.js'
import { startOpenBao, type OpenBaoServer } from '../../harness/openbao.js'
import { api, canary, caught, errorText } from './helpers.js'

let server: OpenBaoServer
let dir: string
const target: Target = {
  provider: 'bao',
  mechanism: 'kv-v2',
  mount: 'secret',
  path: 'auth/app',
  field: 'value',
}
const config = (raw: Record<string, unknown>): VaultConfig =>
  ProviderConfig.parse({ kind: 'vault', ...raw }) as VaultConfig

/** Proves a store works: one full kv-v2 rotation. */
async function rotateWith(cfg: VaultConfig, env: NodeJS.ProcessEnv, requestId: string, t: Target = target) {
  const store = await createVaultSecretStore(cfg, { name: 'bao', env })
  const cur = (await store.describe(t)).versions.find((v) => v.stages.includes('current'))?.id
  const p = await store.prepare(t, { requestId, value: new Secret(canary()) })
  await store.verify(t, { requestId, versionId: p.id })
  await store.promote(t, { requestId, versionId: p.id, expectedCurrent: cur })
  return p
}

// The JWT auth method checks tokens against this key pair, generated per run.
const keys = generateKeyPairSync('rsa', { modulusLength: 2048 })
const b64url = (v: object | Buffer) =>
  (Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v))).toString('base64url')
function jwt(claims: Record<string, unknown>): string {
  const now = Math.floor(Date.now() / 1000)
  const body = `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url({ iat: now, nbf: now - 5, exp: now + 300, aud: 'nhi-recover', iss: 'https://token.actions.githubusercontent.com', ...claims })}`
  return `${body}.${b64url(sign('sha256', Buffer.from(body), keys.privateKey))}`
}

beforeAll(async () => {
  server = await startOpenBao()
  dir = mkdtempSync(join(tmpdir(), 'nhi-vault-auth-'))
  const policy = `
path "secret/data/auth/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/auth/*" { capabilities = ["read", "patch", "delete"] }
path "secret/data/nhi-recover/staging/auth/*" { capabilities = ["create", "read", "update"] }
path "secret/metadata/nhi-recover/staging/auth/*" { capabilities = ["read", "delete"] }
`
  expect((await api(server, 'PUT', 'sys/policies/acl/executor', { policy })).status).toBe(204)
  expect((await api(server, 'POST', 'sys/auth/approle', { type: 'approle' })).status).toBe(204)
  expect(
    (
      await api(server, 'POST', 'auth/approle/role/executor', {
        token_policies: ['executor'],
        token_ttl: '5m',
      })
    ).status,
  ).toBe(204)
  expect((await api(server, 'POST', 'sys/auth/jwt', { type: 'jwt' })).status).toBe(204)
  const pem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString()
  expect((await api(server, 'POST', 'auth/jwt/config', { jwt_validation_pubkeys: [pem] })).status).toBe(204)
  const role = await api(server, 'POST', 'auth/jwt/role/recovery-ci', {
    role_type: 'jwt',
    user_claim: 'repository',
    bound_audiences: ['nhi-recover'],
    bound_claims: { repository: 'acme/recovery', ref: 'refs/heads/main' },
    token_policies: ['executor'],
    token_ttl: '5m',
  })
  expect(role.status, JSON.stringify(role.json)).toBe(204)
})
afterAll(async () => {
  await server?.stop()
  rmSync(dir, { recursive: true, force: true })
})

describe('Vault auth and connection settings, on a real OpenBao', () => {
  it('takes the address and token from BAO_ADDR/BAO_TOKEN, else VAULT_ADDR/VAULT_TOKEN', async () => {
    await rotateWith(
      config({}),
      { BAO_ADDR: server.addr, BAO_TOKEN: server.rootToken, VAULT_TOKEN: 'wrong' },
      'rr-env-bao',
    )
    await rotateWith(config({}), { VAULT_ADDR: server.addr, VAULT_TOKEN: server.rootToken }, 'rr-env-vault')
    const err = await caught(() =>
      rotateWith(config({}), { VAULT_ADDR: server.addr, VAULT_TOKEN: 'not-a-token-123' }, 'rr-env-bad'),
    )
    expect(err).toMatchObject({ code: 'VAULT_PERMISSION_DENIED', exitCode: 2 })
    expect(errorText(err)).not.toContain('not-a-token-123')
  })

  it('reads the token from tokenEnv or tokenFile, and says what to set when there is none', async () => {
    await rotateWith(
      config({ address: server.addr, auth: { method: 'token', tokenEnv: 'MY_TOKEN' } }),
      { MY_TOKEN: server.rootToken },
      'rr-tokenenv',
    )
    const file = join(dir, 'token')
    writeFileSync(file, `${server.rootToken}\n`, { mode: 0o600 })
    await rotateWith(
      config({ address: server.addr, auth: { method: 'token', tokenFile: file } }),
      {},
      'rr-tokenfile',
    )
    const missing = await caught(() =>
      connectVault(config({ address: server.addr }), { name: 'bao', env: {} }),
    )
    expect(missing).toMatchObject({ code: 'VAULT_TOKEN_MISSING', exitCode: 2 })
    expect(missing.next).toContain('BAO_TOKEN')
    const noAddr = await caught(() => connectVault(config({}), { name: 'bao', env: { BAO_TOKEN: 'x' } }))
    expect(noAddr).toMatchObject({ code: 'VAULT_ADDRESS_MISSING' })
  })

  it('logs in with AppRole, and a wrong secret-id fails without being printed', async () => {
    const roleId = (await api(server, 'GET', 'auth/approle/role/executor/role-id')).json.data.role_id
    const secretId = (await api(server, 'POST', 'auth/approle/role/executor/secret-id', {})).json.data
      .secret_id
    const cfg = config({
      address: server.addr,
      auth: { method: 'approle', roleIdEnv: 'ROLE_ID', secretIdEnv: 'SECRET_ID' },
    })
    await rotateWith(cfg, { ROLE_ID: roleId, SECRET_ID: secretId }, 'rr-approle-login')
    const wrong = `wrong-${randomBytes(8).toString('hex')}`
    const err = await caught(() =>
      connectVault(cfg, { name: 'bao', env: { ROLE_ID: roleId, SECRET_ID: wrong } }),
    )
    expect(err).toMatchObject({ code: 'VAULT_LOGIN_FAILED' })
    expect(errorText(err)).not.toContain(wrong)
    expect(errorText(err)).not.toContain(secretId)
  })

  it('logs in with a JWT bound to repository and ref claims (locally generated key pair)', async () => {
    const cfg = config({
      address: server.addr,
      auth: { method: 'jwt', role: 'recovery-ci', tokenEnv: 'CI_JWT' },
    })
    const good = jwt({
      sub: 'repo:acme/recovery:ref:refs/heads/main',
      repository: 'acme/recovery',
      ref: 'refs/heads/main',
    })
    await rotateWith(cfg, { CI_JWT: good }, 'rr-jwt')
    for (const claims of [
      { repository: 'acme/recovery', ref: 'refs/heads/feature' },
      { repository: 'evil/fork', ref: 'refs/heads/main' },
    ]) {
      const bad = jwt({ sub: 'x', ...claims })
      const err = await caught(() => connectVault(cfg, { name: 'bao', env: { CI_JWT: bad } }))
      expect(err).toMatchObject({ code: 'VAULT_LOGIN_FAILED' })
      expect(errorText(err)).not.toContain(bad)
    }
  })

  it('asks GitHub Actions for the OIDC token when no tokenEnv is set', async () => {
    const requestToken = `req-${randomBytes(8).toString('hex')}`
    const token = jwt({
      sub: 'repo:acme/recovery:ref:refs/heads/main',
      repository: 'acme/recovery',
      ref: 'refs/heads/main',
    })
    let seen: { auth?: string; audience?: string | null } = {}
    // A local stand-in for the Actions token endpoint: the real one answers {"value": "<jwt>"}.
    const oidc: Server = createServer((req, res) => {
      seen = {
        auth: req.headers.authorization,
        audience: new URL(req.url!, 'http://x').searchParams.get('audience'),
      }
      res.setHeader('Content-Type', 'application/json')
      res.end(JSON.stringify({ value: token }))
    })
    const port = await freePort()
    await new Promise<void>((r) => oidc.listen(port, '127.0.0.1', r))
    try {
      const cfg = config({
        address: server.addr,
        auth: { method: 'jwt', role: 'recovery-ci', audience: 'nhi-recover' },
      })
      await rotateWith(
        cfg,
        {
          ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${port}/token?api-version=2.0`,
          ACTIONS_ID_TOKEN_REQUEST_TOKEN: requestToken,
        },
        'rr-gha',
      )
      expect(seen).toEqual({ auth: `bearer ${requestToken}`, audience: 'nhi-recover' })
      const none = await caught(() => connectVault(cfg, { name: 'bao', env: {} }))
      expect(none).toMatchObject({ code: 'VAULT_JWT_MISSING' })
    } finally {
      oidc.close()
    }
  })

  it('passes the namespace through: the rotation lands in the namespace only', async () => {
    expect((await api(server, 'POST', 'sys/namespaces/team-a', {})).status).toBe(200)
    expect(
      (await api(server, 'POST', 'sys/mounts/kv', { type: 'kv', options: { version: '2' } }, 'team-a'))
        .status,
    ).toBe(204)
    const t: Target = { provider: 'bao', mechanism: 'kv-v2', mount: 'kv', path: 'ns/app', field: 'value' }
    await rotateWith(
      config({ address: server.addr, namespace: 'team-a' }),
      { BAO_TOKEN: server.rootToken },
      'rr-ns',
      t,
    )
    const inNs = await api(server, 'GET', 'kv/metadata/ns/app', undefined, 'team-a')
    expect(inNs.status).toBe(200)
    expect(JSON.parse(inNs.json.data.custom_metadata['nhi-recover.v1'])).toEqual({ request: 'rr-ns' })
    expect((await api(server, 'GET', 'kv/metadata/ns/app')).status).not.toBe(200)
  })

  it('names the missing capability when the policy is too narrow', async () => {
    await api(server, 'PUT', 'sys/policies/acl/read-only', {
      policy: 'path "secret/*" { capabilities = ["read"] }',
    })
    const tok = (await api(server, 'POST', 'auth/token/create', { policies: ['read-only'], ttl: '5m' })).json
      .auth.client_token
    const store = await createVaultSecretStore(config({ address: server.addr }), {
      name: 'bao',
      env: { BAO_TOKEN: tok },
    })
    const value = canary()
    const err = await caught(() =>
      store.prepare(target, { requestId: 'rr-narrow', value: new Secret(value) }),
    )
    expect(err).toMatchObject({ code: 'VAULT_PERMISSION_DENIED', exitCode: 2 })
    expect(err.message).toContain('"create" capability on secret/data/nhi-recover/staging/auth/app')
    expect(err.next).toContain('path "secret/data/nhi-recover/staging/auth/app"')
    expect(errorText(err)).not.toContain(tok)
    expect(errorText(err)).not.toContain(value)
  })

  it('reports refused connections and timeouts as external errors (exit 3) with a next step', async () => {
    const closed = await freePort()
    const http = await VaultHttp.create(
      { address: `http://127.0.0.1:${closed}` },
      new Secret(server.rootToken),
    )
    const refused = await caught(() =>
      http.call({ method: 'GET', path: apiPath('sys', 'health'), capability: 'read' }),
    )
    expect(refused).toMatchObject({ code: 'VAULT_UNREACHABLE', exitCode: 3 })
    expect(refused.next).toMatch(/BAO_ADDR/)

    // A listener that accepts and never answers.
    const hung: Server = createServer(() => undefined)
    const port = await freePort()
    await new Promise<void>((r) => hung.listen(port, '127.0.0.1', r))
    try {
      const slow = await VaultHttp.create(
        { address: `http://127.0.0.1:${port}`, timeoutMs: 300 },
        new Secret(server.rootToken),
      )
      const timeout = await caught(() =>
        slow.call({ method: 'GET', path: apiPath('secret', 'data', 'x'), capability: 'read' }),
      )
      expect(timeout).toMatchObject({ code: 'VAULT_TIMEOUT', exitCode: 3 })
      expect(errorText(timeout)).not.toContain(server.rootToken)
    } finally {
      hung.closeAllConnections()
      hung.close()
    }
  })

  // Last: sealing cannot be undone here (the dev server's unseal key is not kept).
  it('reports a sealed server (503) as an external error (exit 3)', async () => {
    const store = await createVaultSecretStore(config({ address: server.addr }), {
      name: 'bao',
      env: { BAO_TOKEN: server.rootToken },
    })
    expect((await api(server, 'PUT', 'sys/seal')).status).toBe(204)
    const err = await caught(() => store.describe(target))
    expect(err).toMatchObject({ code: 'VAULT_SEALED', exitCode: 3 })
    expect(err.next).toMatch(/Unseal/)
    expect(errorText(err)).not.toContain(server.rootToken)
  })
})
