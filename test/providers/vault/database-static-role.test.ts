import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requirePlugin } from '../../../providers/secret-stores/vault/database-static-role.js'
import type { VaultSecretStore } from '../../../providers/secret-stores/vault/index.js'
import { VaultHttp } from '../../../providers/vault-client.js'
import { stages } from '../../../src/engine/secret-store.js'
import { Secret } from '../../../src/secret.js'
import type { Target } from '../../../src/spec/schema.js'
import { startOpenBao, type OpenBaoServer } from '../../harness/openbao.js'
import { startPostgres, type PostgresServer } from '../../harness/postgres.js'
import { api, caught, errorText, FaultyVault, freshStore, rootHttp, SimulatedCrash } from './helpers.js'

type DbTarget = Extract<Target, { mechanism: 'database-static-role' }>
let server: OpenBaoServer
let db: PostgresServer
let n = 0

/** A new PostgreSQL login role managed by a new static role. */
async function staticRole(): Promise<{ t: DbTarget; username: string }> {
  const username = `svc_app_${++n}`
  await db.sql(`CREATE ROLE ${username} LOGIN PASSWORD 'initial-${n}'`)
  const r = await api(server, 'POST', `database/static-roles/svc-app-${n}`, {
    db_name: 'pg',
    username,
    rotation_period: '24h',
  })
  expect(r.status, JSON.stringify(r.json)).toBe(204)
  return {
    t: { provider: 'bao', mechanism: 'database-static-role', mount: 'database', role: `svc-app-${n}` },
    username,
  }
}

async function creds(t: DbTarget): Promise<{ password: string; last_vault_rotation: string }> {
  return (await api(server, 'GET', `database/static-creds/${t.role}`)).json.data
}

async function canLogin(user: string, password: string): Promise<boolean> {
  const c = new pg.Client({ host: db.host, port: db.port, user, password, database: 'postgres' })
  try {
    await c.connect()
    return true
  } catch {
    return false
  } finally {
    await c.end().catch(() => undefined)
  }
}

async function rotate(store: VaultSecretStore, t: Target, requestId: string) {
  const before = stages(await store.describe(t)).current?.id
  const v = await store.prepare(t, { requestId })
  await store.verify(t, { requestId, versionId: v.id })
  await store.promote(t, { requestId, versionId: v.id, expectedCurrent: before })
  return v
}

beforeAll(async () => {
  ;[server, db] = await Promise.all([startOpenBao(), startPostgres()])
  expect((await api(server, 'POST', 'sys/mounts/database', { type: 'database' })).status).toBe(204)
  const cfg = await api(server, 'POST', 'database/config/pg', {
    plugin_name: 'postgresql-database-plugin',
    connection_url: `postgresql://{{username}}:{{password}}@${db.host}:${db.port}/postgres?sslmode=disable`,
    username: db.user,
    password: db.password,
    allowed_roles: '*',
  })
  expect(cfg.status, JSON.stringify(cfg.json)).toBe(204)
})
afterAll(async () => {
  await Promise.all([server?.stop(), db?.stop()])
})

describe('database-static-role through the SecretStore interface, on real OpenBao and PostgreSQL', () => {
  it('rotates with rotate-role and verifies the new password by a real PostgreSQL login', async () => {
    const { t, username } = await staticRole()
    const store = await freshStore(server)
    const before = await creds(t)
    expect(await canLogin(username, before.password)).toBe(true)

    const v = await store.prepare(t, { requestId: 'rr-db' })
    const after = await creds(t)
    expect(v).toMatchObject({ id: after.last_vault_rotation, stages: ['current'], requestId: 'rr-db' })
    expect(after.password).not.toBe(before.password)
    expect(await canLogin(username, before.password), 'the old password stopped working').toBe(false)
    expect(await canLogin(username, after.password)).toBe(true)

    await store.verify(t, { requestId: 'rr-db', versionId: v.id })
    await store.promote(t, {
      requestId: 'rr-db',
      versionId: v.id,
      expectedCurrent: before.last_vault_rotation,
    })
    expect((await store.read(t, v.id)).reveal()).toBe(after.password)
    expect(stages(await store.describe(t)).current).toMatchObject({ id: v.id, requestId: 'rr-db' })
  })

  it('does not rotate twice when the same request runs again (last_vault_rotation vs the run marker)', async () => {
    const { t } = await staticRole()
    const store = await freshStore(server)
    const first = await rotate(store, t, 'rr-once')
    const again = await rotate(await freshStore(server), t, 'rr-once')
    expect(again.id).toBe(first.id)
    expect((await creds(t)).last_vault_rotation).toBe(first.id)
    // Another request does rotate.
    const other = await rotate(store, t, 'rr-twice')
    expect(other.id).not.toBe(first.id)
  })

  it('resumes after a crash right after any call that changes state: exactly one rotation', async () => {
    const probe = await staticRole()
    const counting = new FaultyVault(await rootHttp(server))
    await rotate(await freshStore(server, () => counting), probe.t, 'rr-probe')
    const total = counting.writes
    // marker, rotate-role, marker update
    expect(total).toBe(3)
    const database = { claimLeaseMs: 400 }
    for (let crashAt = 1; crashAt <= total; crashAt++) {
      const { t, username } = await staticRole()
      const start = (await creds(t)).last_vault_rotation
      const crashing = await freshStore(
        server,
        (http) => new FaultyVault(http, { crashAfterWrite: crashAt }),
        database,
      )
      await expect(rotate(crashing, t, `rr-crash-${crashAt}`)).rejects.toBeInstanceOf(SimulatedCrash)
      const mid = (await creds(t)).last_vault_rotation
      if (crashAt === 1) {
        // Claimed but not rotated: a live executor could be about to rotate, so the claim holds until its lease ends.
        await expect(
          rotate(await freshStore(server, undefined, database), t, `rr-crash-${crashAt}`),
        ).rejects.toMatchObject({
          code: 'ROTATION_IN_PROGRESS',
        })
        await new Promise((r) => setTimeout(r, 450))
      }
      const v = await rotate(await freshStore(server, undefined, database), t, `rr-crash-${crashAt}`)
      const end = await creds(t)
      expect(end.last_vault_rotation).toBe(v.id)
      // Rotated exactly once: a crash after rotate-role must not lead to a second rotation.
      if (crashAt >= 2) expect(end.last_vault_rotation, `crash after write ${crashAt}`).toBe(mid)
      else expect(end.last_vault_rotation).not.toBe(start)
      expect(await canLogin(username, end.password)).toBe(true)
    }
  })

  it('two executors on the same request rotate once', async () => {
    const { t } = await staticRole()
    const start = (await creds(t)).last_vault_rotation
    const results = await Promise.allSettled([
      rotate(await freshStore(server), t, 'rr-race'),
      rotate(await freshStore(server), t, 'rr-race'),
    ])
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true)
    for (const r of results)
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: 'ROTATION_IN_PROGRESS' })
    // Two rotations would show as two different last_vault_rotation values.
    const ids = new Set(results.flatMap((r) => (r.status === 'fulfilled' ? [r.value.id] : [])))
    expect(ids.size).toBe(1)
    const after = await rotate(await freshStore(server), t, 'rr-race')
    expect(after.id).not.toBe(start)
    expect((await creds(t)).last_vault_rotation).toBe(after.id)
  })

  it('fails verification when the database no longer takes the password, without printing it', async () => {
    const { t, username } = await staticRole()
    const store = await freshStore(server)
    const v = await store.prepare(t, { requestId: 'rr-broken' })
    const password = (await creds(t)).password
    await db.sql(`ALTER ROLE ${username} PASSWORD 'changed-by-hand'`)
    const err = await caught(() => store.verify(t, { requestId: 'rr-broken', versionId: v.id }))
    expect(err).toMatchObject({ code: 'VERIFY_FAILED' })
    expect(err.message).toContain('password authentication failed')
    expect(errorText(err)).not.toContain(password)
  })

  it('has no previous password to roll back to, and never retires the current one', async () => {
    const { t } = await staticRole()
    const store = await freshStore(server)
    const v = await rotate(store, t, 'rr-rb')
    await expect(store.rollback(t, { requestId: 'rr-rb-undo' })).rejects.toMatchObject({
      code: 'NO_PREVIOUS_VERSION',
    })
    await expect(store.retire(t, { requestId: 'rr-rb', versionId: v.id })).rejects.toMatchObject({
      code: 'RETIRE_CURRENT',
    })
  })

  it('checks the plugin catalog and names a missing plugin clearly', async () => {
    const http = await rootHttp(server)
    await requirePlugin(http)
    const err = await caught(() => requirePlugin(http, 'no-such-database-plugin'))
    expect(err).toMatchObject({ code: 'DB_PLUGIN_MISSING' })
    expect(err.message).toContain('no-such-database-plugin')
    expect(err.next).toContain('bao plugin register database')
  })

  it('names the missing capability when the token may not read the plugin catalog', async () => {
    const { t } = await staticRole()
    await api(server, 'PUT', 'sys/policies/acl/db-no-catalog', {
      policy: `path "database/*" { capabilities = ["read", "update"] }`,
    })
    const tok = await api(server, 'POST', 'auth/token/create', { policies: ['db-no-catalog'], ttl: '5m' })
    const token = tok.json.auth.client_token as string
    const http = await VaultHttp.create({ address: server.addr }, new Secret(token))
    const { VaultSecretStore } = await import('../../../providers/secret-stores/vault/index.js')
    const store = new VaultSecretStore({ name: 'bao', http })
    const err = await caught(() => store.prepare(t, { requestId: 'rr-denied' }))
    expect(err).toMatchObject({ code: 'VAULT_PERMISSION_DENIED' })
    expect(err.message).toContain(
      '"read" and "sudo" capabilities on sys/plugins/catalog/database/postgresql-database-plugin',
    )
    expect(errorText(err)).not.toContain(token)
  })

  it('reports an unreachable database as an external error (exit 3)', async () => {
    const { t } = await staticRole()
    const store = await freshStore(server)
    const v = await store.prepare(t, { requestId: 'rr-down' })
    const password = (await creds(t)).password
    await db.stop()
    const err = await caught(() => store.verify(t, { requestId: 'rr-down', versionId: v.id }))
    expect(err).toMatchObject({ code: 'DB_UNREACHABLE', exitCode: 3 })
    expect(errorText(err)).not.toContain(password)
  })
})
