import { execa } from 'execa'
import { randomBytes } from 'node:crypto'
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LocalSecretStore, loadLocalKey } from '../../providers/secret-stores/local.js'
import { stages } from '../../src/engine/secret-store.js'
import { Secret } from '../../src/secret.js'
import type { Target } from '../../src/spec/schema.js'
import { PROJECT_ROOT } from '../helpers/cli.js'

const target: Target = { provider: 'local', mechanism: 'local', path: 'svc/api-key' }
const canary = () => `CANARY-${randomBytes(12).toString('hex')}`

function allFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name))
}

describe('local secret store', () => {
  let dir: string
  let key: Buffer
  let store: LocalSecretStore
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'nhi-local-'))
    key = randomBytes(32)
    store = new LocalSecretStore({ name: 'local', dir, key })
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('runs a staged rotation: the old value stays current until promote, then becomes previous', async () => {
    const oldValue = canary()
    const newValue = canary()
    const first = await store.put(target.path, new Secret(oldValue))
    const pending = await store.prepare(target, { requestId: 'rr-one', value: new Secret(newValue) })
    let s = stages(await store.describe(target))
    expect(s.current?.id).toBe(first.id)
    expect(s.pending?.id).toBe(pending.id)

    await store.verify(target, { requestId: 'rr-one', versionId: pending.id })
    await store.promote(target, { requestId: 'rr-one', versionId: pending.id, expectedCurrent: first.id })
    s = stages(await store.describe(target))
    expect(s.current?.id).toBe(pending.id)
    expect(s.previous?.id).toBe(first.id)
    expect(s.pending).toBeUndefined()
    expect((await store.read(target, pending.id)).reveal()).toBe(newValue)
  })

  it('repeats of prepare and promote for the same request change nothing (idempotent)', async () => {
    const first = await store.put(target.path, new Secret(canary()))
    const a = await store.prepare(target, { requestId: 'rr-one', value: new Secret(canary()) })
    const b = await store.prepare(target, { requestId: 'rr-one', value: new Secret(canary()) })
    expect(b.id).toBe(a.id)
    await store.promote(target, { requestId: 'rr-one', versionId: a.id, expectedCurrent: first.id })
    await store.promote(target, { requestId: 'rr-one', versionId: a.id, expectedCurrent: first.id })
    const c = await store.prepare(target, { requestId: 'rr-one', value: new Secret(canary()) })
    expect(c.id).toBe(a.id)
    const state = await store.describe(target)
    expect(state.versions.filter((v) => v.stages.includes('current'))).toHaveLength(1)
    expect(state.versions).toHaveLength(2)
  })

  it("refuses to overwrite another request's pending version", async () => {
    await store.put(target.path, new Secret(canary()))
    await store.prepare(target, { requestId: 'rr-one', value: new Secret(canary()) })
    await expect(
      store.prepare(target, { requestId: 'rr-two', value: new Secret(canary()) }),
    ).rejects.toMatchObject({
      code: 'FOREIGN_PENDING',
    })
  })

  it('refuses to promote when the current version changed underneath', async () => {
    const first = await store.put(target.path, new Secret(canary()))
    const p = await store.prepare(target, { requestId: 'rr-one', value: new Secret(canary()) })
    await store.put(target.path, new Secret(canary()))
    await expect(
      store.promote(target, { requestId: 'rr-one', versionId: p.id, expectedCurrent: first.id }),
    ).rejects.toMatchObject({ code: 'CURRENT_CHANGED' })
  })

  it('never retires the current version, and rolls back to previous', async () => {
    const first = await store.put(target.path, new Secret(canary()))
    const p = await store.prepare(target, { requestId: 'rr-one', value: new Secret(canary()) })
    await store.promote(target, { requestId: 'rr-one', versionId: p.id, expectedCurrent: first.id })
    await expect(store.retire(target, { requestId: 'rr-one', versionId: p.id })).rejects.toMatchObject({
      code: 'RETIRE_CURRENT',
    })
    const back = await store.rollback(target, { requestId: 'rr-rollback' })
    expect(back.id).toBe(first.id)
    await store.retire(target, { requestId: 'rr-one', versionId: p.id })
    await expect(store.read(target, p.id)).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' })
    await expect(store.rollback(target, { requestId: 'rr-x' })).rejects.toMatchObject({
      code: 'NO_PREVIOUS_VERSION',
    })
  })

  it('keeps values encrypted at rest: no canary appears in any store file', async () => {
    const values = [canary(), canary()]
    await store.put(target.path, new Secret(values[0]!))
    await store.prepare(target, { requestId: 'rr-one', value: new Secret(values[1]!) })
    for (const file of allFiles(dir)) {
      const bytes = readFileSync(file, 'utf8')
      for (const v of values) expect(bytes.includes(v), `${file} holds a plaintext value`).toBe(false)
    }
  })

  it('refuses a tampered file or a wrong key without revealing anything', async () => {
    const v = await store.put(target.path, new Secret(canary()))
    const wrong = new LocalSecretStore({ name: 'local', dir, key: randomBytes(32) })
    await expect(wrong.read(target, v.id)).rejects.toMatchObject({ code: 'LOCAL_DECRYPT_FAILED' })
    const [file] = allFiles(dir)
    const stored = JSON.parse(readFileSync(file!, 'utf8'))
    stored.versions[0].id = '99'
    writeFileSync(file!, JSON.stringify(stored))
    await expect(store.read(target, '99')).rejects.toMatchObject({ code: 'LOCAL_DECRYPT_FAILED' })
  })

  it('leaves exactly one pending version when several processes race to stage', async () => {
    await store.put('race/key', new Secret(canary()))
    const worker = join(PROJECT_ROOT, 'test/providers/local-race-worker.ts')
    const runs = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        execa('node', ['--import', 'tsx', worker, dir, key.toString('base64'), `rr-race-${i}`, canary()], {
          cwd: PROJECT_ROOT,
        }),
      ),
    )
    const results = runs.map((r) => JSON.parse(r.stdout) as { ok: boolean; code?: string })
    expect(results.filter((r) => r.ok)).toHaveLength(1)
    expect(results.filter((r) => !r.ok).every((r) => r.code === 'FOREIGN_PENDING')).toBe(true)
    const state = await store.describe({ provider: 'local', mechanism: 'local', path: 'race/key' })
    expect(state.versions.filter((v) => v.stages.includes('pending'))).toHaveLength(1)
    expect(state.versions.filter((v) => v.stages.includes('current'))).toHaveLength(1)
  })
})

describe('local store key', () => {
  const config = { kind: 'local' as const, store: '.s', keyEnv: 'NHI_TEST_LOCAL_KEY' }
  let root: string
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'nhi-localkey-'))
  })
  afterEach(() => rmSync(root, { recursive: true, force: true }))

  it('reads a base64 key from the environment', () => {
    const key = randomBytes(32)
    expect(loadLocalKey(config, root, { NHI_TEST_LOCAL_KEY: key.toString('base64') }).equals(key)).toBe(true)
  })

  it('refuses a key file that others can read, naming the fix', () => {
    writeFileSync(join(root, 'k'), randomBytes(32).toString('base64'))
    chmodSync(join(root, 'k'), 0o644)
    expect(() => loadLocalKey({ ...config, keyFile: 'k' }, root, {})).toThrow(/readable by others/)
    chmodSync(join(root, 'k'), 0o600)
    expect(loadLocalKey({ ...config, keyFile: 'k' }, root, {})).toHaveLength(32)
  })

  it('says how to make a key when none is configured', () => {
    expect(() => loadLocalKey(config, root, {})).toThrow(
      expect.objectContaining({
        code: 'LOCAL_KEY_MISSING',
        next: expect.stringContaining('openssl rand -base64 32'),
      }),
    )
  })

  it('refuses a key of the wrong length', () => {
    expect(() =>
      loadLocalKey(config, root, { NHI_TEST_LOCAL_KEY: randomBytes(16).toString('base64') }),
    ).toThrow(/32 bytes/)
  })
})
