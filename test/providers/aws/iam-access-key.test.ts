import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { TagUserCommand, UpdateAccessKeyCommand, type IAMClient } from '@aws-sdk/client-iam'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createAwsSecretStore } from '../../../providers/secret-stores/aws/index.js'
import {
  CREATING_TAG,
  type ExtraKeyPolicy,
  type IamAccessKeyStore,
} from '../../../providers/secret-stores/aws/iam-access-key.js'
import { versionIdFor } from '../../../providers/secret-stores/aws/staged-secret.js'
import { stages } from '../../../src/engine/secret-store.js'
import type { ProviderConfig, Target } from '../../../src/spec/schema.js'
import { startMoto, useMotoEnv, type MotoServer } from '../../harness/moto.js'
import {
  caught,
  createKey,
  createSecret,
  createUser,
  errorText,
  expectNoCanary,
  holder,
  keysOf,
  labelsOf,
  putVersion,
  rawClients,
  valueAt,
} from './fixtures.js'

const USER = 'svc-payments'
const SECRET = 'svc/payments/aws-key'
const RR = 'rr-rotate-payments-key'
const target: Target = {
  provider: 'aws-iam',
  mechanism: 'iam-access-key',
  user: USER,
  secret: SECRET,
  secretProvider: 'aws-sm',
}

describe('aws iam-access-key provider (real moto server)', () => {
  let moto: MotoServer
  let sm: SecretsManagerClient
  let iam: IAMClient
  /** Every secret access key seen in a test, for the canary scans. */
  let secrets: string[]
  const store = (extraKeys?: ExtraKeyPolicy) => {
    const providers: Record<string, ProviderConfig> = {
      'aws-iam': { kind: 'aws-iam', region: 'us-east-1', endpoint: moto.endpoint },
      'aws-sm': { kind: 'aws-secrets-manager', region: 'us-east-1', endpoint: moto.endpoint },
    }
    return createAwsSecretStore('aws-iam', providers, {
      propagation: { timeoutMs: 1_000, intervalMs: 100 },
      ...(extraKeys ? { extraKeys } : {}),
    }) as IamAccessKeyStore
  }
  const pair = (k: { id: string; secret: string }) =>
    JSON.stringify({ AccessKeyId: k.id, SecretAccessKey: k.secret })
  const keyIn = async (stage: string, versionId?: string) => {
    const v = JSON.parse((await valueAt(sm, SECRET, stage, versionId))!) as Record<string, string>
    secrets.push(v.SecretAccessKey!)
    return v.AccessKeyId!
  }

  /** A service account in use: the user has one key, and the secret holds it as AWSCURRENT. */
  async function inUse() {
    await createUser(iam, USER)
    const k0 = await createKey(iam, USER)
    secrets.push(k0.secret)
    const v0 = await createSecret(sm, SECRET, pair(k0))
    return { k0, v0: v0! }
  }

  async function rotate(s: IamAccessKeyStore, requestId = RR) {
    const st = stages(await s.describe(target))
    const before = st.current?.requestId === requestId ? st.previous?.id : st.current?.id
    const v = await s.prepare(target, { requestId })
    await s.verify(target, { requestId, versionId: v.id })
    await s.promote(target, { requestId, versionId: v.id, expectedCurrent: before })
    return { before, after: v.id }
  }

  beforeAll(async () => {
    useMotoEnv()
    moto = await startMoto()
    ;({ sm, iam } = rawClients(moto))
  })
  afterAll(async () => moto?.stop())
  beforeEach(async () => {
    secrets = []
    await moto.reset()
  })

  it('rotates end to end: new key staged as AWSPENDING, verified by GetCallerIdentity, promoted, old key off then deleted', async () => {
    const { k0, v0 } = await inUse()
    const s = store()

    const v = await s.prepare(target, { requestId: RR })
    expect(v).toMatchObject({ id: versionIdFor(RR), stages: ['pending'], requestId: RR })
    const fresh = await keyIn('AWSPENDING')
    expect(fresh).not.toBe(k0.id)
    expect(await keysOf(iam, USER)).toEqual(
      [
        { id: k0.id, status: 'Active' },
        { id: fresh, status: 'Active' },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    )

    await s.verify(target, { requestId: RR, versionId: v.id })
    await s.promote(target, { requestId: RR, versionId: v.id, expectedCurrent: v0 })
    expect(await keyIn('AWSCURRENT')).toBe(fresh)
    expect(await keyIn('AWSPREVIOUS')).toBe(k0.id)
    // The old key stops working at promotion, and is deleted when its version is retired.
    expect((await keysOf(iam, USER)).find((k) => k.id === k0.id)?.status).toBe('Inactive')
    await s.retire(target, { requestId: RR, versionId: v0 })
    await s.retire(target, { requestId: RR, versionId: v0 })
    expect(await keysOf(iam, USER)).toEqual([{ id: fresh, status: 'Active' }])
    expect((await labelsOf(sm, SECRET))[v0]).toEqual([])
    expect(JSON.parse((await s.read(target, v.id)).reveal())).toMatchObject({ AccessKeyId: fresh })
  })

  it('refuses a pending key that signs in as another user, and a version that is not a key pair', async () => {
    await inUse()
    await createUser(iam, 'someone-else')
    const other = await createKey(iam, 'someone-else')
    secrets.push(other.secret)
    const foreignVersion = await putVersion(sm, SECRET, pair(other), ['AWSPENDING'])
    const err = await caught(() => store().verify(target, { requestId: RR, versionId: foreignVersion }))
    expect(err).toMatchObject({ code: 'VERIFY_FAILED', exitCode: 1 })
    expect(err.message).toContain('user/someone-else')

    await moto.reset()
    await inUse()
    const junk = `not-json-${secrets[0]}`
    const junkVersion = await putVersion(sm, SECRET, junk, ['AWSPENDING'])
    const bad = await caught(() => store().verify(target, { requestId: RR, versionId: junkVersion }))
    expect(bad.code).toBe('AWS_KEY_PAIR_INVALID')
    expectNoCanary([errorText(err), errorText(bad)], [...secrets, junk])
  })

  describe('when the user already has two access keys', () => {
    it('deletes the inactive one that no version holds, then rotates', async () => {
      const { k0 } = await inUse()
      const stray = await createKey(iam, USER)
      await iam.send(
        new UpdateAccessKeyCommand({ UserName: USER, AccessKeyId: stray.id, Status: 'Inactive' }),
      )
      await rotate(store())
      const keys = await keysOf(iam, USER)
      expect(keys.map((k) => k.id)).not.toContain(stray.id)
      expect(keys).toContainEqual({ id: k0.id, status: 'Inactive' })
      expect(keys).toHaveLength(2)
    })

    it('deletes the previous rotation’s inactive key and takes its labels off', async () => {
      const { v0 } = await inUse()
      await rotate(store(), 'rr-first')
      const previousKey = await keyIn('AWSPREVIOUS')
      await rotate(store(), 'rr-second')
      expect((await keysOf(iam, USER)).map((k) => k.id)).not.toContain(previousKey)
      expect((await labelsOf(sm, SECRET))[v0]).toEqual([])
      expect(await holder(sm, SECRET, 'AWSPREVIOUS')).toBe(versionIdFor('rr-first'))
    })

    it('refuses, naming both keys and the reason, when both are active', async () => {
      const { k0 } = await inUse()
      const other = await createKey(iam, USER)
      secrets.push(other.secret)
      const before = await labelsOf(sm, SECRET)
      const err = await caught(() => store().prepare(target, { requestId: RR }))
      expect(err).toMatchObject({ code: 'TOO_MANY_KEYS', exitCode: 1 })
      expect(err.message).toContain(k0.id)
      expect(err.message).toContain(other.id)
      expect(err.message).toMatch(/only inactive keys may be deleted/)
      expect(err.next).toContain('aws iam delete-access-key')
      expect(await keysOf(iam, USER)).toHaveLength(2)
      expect(await labelsOf(sm, SECRET)).toEqual(before)
      expectNoCanary([errorText(err)], secrets)
    })

    it('deletes the oldest key that is not current when the policy allows it', async () => {
      const { k0 } = await inUse()
      const other = await createKey(iam, USER)
      await rotate(store('delete-inactive-or-oldest'))
      const ids = (await keysOf(iam, USER)).map((k) => k.id)
      expect(ids).not.toContain(other.id)
      expect(ids).toContain(k0.id)
    })

    it('refuses even an inactive key when the policy says never delete', async () => {
      await inUse()
      const stray = await createKey(iam, USER)
      await iam.send(
        new UpdateAccessKeyCommand({ UserName: USER, AccessKeyId: stray.id, Status: 'Inactive' }),
      )
      const err = await caught(() => store('refuse').prepare(target, { requestId: RR }))
      expect(err.code).toBe('TOO_MANY_KEYS')
      expect(err.message).toMatch(/never delete a key/)
    })
  })

  describe('revoke (a compromised key)', () => {
    it('deactivates the current key before anything else, and a repeat after the rotation touches only that key', async () => {
      const { k0, v0 } = await inUse()
      const s = store()
      await moto.startRecording()
      const r = await s.revoke(target, { requestId: 'rr-leaked' })
      const { after } = await rotate(s, 'rr-leaked')
      const calls = (await moto.stopRecording()).map((c) => c.operation)
      expect(r).toEqual({ versionId: v0, accessKeyId: k0.id, key: 'deactivated' })
      // Only reads come before the deactivation: it is the first change made.
      const firstWrite = calls.findIndex((op) => !/\.(Get|List)/.test(op))
      expect(calls[firstWrite]).toBe('iam.UpdateAccessKey')
      expect(calls.indexOf('iam.CreateAccessKey')).toBeGreaterThan(firstWrite)

      const fresh = await keyIn('AWSCURRENT', after)
      expect(await s.revoke(target, { requestId: 'rr-leaked' })).toMatchObject({
        versionId: v0,
        accessKeyId: k0.id,
      })
      expect(await keysOf(iam, USER)).toContainEqual({ id: fresh, status: 'Active' })
      expect(await keysOf(iam, USER)).toContainEqual({ id: k0.id, status: 'Inactive' })
      // A revoked key is never restored.
      await expect(s.rollback(target, { requestId: 'rr-undo' })).rejects.toMatchObject({
        code: 'ROLLBACK_TO_REVOKED',
      })
      expect(await keyIn('AWSCURRENT')).toBe(fresh)
    })

    it('refuses when no version is current, since it cannot tell which key leaked', async () => {
      await createUser(iam, USER)
      await createSecret(sm, SECRET)
      await expect(store().revoke(target, { requestId: 'rr-leaked' })).rejects.toMatchObject({
        code: 'NO_CURRENT_VERSION',
      })
    })
  })

  const steps = ['prepare', 'verify', 'promote', 'retire'] as const
  it.each([0, 1, 2, 3, 4])(
    'a fresh run after a crash that followed %i completed steps finishes with exactly one new key',
    async (done) => {
      const { k0, v0 } = await inUse()
      const a = store()
      let staged: string | undefined
      for (const step of steps.slice(0, done)) {
        if (step === 'prepare') staged = (await a.prepare(target, { requestId: RR })).id
        if (step === 'verify') await a.verify(target, { requestId: RR, versionId: staged! })
        if (step === 'promote')
          await a.promote(target, { requestId: RR, versionId: staged!, expectedCurrent: v0 })
        if (step === 'retire') await a.retire(target, { requestId: RR, versionId: v0 })
      }
      const stagedKey = done >= 1 ? await keyIn('nhi-recover-request:' + RR) : undefined
      const b = store()
      await rotate(b)
      await b.retire(target, { requestId: RR, versionId: v0 })

      const current = await keyIn('AWSCURRENT')
      if (stagedKey) expect(current).toBe(stagedKey)
      expect(current).not.toBe(k0.id)
      expect(await keysOf(iam, USER)).toEqual([{ id: current, status: 'Active' }])
      expect(Object.keys(await labelsOf(sm, SECRET)).sort()).toEqual([v0, versionIdFor(RR)].sort())
    },
  )

  it('deletes a key an interrupted run created but never stored, then stages a fresh one', async () => {
    const { k0 } = await inUse()
    // The state a crash between CreateAccessKey and PutSecretValue leaves behind.
    await iam.send(
      new TagUserCommand({ UserName: USER, Tags: [{ Key: CREATING_TAG, Value: `${RR} ${k0.id}` }] }),
    )
    const orphan = await createKey(iam, USER)
    secrets.push(orphan.secret)

    await rotate(store())
    const current = await keyIn('AWSCURRENT')
    const ids = (await keysOf(iam, USER)).map((k) => k.id)
    expect(ids).not.toContain(orphan.id)
    expect(ids.sort()).toEqual([k0.id, current].sort())
    const tags = (
      await iam.send(new (await import('@aws-sdk/client-iam')).ListUserTagsCommand({ UserName: USER }))
    ).Tags
    expect(tags?.find((t) => t.Key === CREATING_TAG)).toBeUndefined()
  })

  it("refuses to create a key while another request's creation is in progress", async () => {
    await inUse()
    await iam.send(
      new TagUserCommand({
        UserName: USER,
        Tags: [{ Key: CREATING_TAG, Value: 'rr-someone-else AKIAEXAMPLE' }],
      }),
    )
    const err = await caught(() => store().prepare(target, { requestId: RR }))
    expect(err.code).toBe('KEY_CREATION_IN_PROGRESS')
    expect(err.next).toContain(CREATING_TAG)
    expect(await keysOf(iam, USER)).toHaveLength(1)
  })

  it('finishes the deactivation when a run died right after moving AWSCURRENT', async () => {
    const { k0, v0 } = await inUse()
    const s = store()
    const v = await s.prepare(target, { requestId: RR })
    await s.verify(target, { requestId: RR, versionId: v.id })
    const { UpdateSecretVersionStageCommand } = await import('@aws-sdk/client-secrets-manager')
    await sm.send(
      new UpdateSecretVersionStageCommand({
        SecretId: SECRET,
        VersionStage: 'AWSCURRENT',
        MoveToVersionId: v.id,
        RemoveFromVersionId: v0,
      }),
    )
    expect((await keysOf(iam, USER)).find((k) => k.id === k0.id)?.status).toBe('Active')
    await store().promote(target, { requestId: RR, versionId: v.id, expectedCurrent: v0 })
    expect((await keysOf(iam, USER)).find((k) => k.id === k0.id)?.status).toBe('Inactive')
    expect(await holder(sm, SECRET, 'AWSPENDING')).toBeUndefined()
  })

  it('rolls back: the old key is active and current again, the new one is disabled; a repeat changes nothing', async () => {
    const { k0, v0 } = await inUse()
    const { after } = await rotate(store())
    const fresh = await keyIn('AWSCURRENT')
    const back = await store().rollback(target, { requestId: 'rr-undo' })
    expect(back.id).toBe(v0)
    expect(await keyIn('AWSCURRENT')).toBe(k0.id)
    expect(await keysOf(iam, USER)).toEqual(
      [
        { id: k0.id, status: 'Active' },
        { id: fresh, status: 'Inactive' },
      ].sort((a, b) => a.id.localeCompare(b.id)),
    )
    const labels = await labelsOf(sm, SECRET)
    expect(labels[after]).not.toContain('AWSPREVIOUS')
    expect((await store().rollback(target, { requestId: 'rr-undo' })).id).toBe(v0)
    expect(await labelsOf(sm, SECRET)).toEqual(labels)
    // The rolled-back key goes when its version is retired.
    await store().retire(target, { requestId: 'rr-undo', versionId: after })
    expect(await keysOf(iam, USER)).toEqual([{ id: k0.id, status: 'Active' }])
  })

  it('discards a pending key: it is deleted and the old key stays current and active', async () => {
    const { k0, v0 } = await inUse()
    const s = store()
    const v = await s.prepare(target, { requestId: RR })
    await s.discard(target, { requestId: RR, versionId: v.id })
    expect(await keysOf(iam, USER)).toEqual([{ id: k0.id, status: 'Active' }])
    expect(await holder(sm, SECRET, 'AWSCURRENT')).toBe(v0)
    expect((await labelsOf(sm, SECRET))[v.id]).toEqual([])
  })

  it('names a missing IAM user as an external error with a next step', async () => {
    await createSecret(sm, SECRET, '{}')
    const err = await caught(() => store().prepare(target, { requestId: RR }))
    expect(err).toMatchObject({ code: 'AWS_IAM_USER_NOT_FOUND', exitCode: 3 })
    expect(err.next).toMatch(/target\.user/)
  })

  it('never lets a secret access key into a message, a result or a description', async () => {
    const { v0 } = await inUse()
    const texts: string[] = []
    const keep = async (fn: () => Promise<unknown>) => {
      try {
        texts.push(JSON.stringify(await fn()) ?? '')
      } catch (err) {
        texts.push(errorText(err))
      }
    }
    const s = store()
    await keep(() => s.revoke(target, { requestId: RR }))
    await keep(() => s.prepare(target, { requestId: RR }))
    await keep(() => s.prepare(target, { requestId: 'rr-other' }))
    await keep(() => s.verify(target, { requestId: RR, versionId: versionIdFor(RR) }))
    await keep(async () => String(await s.read(target, versionIdFor(RR))))
    await keep(() =>
      s.promote(target, { requestId: RR, versionId: versionIdFor(RR), expectedCurrent: 'wrong' }),
    )
    await keep(() => s.promote(target, { requestId: RR, versionId: versionIdFor(RR), expectedCurrent: v0 }))
    await keep(() => s.describe(target))
    await keep(() => s.rollback(target, { requestId: 'rr-undo' }))
    await keep(() => s.retire(target, { requestId: RR, versionId: versionIdFor(RR) }))
    await keep(() => s.retire(target, { requestId: RR, versionId: v0 }))
    await keyIn('AWSCURRENT')
    expect(secrets.length).toBe(2)
    expect(texts.some((t) => t.includes('FOREIGN_PENDING'))).toBe(true)
    expectNoCanary(texts, secrets)
  })
})
