import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { createVaultSecretStore } from '../../../providers/secret-stores/vault/index.js'
import type { VaultConfig } from '../../../providers/secret-stores/vault/auth.js'
import { ProviderConfig, type Target } from '../../../src/spec/schema.js'
import { freePort, waitFor } from '../../harness/free-port.js'
import { BAO_BIN } from '../../harness/openbao.js'
import { caught } from './helpers.js'

// The OpenBao harness serves plain HTTP; this file needs the real server's -dev-tls mode, which
// generates a CA and a server certificate for 127.0.0.1.
let child: ChildProcess
let dir: string
let addr: string
const token = `root-${randomBytes(12).toString('hex')}`
const target: Target = {
  provider: 'bao',
  mechanism: 'kv-v2',
  mount: 'secret',
  path: 'tls/app',
  field: 'value',
}
const config = (tls?: Record<string, unknown>) =>
  ProviderConfig.parse({ kind: 'vault', address: addr, ...(tls ? { tls } : {}) }) as VaultConfig

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nhi-bao-tls-'))
  const port = await freePort()
  addr = `https://127.0.0.1:${port}`
  child = spawn(
    BAO_BIN,
    [
      'server',
      '-dev',
      '-dev-tls',
      `-dev-tls-cert-dir=${dir}`,
      `-dev-root-token-id=${token}`,
      `-dev-listen-address=127.0.0.1:${port}`,
      '-dev-no-store-token',
      '-log-level=warn',
    ],
    { env: { PATH: process.env.PATH ?? '', HOME: dir }, stdio: 'ignore' },
  )
  await waitFor(
    `OpenBao (TLS) at ${addr}`,
    async () => {
      const store = await createVaultSecretStore(config({ caFile: join(dir, 'vault-ca.pem') }), {
        name: 'bao',
        env: { BAO_TOKEN: token },
      })
      return (await store.describe(target)).exists === false
    },
    20_000,
  )
})
afterAll(async () => {
  if (child && child.exitCode === null) {
    const gone = new Promise((r) => child.once('exit', r))
    child.kill('SIGTERM')
    await gone
  }
  rmSync(dir, { recursive: true, force: true })
})

describe('Vault TLS settings, on a real OpenBao with TLS', () => {
  it('trusts the server through tls.caFile', async () => {
    expect(readFileSync(join(dir, 'vault-ca.pem'), 'utf8')).toContain('BEGIN CERTIFICATE')
    const store = await createVaultSecretStore(config({ caFile: join(dir, 'vault-ca.pem') }), {
      name: 'bao',
      env: { BAO_TOKEN: token },
    })
    expect(await store.describe(target)).toEqual({ exists: false, versions: [] })
  })

  it('refuses an untrusted certificate with a next step that names tls.caFile', async () => {
    const store = await createVaultSecretStore(config(), { name: 'bao', env: { BAO_TOKEN: token } })
    const err = await caught(() => store.describe(target))
    expect(err).toMatchObject({ code: 'VAULT_TLS', exitCode: 2 })
    expect(err.next).toContain('tls.caFile')
  })

  it('skips verification only with a loud warning on stderr', async () => {
    const writes: string[] = []
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      writes.push(String(chunk))
      return true
    })
    try {
      const store = await createVaultSecretStore(config({ skipVerify: true }), {
        name: 'bao',
        env: { BAO_TOKEN: token },
      })
      expect(await store.describe(target)).toEqual({ exists: false, versions: [] })
    } finally {
      spy.mockRestore()
    }
    const text = writes.join('')
    expect(text).toContain('WARNING: TLS CERTIFICATE VERIFICATION IS DISABLED')
    expect(text).toContain(addr)
    expect(text).not.toContain(token)
  })
})
