import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { VaultSecretStore } from '../../../providers/secret-stores/vault/index.js'
import { VaultHttp } from '../../../providers/vault-client.js'
import { stages } from '../../../src/engine/secret-store.js'
import { Secret } from '../../../src/secret.js'
import type { Target } from '../../../src/spec/schema.js'
import { PROJECT_ROOT } from '../../helpers/cli.js'
import { startOpenBao, type OpenBaoServer } from '../../harness/openbao.js'
import { startPostgres, type PostgresServer } from '../../harness/postgres.js'
import { api, canary, caught, errorText } from './helpers.js'

interface Stanza {
  path: string
  caps: string[]
}

/** The HCL policy the README gives for the executor, parsed into its path stanzas. */
function readmePolicy(): Stanza[] {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Using a real Vault or OpenBao'))
  const hcl = /```hcl\n([\s\S]*?)```/.exec(section)?.[1]
  if (!hcl) throw new Error('README has no hcl block under "Using a real Vault or OpenBao"')
  const stanzas = [...hcl.matchAll(/path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}/g)].map(
    (m) => ({
      path: m[1]!,
      caps: [...m[2]!.matchAll(/"([a-z]+)"/g)].map((c) => c[1]!),
    }),
  )
  const stanzaCount = hcl.split('\n').filter((l) => l.trim().startsWith('path ')).length
  if (stanzas.length !== stanzaCount)
    throw new Error('could not parse every path stanza of the README policy')
  return stanzas
}

const hclOf = (stanzas: Stanza[]) =>
  stanzas
    .filter((s) => s.caps.length)
    .map((s) => `path "${s.path}" { capabilities = [${s.caps.map((c) => `"${c}"`).join(', ')}] }`)
    .join('\n')

let server: OpenBaoServer
let db: PostgresServer
let n = 0

async function tokenFor(stanzas: Stanza[]): Promise<string> {
  const name = `executor-${++n}`
  expect((await api(server, 'PUT', `sys/policies/acl/${name}`, { policy: hclOf(stanzas) })).status).toBe(204)
  const r = await api(server, 'POST', 'auth/token/create', {
    policies: [name],
    no_default_policy: true,
    ttl: '10m',
  })
  return r.json.auth.client_token
}

async function rotate(store: VaultSecretStore, t: Target, requestId: string, value?: string) {
  const before = stages(await store.describe(t)).current?.id
  const p = await store.prepare(t, { requestId, ...(value ? { value: new Secret(value) } : {}) })
  await store.verify(t, { requestId, versionId: p.id })
  await store.promote(t, { requestId, versionId: p.id, expectedCurrent: before })
  return p
}

/** Every mechanism and step the executor runs, on fresh objects made with the root token. */
async function everything(token: string): Promise<void> {
  const i = ++n
  const http = await VaultHttp.create({ address: server.addr }, new Secret(token))
  const store = new VaultSecretStore({ name: 'bao', http, database: { claimLeaseMs: 0 } })

  const kv: Target = {
    provider: 'bao',
    mechanism: 'kv-v2',
    mount: 'secret',
    path: `policy/kv-${i}`,
    field: 'value',
  }
  await api(server, 'POST', `secret/data/policy/kv-${i}`, { data: { value: canary() } })
  await rotate(store, kv, `rr-kv-${i}`, canary())
  await store.rollback(kv, { requestId: `rr-kv-back-${i}` })
  await store.retire(kv, { requestId: `rr-kv-back-${i}`, versionId: '2' })

  const role = `policy-${i}`
  await api(server, 'POST', `auth/approle/role/${role}`, { token_policies: ['default'] })
  const ar: Target = {
    provider: 'bao',
    mechanism: 'approle-secret-id',
    mount: 'approle',
    role,
    deliverTo: { mount: 'secret', path: `policy/approle-${i}` },
  }
  const first = await rotate(store, ar, `rr-ar-${i}`)
  await rotate(store, ar, `rr-ar2-${i}`)
  await store.retire(ar, { requestId: `rr-ar2-${i}`, versionId: first.id })

  const user = `policy_${i}`
  await db.sql(`CREATE ROLE ${user} LOGIN PASSWORD 'initial'`)
  await api(server, 'POST', `database/static-roles/policy-${i}`, {
    db_name: 'pg',
    username: user,
    rotation_period: '24h',
  })
  const dbt: Target = {
    provider: 'bao',
    mechanism: 'database-static-role',
    mount: 'database',
    role: `policy-${i}`,
  }
  await rotate(store, dbt, `rr-db-${i}`)
}

beforeAll(async () => {
  ;[server, db] = await Promise.all([startOpenBao(), startPostgres()])
  expect((await api(server, 'POST', 'sys/auth/approle', { type: 'approle' })).status).toBe(204)
  expect((await api(server, 'POST', 'sys/mounts/database', { type: 'database' })).status).toBe(204)
  const cfg = await api(server, 'POST', 'database/config/pg', {
    plugin_name: 'postgresql-database-plugin',
    connection_url: `postgresql://{{username}}:{{password}}@${db.host}:${db.port}/postgres?sslmode=disable`,
    username: db.user,
    password: db.password,
    allowed_roles: '*',
  })
  expect(cfg.status).toBe(204)
})
afterAll(async () => {
  await Promise.all([server?.stop(), db?.stop()])
})

describe("the README's executor policy, on real OpenBao and PostgreSQL", () => {
  it('is enough for every mechanism and step (no default policy attached)', async () => {
    await everything(await tokenFor(readmePolicy()))
  })

  it('is minimal: without any one capability, a step is refused naming that capability', async () => {
    const policy = readmePolicy()
    const pairs = policy.flatMap((s, si) => s.caps.map((cap) => ({ si, cap })))
    expect(pairs.length).toBeGreaterThanOrEqual(15)
    for (const { si, cap } of pairs) {
      const narrowed = policy.map((s, j) => (j === si ? { ...s, caps: s.caps.filter((c) => c !== cap) } : s))
      const token = await tokenFor(narrowed)
      const err = await caught(() => everything(token))
      const what = `without "${cap}" on ${policy[si]!.path}`
      expect(err, what).toMatchObject({ code: 'VAULT_PERMISSION_DENIED' })
      expect(err.message, what).toContain(`"${cap}"`)
      expect(err.message, what).toMatch(/capabilit(y|ies) on /)
      expect(errorText(err), what).not.toContain(token)
    }
  }, 240_000)
})
