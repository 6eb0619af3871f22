import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { VaultSecretStore } from '../../../providers/secret-stores/vault/index.js'
import { stages } from '../../../src/engine/secret-store.js'
import type { Target } from '../../../src/spec/schema.js'
import { startOpenBao, type OpenBaoServer } from '../../harness/openbao.js'
import {
  api,
  caught,
  errorText,
  FaultyVault,
  freshStore,
  kvLatest,
  rootHttp,
  SimulatedCrash,
} from './helpers.js'

type AppRoleTarget = Extract<Target, { mechanism: 'approle-secret-id' }>
let server: OpenBaoServer
let n = 0

/** A new AppRole role and its delivery path per test. */
async function role(): Promise<AppRoleTarget> {
  const name = `svc-app-${++n}`
  expect(
    (await api(server, 'POST', `auth/approle/role/${name}`, { token_policies: ['default'], token_ttl: '5m' }))
      .status,
  ).toBe(204)
  return {
    provider: 'bao',
    mechanism: 'approle-secret-id',
    mount: 'approle',
    role: name,
    deliverTo: { mount: 'secret', path: `approle/${name}` },
  }
}

async function roleId(t: AppRoleTarget): Promise<string> {
  return (await api(server, 'GET', `auth/approle/role/${t.role}/role-id`)).json.data.role_id
}

/** Whether a consumer can log in with this secret-id. */
async function canLogin(t: AppRoleTarget, secretId: string): Promise<boolean> {
  const r = await fetch(`${server.addr}/v1/auth/approle/login`, {
    method: 'POST',
    body: JSON.stringify({ role_id: await roleId(t), secret_id: secretId }),
  })
  return r.status === 200
}

async function liveAccessors(t: AppRoleTarget): Promise<string[]> {
  const r = await api(server, 'GET', `auth/approle/role/${t.role}/secret-id?list=true`)
  return r.status === 200 ? r.json.data.keys : []
}

async function tokenCount(): Promise<number> {
  return (await api(server, 'GET', 'auth/token/accessors?list=true')).json.data.keys.length
}

async function rotate(store: VaultSecretStore, t: Target, requestId: string) {
  const before = stages(await store.describe(t)).current?.id
  const pending = await store.prepare(t, { requestId })
  await store.verify(t, { requestId, versionId: pending.id })
  await store.promote(t, { requestId, versionId: pending.id, expectedCurrent: before })
  return pending
}

beforeAll(async () => {
  server = await startOpenBao()
  expect((await api(server, 'POST', 'sys/auth/approle', { type: 'approle' })).status).toBe(204)
})
afterAll(async () => server?.stop())

describe('approle-secret-id through the SecretStore interface, on a real OpenBao', () => {
  it('stages a new secret-id, verifies it by login, delivers it on promote and keeps the old one working until retire', async () => {
    const t = await role()
    const store = await freshStore(server)
    const first = await rotate(store, t, 'rr-first')
    const oldId = (await kvLatest(server, 'secret', t.deliverTo.path)).secret_id!
    expect(await canLogin(t, oldId)).toBe(true)

    const pending = await store.prepare(t, { requestId: 'rr-second' })
    expect(pending).toMatchObject({ stages: ['pending'], requestId: 'rr-second' })
    // The consumer still reads the old secret-id; the new one exists and carries the request id.
    expect((await kvLatest(server, 'secret', t.deliverTo.path)).secret_id).toBe(oldId)
    const lookup = await api(server, 'POST', `auth/approle/role/${t.role}/secret-id-accessor/lookup`, {
      secret_id_accessor: pending.id,
    })
    expect(lookup.json.data.metadata).toEqual({ nhi_recover_request: 'rr-second' })

    const tokensBefore = await tokenCount()
    await store.verify(t, { requestId: 'rr-second', versionId: pending.id })
    expect(await tokenCount(), 'the verification login token was revoked').toBe(tokensBefore)

    await store.promote(t, { requestId: 'rr-second', versionId: pending.id, expectedCurrent: first.id })
    const delivered = await kvLatest(server, 'secret', t.deliverTo.path)
    expect(delivered.secret_id_accessor).toBe(pending.id)
    expect(delivered.secret_id).not.toBe(oldId)
    expect(await canLogin(t, delivered.secret_id!)).toBe(true)
    expect(await canLogin(t, oldId), 'the previous secret-id stays valid until retire').toBe(true)
    const s = stages(await store.describe(t))
    expect(s.current).toMatchObject({ id: pending.id, requestId: 'rr-second' })
    expect(s.previous).toMatchObject({ id: first.id, requestId: 'rr-first' })

    await expect(store.retire(t, { requestId: 'rr-second', versionId: pending.id })).rejects.toMatchObject({
      code: 'RETIRE_CURRENT',
    })
    await store.retire(t, { requestId: 'rr-second', versionId: first.id })
    await store.retire(t, { requestId: 'rr-second', versionId: first.id })
    expect(await canLogin(t, oldId)).toBe(false)
    expect(await liveAccessors(t)).toEqual([pending.id])
  })

  it('repeats of each step with the same request id issue nothing new', async () => {
    const t = await role()
    const store = await freshStore(server)
    const a = await store.prepare(t, { requestId: 'rr-idem' })
    const b = await store.prepare(t, { requestId: 'rr-idem' })
    expect(b.id).toBe(a.id)
    await store.verify(t, { requestId: 'rr-idem', versionId: a.id })
    await store.promote(t, { requestId: 'rr-idem', versionId: a.id, expectedCurrent: undefined })
    await store.promote(t, { requestId: 'rr-idem', versionId: a.id, expectedCurrent: undefined })
    expect(await store.prepare(t, { requestId: 'rr-idem' })).toMatchObject({ id: a.id, stages: ['current'] })
    expect(await liveAccessors(t)).toEqual([a.id])
  })

  it('discards a pending secret-id that fails verification and destroys it', async () => {
    const t = await role()
    const store = await freshStore(server)
    const p = await store.prepare(t, { requestId: 'rr-bad' })
    // Someone destroys the new secret-id before it is verified: the login fails.
    await api(server, 'POST', `auth/approle/role/${t.role}/secret-id-accessor/destroy`, {
      secret_id_accessor: p.id,
    })
    const err = await caught(() => store.verify(t, { requestId: 'rr-bad', versionId: p.id }))
    expect(err).toMatchObject({ code: 'VERIFY_FAILED' })
    await store.discard(t, { requestId: 'rr-bad', versionId: p.id })
    expect(stages(await store.describe(t)).pending).toBeUndefined()
    expect((await api(server, 'GET', `secret/data/${t.deliverTo.path}`)).status).toBe(404)
  })

  it('refuses another request’s pending secret-id and leaves no stray secret-id behind', async () => {
    const t = await role()
    const store = await freshStore(server)
    const p = await store.prepare(t, { requestId: 'rr-one' })
    await expect(store.prepare(t, { requestId: 'rr-two' })).rejects.toMatchObject({ code: 'FOREIGN_PENDING' })
    expect(await liveAccessors(t)).toEqual([p.id])
  })

  it('rolls back by re-delivering the previous secret-id, and refuses once it was destroyed', async () => {
    const t = await role()
    const store = await freshStore(server)
    const first = await rotate(store, t, 'rr-a')
    const firstId = (await kvLatest(server, 'secret', t.deliverTo.path)).secret_id
    await rotate(store, t, 'rr-b')
    const back = await store.rollback(t, { requestId: 'rr-undo' })
    expect(back).toMatchObject({ id: first.id, stages: ['current'] })
    expect((await kvLatest(server, 'secret', t.deliverTo.path)).secret_id).toBe(firstId)
    expect((await store.rollback(t, { requestId: 'rr-undo' })).id).toBe(first.id)

    const t2 = await role()
    const a = await rotate(store, t2, 'rr-c')
    await rotate(store, t2, 'rr-d')
    await store.retire(t2, { requestId: 'rr-d', versionId: a.id })
    await expect(store.rollback(t2, { requestId: 'rr-undo-2' })).rejects.toMatchObject({
      code: 'NO_PREVIOUS_VERSION',
    })
  })

  it('resumes after a crash right after any call that changes state: one secret-id delivered, no orphans', async () => {
    const probe = await role()
    const counting = new FaultyVault(await rootHttp(server))
    const countingStore = await freshStore(server, () => counting)
    await rotate(countingStore, probe, 'rr-probe')
    const total = counting.writes
    expect(total).toBeGreaterThanOrEqual(5)

    for (let crashAt = 1; crashAt <= total; crashAt++) {
      const t = await role()
      const requestId = `rr-crash-${crashAt}`
      const crashing = await freshStore(server, (http) => new FaultyVault(http, { crashAfterWrite: crashAt }))
      await expect(rotate(crashing, t, requestId), `crash after write ${crashAt}`).rejects.toBeInstanceOf(
        SimulatedCrash,
      )
      await rotate(await freshStore(server), t, requestId)
      const delivered = await kvLatest(server, 'secret', t.deliverTo.path)
      expect(await liveAccessors(t), `crash after write ${crashAt}`).toEqual([delivered.secret_id_accessor])
      expect(await canLogin(t, delivered.secret_id!)).toBe(true)
      const meta = (await api(server, 'GET', `secret/metadata/${t.deliverTo.path}`)).json.data
      expect(meta.current_version).toBe(1)
    }
  })

  it('two executors on the same request deliver exactly one secret-id', async () => {
    const t = await role()
    const [a, b] = [await freshStore(server), await freshStore(server)]
    const results = await Promise.allSettled([rotate(a, t, 'rr-same'), rotate(b, t, 'rr-same')])
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true)
    const first = await kvLatest(server, 'secret', t.deliverTo.path)
    expect(await liveAccessors(t)).toEqual([first.secret_id_accessor])
    // A re-run of the request finds it done.
    await rotate(await freshStore(server), t, 'rr-same')
    const delivered = await kvLatest(server, 'secret', t.deliverTo.path)
    expect((await api(server, 'GET', `secret/metadata/${t.deliverTo.path}`)).json.data.current_version).toBe(
      1,
    )
    expect(await liveAccessors(t)).toEqual([delivered.secret_id_accessor])
  })

  it('never puts a secret-id or token into an error message (canary scan)', async () => {
    const t = await role()
    const store = await freshStore(server)
    await rotate(store, t, 'rr-x')
    const delivered = await kvLatest(server, 'secret', t.deliverTo.path)
    const p = await store.prepare(t, { requestId: 'rr-y' })
    const staged = (await store.read(t, p.id)).reveal()
    const errors: unknown[] = []
    for (const fn of [
      () => store.prepare(t, { requestId: 'rr-z' }),
      () => store.retire(t, { requestId: 'rr-x', versionId: delivered.secret_id_accessor! }),
      () => store.read(t, 'no-such-accessor'),
      () => store.verify(t, { requestId: 'rr-y', versionId: 'no-such-accessor' }),
      () => store.prepare({ ...t, role: 'no-such-role' }, { requestId: 'rr-q' }),
    ]) {
      errors.push(await caught(fn))
    }
    for (const err of errors) {
      const text = errorText(err)
      expect(text).not.toContain(delivered.secret_id)
      expect(text).not.toContain(staged)
      expect(text).not.toContain(server.rootToken)
    }
  })
})
