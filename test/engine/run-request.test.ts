import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LocalSecretStore } from '../../providers/secret-stores/local.js'
import type { ExecutableSpec } from '../../src/engine/ports.js'
import { runRequest } from '../../src/engine/run-request.js'
import { stages } from '../../src/engine/secret-store.js'
import { CRASH_POINTS, type CrashPoint } from '../../src/engine/test-hooks.js'
import { CheckFailedError } from '../../src/errors.js'
import { Secret } from '../../src/secret.js'
import { RecoveryRequest } from '../../src/spec/schema.js'

const NOW = new Date('2026-11-22T12:00:00Z')

function executable(over: Record<string, unknown> = {}): ExecutableSpec {
  const spec = RecoveryRequest.parse({
    apiVersion: 'nhi-recover/v1',
    kind: 'RecoveryRequest',
    id: 'rr-svc-key',
    requester: { name: 'alice', kind: 'human' },
    reason: 'leaked',
    ticket: 'SEC-1',
    created: '2026-11-22T10:00:00Z',
    expires: '2026-11-29T10:00:00Z',
    identity: { name: 'svc-key', type: 'api-key', owner: 'team-a', risk: 'low' },
    target: { provider: 'local', mechanism: 'local', path: 'svc/key' },
    action: 'rotate',
    rotation: { retainPrevious: '1h' },
    ...over,
  })
  return { spec, path: 'recovery-specs/rr-svc-key.yaml', sha256: 'a'.repeat(64), blob: 'b'.repeat(40) }
}

class Crash extends Error {}

describe('runRequest on the local store', () => {
  let dir: string
  let store: LocalSecretStore
  let first: string
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'nhi-run-'))
    store = new LocalSecretStore({ name: 'local', dir, key: randomBytes(32) })
    first = (await store.put('svc/key', new Secret(`old-${randomBytes(8).toString('hex')}`))).id
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  const target = executable().spec.target

  it('rotates: the new version is current, the old one previous until its retention passes', async () => {
    const r = await runRequest(executable(), { store, now: () => NOW, crash: () => {} })
    expect(r).toMatchObject({
      outcome: 'succeeded',
      versionBefore: first,
      retireAfter: '2026-11-22T13:00:00.000Z',
      resumed: false,
    })
    const s = stages(await store.describe(target))
    expect(s.current?.id).toBe(r.versionAfter)
    expect(s.current?.requestId).toBe('rr-svc-key')
    expect(s.previous?.id).toBe(first)
  })

  it('revoke retires the old version at once', async () => {
    const r = await runRequest(executable({ action: 'revoke' }), { store, now: () => NOW, crash: () => {} })
    expect(r.retireAfter).toBeUndefined()
    const old = (await store.describe(target)).versions.find((v) => v.id === first)
    expect(old?.retired).toBe(true)
  })

  it.each(CRASH_POINTS.filter((p) => ['after-prepare', 'after-verify', 'after-promote'].includes(p)))(
    'finishes the same rotation after an interruption %s, rotating exactly once',
    async (point: CrashPoint) => {
      const crashAt = (p: CrashPoint) => {
        if (p === point) throw new Crash(p)
      }
      await expect(
        runRequest(executable(), { store, now: () => NOW, crash: crashAt }),
      ).rejects.toBeInstanceOf(Crash)
      const again = await runRequest(executable(), { store, now: () => NOW, crash: () => {} })
      expect(again).toMatchObject({ outcome: 'succeeded', versionBefore: first, resumed: true })
      const state = await store.describe(target)
      expect(state.versions).toHaveLength(2)
      expect(state.versions.filter((v) => v.stages.includes('current'))).toHaveLength(1)
      expect(stages(state).current?.id).toBe(again.versionAfter)
    },
  )

  it('reports a failed verification as failed, not rolled back, when prepare already put the credential in force', async () => {
    // Like database-static-role's rotate-role: prepare makes the new version current at once.
    const immediate = new Proxy(store, {
      get(t, prop) {
        if (prop === 'prepare') {
          return async (...a: Parameters<LocalSecretStore['prepare']>) => {
            const v = await t.prepare(...a)
            await t.promote(a[0], { requestId: a[1].requestId, versionId: v.id, expectedCurrent: first })
            return { ...v, stages: ['current'] }
          }
        }
        if (prop === 'verify') {
          return async () => {
            throw new CheckFailedError('VERIFY_FAILED', 'the login was refused.')
          }
        }
        const v = Reflect.get(t, prop) as unknown
        return typeof v === 'function' ? v.bind(t) : v
      },
    })
    const run = runRequest(executable(), { store: immediate, now: () => NOW, crash: () => {} })
    await expect(run).rejects.toMatchObject({
      code: 'VERIFY_FAILED_IN_FORCE',
      message: expect.stringMatching(
        /the login was refused\. Version \d+ is already in force .*nothing was rolled back/,
      ),
    })
    expect(stages(await store.describe(target)).current?.id).not.toBe(first)
  })

  it('discards the staged version when verification fails, leaving the old one current', async () => {
    // The real store, except that its own check rejects the staged version.
    const failing = new Proxy(store, {
      get(t, prop) {
        if (prop === 'verify') {
          return async () => {
            throw new CheckFailedError('VERIFY_FAILED', 'the new key was rejected')
          }
        }
        const v = Reflect.get(t, prop) as unknown
        return typeof v === 'function' ? v.bind(t) : v
      },
    })
    const r = await runRequest(executable(), { store: failing, now: () => NOW, crash: () => {} })
    expect(r).toMatchObject({ outcome: 'rolled-back', versionBefore: first })
    expect(r.reason).toContain('the new key was rejected')
    const s = stages(await store.describe(target))
    expect(s.current?.id).toBe(first)
    expect(s.pending).toBeUndefined()
  })

  it("refuses to touch a target with another request's pending version", async () => {
    await store.prepare(target, { requestId: 'rr-other', value: new Secret('x'.repeat(20)) })
    await expect(runRequest(executable(), { store, now: () => NOW, crash: () => {} })).rejects.toMatchObject({
      code: 'FOREIGN_PENDING',
    })
  })

  it('rolls back to the version a succeeded rotation replaced, and a repeat changes nothing', async () => {
    const rotated = await runRequest(executable(), { store, now: () => NOW, crash: () => {} })
    const record = {
      requestId: 'rr-svc-key',
      outcome: 'succeeded' as const,
      action: 'rotate' as const,
      provider: 'local',
      target: 'local:svc/key',
      versionBefore: first,
      versionAfter: rotated.versionAfter!,
      time: NOW.toISOString(),
    }
    const rb = executable({ id: 'rr-svc-key-back', action: 'rollback', rollbackOf: 'rr-svc-key' })
    const r = await runRequest(rb, { store, now: () => NOW, crash: () => {}, rollbackOf: record })
    expect(r).toMatchObject({ outcome: 'succeeded', versionAfter: first, resumed: false })
    const again = await runRequest(rb, { store, now: () => NOW, crash: () => {}, rollbackOf: record })
    expect(again).toMatchObject({ outcome: 'succeeded', versionAfter: first, resumed: true })
    expect(stages(await store.describe(target)).current?.id).toBe(first)
  })
})
