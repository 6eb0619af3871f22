import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { VaultSecretStore } from '../../../providers/secret-stores/vault/index.js'
import { stages } from '../../../src/engine/secret-store.js'
import { Secret } from '../../../src/secret.js'
import type { Target } from '../../../src/spec/schema.js'
import { startOpenBao, type OpenBaoServer } from '../../harness/openbao.js'
import {
  api,
  canary,
  caught,
  errorText,
  FaultyVault,
  freshStore,
  kvLatest,
  kvMeta,
  rootHttp,
  SimulatedCrash,
} from './helpers.js'

let server: OpenBaoServer
let n = 0
/** A new secret path per test, seeded with a first value and an extra field that must survive. */
async function seeded(): Promise<{ target: Target & { mechanism: 'kv-v2' }; first: string }> {
  const path = `svc/app-${++n}`
  const first = canary()
  const r = await api(server, 'POST', `secret/data/${path}`, { data: { value: first, username: 'svc-app' } })
  expect(r.status).toBe(200)
  return { target: { provider: 'bao', mechanism: 'kv-v2', mount: 'secret', path, field: 'value' }, first }
}

/** prepare → verify → promote, as the engine runs them. */
async function rotate(store: VaultSecretStore, target: Target, requestId: string, value: string) {
  const before = stages(await store.describe(target)).current?.id
  const pending = await store.prepare(target, { requestId, value: new Secret(value) })
  await store.verify(target, { requestId, versionId: pending.id })
  await store.promote(target, { requestId, versionId: pending.id, expectedCurrent: before })
  return pending
}

beforeAll(async () => {
  server = await startOpenBao()
})
afterAll(async () => server?.stop())

describe('kv-v2 through the SecretStore interface, on a real OpenBao', () => {
  it('keeps the old value current until promote, then makes it previous', async () => {
    const { target, first } = await seeded()
    const store = await freshStore(server)
    const next = canary()
    const pending = await store.prepare(target, { requestId: 'rr-stage', value: new Secret(next) })
    expect(pending).toMatchObject({ id: '2', stages: ['pending'], requestId: 'rr-stage' })

    // A consumer still reads the old value, and the secret has no new version yet.
    expect((await kvLatest(server, 'secret', target.path)).value).toBe(first)
    let s = stages(await store.describe(target))
    expect(s.current?.id).toBe('1')
    expect(s.pending?.id).toBe('2')
    expect((await store.read(target, '2')).reveal()).toBe(next)

    await store.verify(target, { requestId: 'rr-stage', versionId: '2' })
    await store.promote(target, { requestId: 'rr-stage', versionId: '2', expectedCurrent: '1' })

    expect(await kvLatest(server, 'secret', target.path)).toEqual({ value: next, username: 'svc-app' })
    s = stages(await store.describe(target))
    expect(s.current).toMatchObject({ id: '2', requestId: 'rr-stage' })
    expect(s.previous?.id).toBe('1')
    expect(s.pending).toBeUndefined()
    const meta = await kvMeta(server, 'secret', target.path)
    expect(JSON.parse(meta.custom_metadata['nhi-recover.v2'])).toEqual({ request: 'rr-stage' })
    // The staging secret is gone once promoted.
    expect((await api(server, 'GET', `secret/metadata/nhi-recover/staging/${target.path}`)).status).toBe(404)
  })

  it('repeats of every step with the same request id write nothing new (idempotent)', async () => {
    const { target } = await seeded()
    const store = await freshStore(server)
    const a = await store.prepare(target, { requestId: 'rr-idem', value: new Secret(canary()) })
    const b = await store.prepare(target, { requestId: 'rr-idem', value: new Secret(canary()) })
    expect(b.id).toBe(a.id)
    await store.verify(target, { requestId: 'rr-idem', versionId: a.id })
    await store.promote(target, { requestId: 'rr-idem', versionId: a.id, expectedCurrent: '1' })
    await store.promote(target, { requestId: 'rr-idem', versionId: a.id, expectedCurrent: '1' })
    const again = await store.prepare(target, { requestId: 'rr-idem', value: new Secret(canary()) })
    expect(again).toMatchObject({ id: a.id, stages: ['current'] })
    await store.verify(target, { requestId: 'rr-idem', versionId: a.id })
    const meta = await kvMeta(server, 'secret', target.path)
    expect(meta.current_version).toBe(2)
  })

  it('refuses to stage over another request’s pending version', async () => {
    const { target } = await seeded()
    const store = await freshStore(server)
    await store.prepare(target, { requestId: 'rr-first', value: new Secret(canary()) })
    const err = await caught(() =>
      store.prepare(target, { requestId: 'rr-second', value: new Secret(canary()) }),
    )
    expect(err).toMatchObject({ code: 'FOREIGN_PENDING' })
    expect(err.message).toContain('rr-first')
  })

  it('stops with CURRENT_CHANGED and no damage when someone else writes between prepare and promote', async () => {
    const { target } = await seeded()
    const store = await freshStore(server)
    const ours = canary()
    const foreign = canary()
    const p = await store.prepare(target, { requestId: 'rr-raced', value: new Secret(ours) })
    expect(
      (await api(server, 'POST', `secret/data/${target.path}`, { data: { value: foreign } })).status,
    ).toBe(200)

    const err = await caught(() =>
      store.promote(target, { requestId: 'rr-raced', versionId: p.id, expectedCurrent: '1' }),
    )
    expect(err).toMatchObject({ code: 'CURRENT_CHANGED' })
    expect(err.message).toMatch(/Someone else wrote secret\/svc\/app-\d+/)
    expect(errorText(err)).not.toContain(ours)
    expect(errorText(err)).not.toContain(foreign)
    // The foreign value stays current; our value was never written to the secret.
    expect((await kvLatest(server, 'secret', target.path)).value).toBe(foreign)
    const meta = await kvMeta(server, 'secret', target.path)
    expect(meta.current_version).toBe(2)
    // A re-run refuses the same way, and discard then clears the stale pending version.
    await expect(
      store.prepare(target, { requestId: 'rr-raced', value: new Secret(canary()) }),
    ).rejects.toMatchObject({
      code: 'CURRENT_CHANGED',
    })
    const s = stages(await store.describe(target))
    expect(s.pending).toMatchObject({ id: 'stale-2', requestId: 'rr-raced' })
    expect(s.current?.id).toBe('2')
    await store.discard(target, { requestId: 'rr-raced', versionId: p.id })
    expect(stages(await store.describe(target)).pending).toBeUndefined()
  })

  it('loses the CAS race cleanly when a foreign write lands just before its own write', async () => {
    const { target } = await seeded()
    const foreign = canary()
    let injected = false
    const store = await freshStore(
      server,
      (http) =>
        new FaultyVault(http, {
          beforeCall: async (call) => {
            // Right before our CAS write of the secret itself, someone else writes it.
            if (!injected && call.method === 'POST' && call.path === `secret/data/${target.path}`) {
              injected = true
              await api(server, 'POST', `secret/data/${target.path}`, { data: { value: foreign } })
            }
          },
        }),
    )
    const p = await store.prepare(target, { requestId: 'rr-cas', value: new Secret(canary()) })
    await store.verify(target, { requestId: 'rr-cas', versionId: p.id })
    await expect(
      store.promote(target, { requestId: 'rr-cas', versionId: p.id, expectedCurrent: '1' }),
    ).rejects.toMatchObject({
      code: 'CURRENT_CHANGED',
    })
    expect(injected).toBe(true)
    expect((await kvLatest(server, 'secret', target.path)).value).toBe(foreign)
    expect((await kvMeta(server, 'secret', target.path)).current_version).toBe(2)
  })

  it('refuses to promote when the engine expected another current version', async () => {
    const { target } = await seeded()
    const store = await freshStore(server)
    const p = await store.prepare(target, { requestId: 'rr-expect', value: new Secret(canary()) })
    await expect(
      store.promote(target, { requestId: 'rr-expect', versionId: p.id, expectedCurrent: '7' }),
    ).rejects.toMatchObject({
      code: 'CURRENT_CHANGED',
    })
    expect((await kvMeta(server, 'secret', target.path)).current_version).toBe(1)
  })

  it('rolls back by re-writing the previous version with CAS, once per request', async () => {
    const { target, first } = await seeded()
    const store = await freshStore(server)
    await rotate(store, target, 'rr-fwd', canary())
    const back = await store.rollback(target, { requestId: 'rr-back' })
    expect(back).toMatchObject({ id: '3', stages: ['current'], requestId: 'rr-back' })
    expect(await kvLatest(server, 'secret', target.path)).toEqual({ value: first, username: 'svc-app' })
    const again = await store.rollback(target, { requestId: 'rr-back' })
    expect(again.id).toBe('3')
    expect((await kvMeta(server, 'secret', target.path)).current_version).toBe(3)
    const s = stages(await store.describe(target))
    expect(s.previous).toBeUndefined()
    await expect(store.rollback(target, { requestId: 'rr-back-2' })).rejects.toMatchObject({
      code: 'NO_PREVIOUS_VERSION',
    })
  })

  it('retires the previous version by destroying it, never the current one', async () => {
    const { target } = await seeded()
    const store = await freshStore(server)
    await rotate(store, target, 'rr-ret', canary())
    await expect(store.retire(target, { requestId: 'rr-ret', versionId: '2' })).rejects.toMatchObject({
      code: 'RETIRE_CURRENT',
    })
    await store.retire(target, { requestId: 'rr-ret', versionId: '1' })
    await store.retire(target, { requestId: 'rr-ret', versionId: '1' })
    const meta = await kvMeta(server, 'secret', target.path)
    expect(meta.versions['1'].destroyed).toBe(true)
    expect(meta.versions['2'].destroyed).toBe(false)
    const v1 = (await store.describe(target)).versions.find((v) => v.id === '1')
    expect(v1).toMatchObject({ retired: true, stages: [] })
    await expect(store.rollback(target, { requestId: 'rr-after-retire' })).rejects.toMatchObject({
      code: 'NO_PREVIOUS_VERSION',
    })
    await expect(store.read(target, '1')).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' })
  })

  it('creates the secret when it did not exist yet', async () => {
    const target: Target = {
      provider: 'bao',
      mechanism: 'kv-v2',
      mount: 'secret',
      path: 'svc/brand-new',
      field: 'token',
    }
    const store = await freshStore(server)
    expect(await store.describe(target)).toEqual({ exists: false, versions: [] })
    const v = canary()
    await rotate(store, target, 'rr-new', v)
    expect(await kvLatest(server, 'secret', 'svc/brand-new')).toEqual({ token: v })
    expect(stages(await store.describe(target)).previous).toBeUndefined()
  })

  it('resumes after a crash right after any write, from a fresh provider: exactly one rotation', async () => {
    // Count the writes of one whole rotation, then crash after each of them in turn.
    const probe = await seeded()
    const counting = new FaultyVault(await rootHttp(server))
    const countingStore = await freshStore(server, () => counting)
    await rotate(countingStore, probe.target, 'rr-probe', canary())
    await countingStore.retire(probe.target, { requestId: 'rr-probe', versionId: '1' })
    const total = counting.writes
    // stage, CAS write, marker, unstage, destroy
    expect(total).toBe(5)

    for (let crashAt = 1; crashAt <= total; crashAt++) {
      const { target, first } = await seeded()
      const value = canary()
      const requestId = `rr-crash-${crashAt}`
      const crashing = await freshStore(server, (http) => new FaultyVault(http, { crashAfterWrite: crashAt }))
      const run = async (store: VaultSecretStore) => {
        await rotate(store, target, requestId, value)
        await store.retire(target, { requestId, versionId: '1' })
      }
      await expect(run(crashing), `crash after write ${crashAt}`).rejects.toBeInstanceOf(SimulatedCrash)
      // Mid-crash, consumers read exactly one of the two values, never nothing.
      expect([first, value]).toContain((await kvLatest(server, 'secret', target.path)).value)
      await run(await freshStore(server))
      const meta = await kvMeta(server, 'secret', target.path)
      expect(meta.current_version, `crash after write ${crashAt}`).toBe(2)
      expect((await kvLatest(server, 'secret', target.path)).value).toBe(value)
      const s = stages(await (await freshStore(server)).describe(target))
      expect(s.current).toMatchObject({ id: '2', requestId })
      expect(s.pending).toBeUndefined()
      expect(meta.versions['1'].destroyed).toBe(true)
    }
  })

  it('two executors on the same request give exactly one rotation', async () => {
    const { target } = await seeded()
    const value = canary()
    const [a, b] = [await freshStore(server), await freshStore(server)]
    const results = await Promise.allSettled([
      rotate(a, target, 'rr-race-same', value),
      rotate(b, target, 'rr-race-same', value),
    ])
    // Both may succeed (the second finds the first's work); neither may write a second version.
    for (const r of results)
      if (r.status === 'rejected') expect(r.reason).toMatchObject({ code: expect.any(String) })
    expect(results.some((r) => r.status === 'fulfilled')).toBe(true)
    expect((await kvMeta(server, 'secret', target.path)).current_version).toBe(2)
    expect((await kvLatest(server, 'secret', target.path)).value).toBe(value)
  })

  it('two requests racing on one secret: one rotates, the other is refused', async () => {
    const { target } = await seeded()
    const stores = await Promise.all([1, 2, 3, 4].map(() => freshStore(server)))
    const results = await Promise.allSettled(
      stores.map((s, i) => rotate(s, target, `rr-race-${i}`, canary())),
    )
    const ok = results.filter((r) => r.status === 'fulfilled')
    expect(ok).toHaveLength(1)
    for (const r of results) {
      if (r.status === 'rejected')
        expect(['FOREIGN_PENDING', 'CURRENT_CHANGED']).toContain((r.reason as { code: string }).code)
    }
    expect((await kvMeta(server, 'secret', target.path)).current_version).toBe(2)
  })

  it('never puts a value into any error message (canary scan)', async () => {
    const { target, first } = await seeded()
    const store = await freshStore(server)
    const mine = canary()
    const errors: unknown[] = []
    const attempt = async (fn: () => Promise<unknown>) => {
      try {
        await fn()
      } catch (err) {
        errors.push(err)
      }
    }
    await store.prepare(target, { requestId: 'rr-canary', value: new Secret(mine) })
    await attempt(() => store.prepare(target, { requestId: 'rr-other', value: new Secret(canary()) }))
    await attempt(() =>
      store.promote(target, { requestId: 'rr-canary', versionId: '2', expectedCurrent: '9' }),
    )
    await attempt(() => store.retire(target, { requestId: 'rr-canary', versionId: '1' }))
    await attempt(() => store.read(target, '42'))
    await attempt(() => store.rollback(target, { requestId: 'rr-canary-rb' }))
    await attempt(() =>
      store.prepare({ ...target, mount: 'nope' }, { requestId: 'rr-x', value: new Secret(mine) }),
    )
    await api(server, 'POST', `secret/data/${target.path}`, { data: { value: canary() } })
    await attempt(() =>
      store.promote(target, { requestId: 'rr-canary', versionId: '2', expectedCurrent: '1' }),
    )
    expect(errors.length).toBeGreaterThanOrEqual(6)
    for (const err of errors) {
      const text = errorText(err)
      expect(text).not.toContain(mine)
      expect(text).not.toContain(first)
      expect(text).not.toContain(server.rootToken)
    }
  })
})
