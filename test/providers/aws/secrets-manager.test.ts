import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { SecretsManagerStore } from '../../../providers/secret-stores/aws/secrets-manager.js'
import { versionIdFor } from '../../../providers/secret-stores/aws/staged-secret.js'
import { stages, type SecretStore } from '../../../src/engine/secret-store.js'
import { Secret } from '../../../src/secret.js'
import type { Target } from '../../../src/spec/schema.js'
import { startMoto, useMotoEnv, type MotoServer } from '../../harness/moto.js'
import {
  canary,
  caught,
  createSecret,
  errorText,
  expectNoCanary,
  holder,
  labelsOf,
  moveLabel,
  putVersion,
  rawClients,
  valueAt,
} from './fixtures.js'

const NAME = 'app/db-password'
const target: Target = { provider: 'aws', mechanism: 'secrets-manager', secret: NAME }
const RR = 'rr-rotate-db'

describe('aws secrets-manager provider (real moto server)', () => {
  let moto: MotoServer
  let sm: SecretsManagerClient
  const store = () =>
    new SecretsManagerStore({
      name: 'aws',
      config: { kind: 'aws-secrets-manager', region: 'us-east-1', endpoint: moto.endpoint },
    })

  beforeAll(async () => {
    useMotoEnv()
    moto = await startMoto()
    sm = rawClients(moto).sm
  })
  afterAll(async () => moto?.stop())
  beforeEach(async () => moto.reset())

  /** The engine's sequence for one request: decide from describe, then prepare, verify, promote. */
  async function rotate(s: SecretStore, requestId: string, value: string) {
    const st = stages(await s.describe(target))
    const before = st.current?.requestId === requestId ? st.previous?.id : st.current?.id
    const v = await s.prepare(target, { requestId, value: new Secret(value) })
    await s.verify(target, { requestId, versionId: v.id })
    await s.promote(target, { requestId, versionId: v.id, expectedCurrent: before })
    return { before, after: v.id }
  }

  it("runs AWS's four-step rotation: the old value stays AWSCURRENT until promote, then becomes AWSPREVIOUS", async () => {
    const [oldValue, newValue] = [canary(), canary()]
    const first = await createSecret(sm, NAME, oldValue)
    const s = store()

    const pending = await s.prepare(target, { requestId: RR, value: new Secret(newValue) })
    expect(pending).toMatchObject({ id: versionIdFor(RR), stages: ['pending'], requestId: RR })
    expect(await valueAt(sm, NAME, 'AWSCURRENT')).toBe(oldValue)
    expect(await valueAt(sm, NAME, 'AWSPENDING')).toBe(newValue)

    await s.verify(target, { requestId: RR, versionId: pending.id })
    await s.promote(target, { requestId: RR, versionId: pending.id, expectedCurrent: first })

    expect(await labelsOf(sm, NAME)).toEqual({
      [first!]: ['AWSPREVIOUS'],
      [pending.id]: ['AWSCURRENT', `nhi-recover-request:${RR}`],
    })
    expect(await valueAt(sm, NAME, 'AWSCURRENT')).toBe(newValue)
    expect((await s.read(target, pending.id)).reveal()).toBe(newValue)
    const st = stages(await s.describe(target))
    expect(st.current).toMatchObject({ id: pending.id, requestId: RR })
    expect(st.previous?.id).toBe(first)
    expect(st.pending).toBeUndefined()
  })

  it('names VersionStage on every read it makes', async () => {
    const first = await createSecret(sm, NAME, canary())
    const s = store()
    await moto.startRecording()
    const v = await s.prepare(target, { requestId: RR, value: new Secret(canary()) })
    await s.verify(target, { requestId: RR, versionId: v.id })
    await s.read(target, v.id)
    await s.promote(target, { requestId: RR, versionId: v.id, expectedCurrent: first })
    await s.read(target, first!)
    const reqs = await moto.stopRecording()
    const reads = reqs.filter((r) => r.operation === 'secretsmanager.GetSecretValue')
    expect(reads.length).toBeGreaterThanOrEqual(3)
    for (const r of reads) expect(JSON.parse(r.body)).toHaveProperty('VersionStage')
    const puts = reqs.filter((r) => r.operation === 'secretsmanager.PutSecretValue')
    expect(puts.map((r) => JSON.parse(r.body).ClientRequestToken)).toEqual([versionIdFor(RR)])
  })

  it('a repeated prepare returns the same version and never creates a second one', async () => {
    await createSecret(sm, NAME, canary())
    const a = await store().prepare(target, { requestId: RR, value: new Secret(canary()) })
    const b = await store().prepare(target, { requestId: RR, value: new Secret(canary()) })
    expect(b.id).toBe(a.id)
    expect(Object.keys(await labelsOf(sm, NAME))).toHaveLength(2)
  })

  // Every label state a crash or another actor can leave behind, and what a fresh run of the
  // same request must do from it.
  type Arranged = { old?: string; prev?: string; foreignId?: string }
  const states: {
    name: string
    arrange: () => Promise<Arranged>
    outcome: 'rotated' | 'FOREIGN_PENDING' | 'VERSION_DISCARDED'
  }[] = [
    {
      name: 'no pending, no previous',
      arrange: async () => ({ old: await createSecret(sm, NAME, canary()) }),
      outcome: 'rotated',
    },
    {
      name: 'no pending, previous present',
      arrange: async () => {
        const prev = await createSecret(sm, NAME, canary())
        const old = await putVersion(sm, NAME, canary(), ['AWSCURRENT'])
        return { old, prev }
      },
      outcome: 'rotated',
    },
    {
      name: 'pending ours (crash after prepare or verify)',
      arrange: async () => {
        const old = await createSecret(sm, NAME, canary())
        await store().prepare(target, { requestId: RR, value: new Secret(canary()) })
        return { old }
      },
      outcome: 'rotated',
    },
    {
      name: 'pending ours already promoted: AWSCURRENT and AWSPENDING both on it (crash inside promote)',
      arrange: async () => {
        const old = await createSecret(sm, NAME, canary())
        const v = await store().prepare(target, { requestId: RR, value: new Secret(canary()) })
        await moveLabel(sm, NAME, 'AWSCURRENT', v.id, old)
        return { old }
      },
      outcome: 'rotated',
    },
    {
      name: 'ours current and clean, previous present (crash after promote)',
      arrange: async () => {
        const prev = await createSecret(sm, NAME, canary())
        const old = await putVersion(sm, NAME, canary(), ['AWSCURRENT'])
        await rotate(store(), RR, canary())
        return { old, prev }
      },
      outcome: 'rotated',
    },
    {
      name: 'AWSPENDING left on the current version by a finished AWS rotation',
      arrange: async () => {
        const old = await createSecret(sm, NAME, canary())
        await moveLabel(sm, NAME, 'AWSPENDING', old, undefined)
        return { old }
      },
      outcome: 'rotated',
    },
    {
      name: 'empty secret: no version at all',
      arrange: async () => {
        await createSecret(sm, NAME)
        return {}
      },
      outcome: 'rotated',
    },
    {
      name: 'pending foreign: another nhi-recover request',
      arrange: async () => {
        const old = await createSecret(sm, NAME, canary())
        const f = await store().prepare(target, { requestId: 'rr-someone-else', value: new Secret(canary()) })
        return { old, foreignId: f.id }
      },
      outcome: 'FOREIGN_PENDING',
    },
    {
      name: 'pending foreign: a rotation Lambda or a person',
      arrange: async () => {
        const old = await createSecret(sm, NAME, canary())
        const foreignId = await putVersion(sm, NAME, canary(), ['AWSPENDING'])
        return { old, foreignId }
      },
      outcome: 'FOREIGN_PENDING',
    },
    {
      name: 'ours discarded after a failed verification',
      arrange: async () => {
        const old = await createSecret(sm, NAME, canary())
        const s = store()
        const v = await s.prepare(target, { requestId: RR, value: new Secret(canary()) })
        await s.discard(target, { requestId: RR, versionId: v.id })
        return { old }
      },
      outcome: 'VERSION_DISCARDED',
    },
  ]

  it.each(states)('resumes correctly from label state: $name', async ({ arrange, outcome }) => {
    const { old, prev, foreignId } = await arrange()
    const before = await labelsOf(sm, NAME)
    const value = canary()
    if (outcome !== 'rotated') {
      const err = await caught(() => rotate(store(), RR, value))
      expect(err.code).toBe(outcome)
      expect(await labelsOf(sm, NAME)).toEqual(before) // refused: nothing changed
      if (foreignId) expect(before[foreignId]).toContain('AWSPENDING')
      return
    }
    await rotate(store(), RR, value)
    const after = await labelsOf(sm, NAME)
    const mine = versionIdFor(RR)
    // Exactly one version of this request, and it is the only current one.
    expect(Object.keys(after).filter((id) => id === mine)).toHaveLength(1)
    expect(Object.entries(after).filter(([, l]) => l.includes('AWSCURRENT'))).toEqual([
      [mine, ['AWSCURRENT', `nhi-recover-request:${RR}`]],
    ])
    expect(Object.values(after).some((l) => l.includes('AWSPENDING'))).toBe(false)
    if (old) expect(after[old]).toContain('AWSPREVIOUS')
    if (prev) expect(after[prev]).not.toContain('AWSPREVIOUS')
    expect(Object.keys(after).length).toBe(Object.keys(before).length + (before[mine] ? 0 : 1))
  })

  const steps = ['prepare', 'verify', 'promote', 'retire'] as const
  it.each([0, 1, 2, 3, 4])(
    'a fresh run after a crash that followed %i completed steps finishes the same single rotation',
    async (done) => {
      const oldValue = canary()
      const old = await createSecret(sm, NAME, oldValue)
      const values = [canary(), canary()]
      // The first executor gets `done` steps in, then dies.
      const a = store()
      let staged: string | undefined
      for (const step of steps.slice(0, done)) {
        if (step === 'prepare')
          staged = (await a.prepare(target, { requestId: RR, value: new Secret(values[0]!) })).id
        if (step === 'verify') await a.verify(target, { requestId: RR, versionId: staged! })
        if (step === 'promote')
          await a.promote(target, { requestId: RR, versionId: staged!, expectedCurrent: old })
        if (step === 'retire') await a.retire(target, { requestId: RR, versionId: old! })
      }
      // A new executor runs the whole request again from the start.
      const b = store()
      const { after } = await rotate(b, RR, values[1]!)
      if (done < 4) await b.retire(target, { requestId: RR, versionId: old! })

      const labels = await labelsOf(sm, NAME)
      expect(after).toBe(versionIdFor(RR))
      expect(Object.keys(labels).sort()).toEqual([old!, after].sort())
      expect(labels[after]).toEqual(['AWSCURRENT', `nhi-recover-request:${RR}`])
      expect(labels[old!]).toEqual([]) // retired: AWS deprecates it
      // The value staged first is the one that became current: never a second rotation.
      expect(await valueAt(sm, NAME, 'AWSCURRENT')).toBe(done >= 1 ? values[0] : values[1])
    },
  )

  it('two executors running the same request at once make one version and one rotation', async () => {
    const old = await createSecret(sm, NAME, canary())
    const results = await Promise.allSettled([rotate(store(), RR, canary()), rotate(store(), RR, canary())])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled'])
    const labels = await labelsOf(sm, NAME)
    expect(Object.keys(labels).sort()).toEqual([old!, versionIdFor(RR)].sort())
    expect(labels[versionIdFor(RR)]).toEqual(['AWSCURRENT', `nhi-recover-request:${RR}`])
    expect(labels[old!]).toEqual(['AWSPREVIOUS'])
  })

  it('of several different requests racing on one secret, the losers are refused and one version is current', async () => {
    await createSecret(sm, NAME, canary())
    const ids = ['rr-race-a', 'rr-race-b', 'rr-race-c', 'rr-race-d']
    const results = await Promise.allSettled(ids.map((id) => rotate(store(), id, canary())))
    const won = ids.filter((_, i) => results[i]!.status === 'fulfilled')
    const lost = results.flatMap((r) =>
      r.status === 'rejected' ? [(r.reason as { code?: string }).code] : [],
    )
    expect(won.length).toBeGreaterThanOrEqual(1)
    for (const code of lost)
      expect(['FOREIGN_PENDING', 'VERSION_NOT_PENDING', 'CURRENT_CHANGED']).toContain(code)
    const labels = await labelsOf(sm, NAME)
    const current = Object.keys(labels).filter((id) => labels[id]!.includes('AWSCURRENT'))
    expect(current).toHaveLength(1)
    expect(won.map(versionIdFor)).toContain(current[0])
  })

  it('refuses a foreign AWSPENDING with a clear message and leaves it exactly as it was', async () => {
    await createSecret(sm, NAME, canary())
    const theirs = canary()
    const foreign = await putVersion(sm, NAME, theirs, ['AWSPENDING'])
    const err = await caught(() => store().prepare(target, { requestId: RR, value: new Secret(canary()) }))
    expect(err).toMatchObject({ code: 'FOREIGN_PENDING', exitCode: 1 })
    expect(err.message).toContain(`already has a pending version (${foreign})`)
    expect(err.message).toContain('refusing to overwrite it')
    expect(err.next).toMatch(/AWSPENDING/)
    expect(await valueAt(sm, NAME, 'AWSPENDING', foreign)).toBe(theirs)
  })

  it('refuses to promote when AWSCURRENT moved underneath (compare-and-swap on RemoveFromVersionId)', async () => {
    const first = await createSecret(sm, NAME, canary())
    const v = await store().prepare(target, { requestId: RR, value: new Secret(canary()) })
    const sneaky = await putVersion(sm, NAME, canary(), ['AWSCURRENT'])
    const err = await caught(() =>
      store().promote(target, { requestId: RR, versionId: v.id, expectedCurrent: first }),
    )
    expect(err.code).toBe('CURRENT_CHANGED')
    expect(await holder(sm, NAME, 'AWSCURRENT')).toBe(sneaky)
  })

  it('refuses to promote a version whose AWSPENDING label another rotation took', async () => {
    const first = await createSecret(sm, NAME, canary())
    const s = store()
    const v = await s.prepare(target, { requestId: RR, value: new Secret(canary()) })
    const other = await putVersion(sm, NAME, canary(), ['AWSPENDING'])
    await expect(s.verify(target, { requestId: RR, versionId: v.id })).rejects.toMatchObject({
      code: 'VERSION_NOT_PENDING',
    })
    await expect(
      s.promote(target, { requestId: RR, versionId: v.id, expectedCurrent: first }),
    ).rejects.toMatchObject({
      code: 'VERSION_NOT_PENDING',
    })
    expect(await holder(sm, NAME, 'AWSCURRENT')).toBe(first)
    expect(await holder(sm, NAME, 'AWSPENDING')).toBe(other)
  })

  it('rolls back: AWSCURRENT returns to AWSPREVIOUS, the rolled-back version loses its stages, a repeat changes nothing', async () => {
    const oldValue = canary()
    const first = await createSecret(sm, NAME, oldValue)
    const { after } = await rotate(store(), RR, canary())
    const back = await store().rollback(target, { requestId: 'rr-undo' })
    expect(back).toMatchObject({ id: first, stages: ['current'] })
    expect(await valueAt(sm, NAME, 'AWSCURRENT')).toBe(oldValue)
    const labels = await labelsOf(sm, NAME)
    expect(labels[after]).toEqual(['nhi-recover-request:' + RR, 'nhi-recover-rolled-back-by:rr-undo'].sort())
    expect(stages(await store().describe(target))).toMatchObject({ current: { id: first } })
    expect(stages(await store().describe(target)).previous).toBeUndefined()

    const again = await store().rollback(target, { requestId: 'rr-undo' })
    expect(again.id).toBe(first)
    expect(await labelsOf(sm, NAME)).toEqual(labels)
    // A different rollback request finds nothing left to roll back to.
    await expect(store().rollback(target, { requestId: 'rr-undo-2' })).rejects.toMatchObject({
      code: 'NO_PREVIOUS_VERSION',
    })
  })

  it('finishes a rollback that died between its label moves instead of flipping back', async () => {
    const first = await createSecret(sm, NAME, canary())
    const { after } = await rotate(store(), RR, canary())
    // The state a crash right after the AWSCURRENT move leaves: AWS put AWSPREVIOUS on the demoted version.
    await moveLabel(sm, NAME, 'nhi-recover-rolled-back-by:rr-undo', after, undefined)
    await moveLabel(sm, NAME, 'AWSCURRENT', first, after)
    expect((await labelsOf(sm, NAME))[after]).toContain('AWSPREVIOUS')

    const back = await store().rollback(target, { requestId: 'rr-undo' })
    expect(back.id).toBe(first)
    expect(await holder(sm, NAME, 'AWSCURRENT')).toBe(first)
    expect(await holder(sm, NAME, 'AWSPREVIOUS')).toBeUndefined()
  })

  it('retires only what is not current: the old version loses its labels and can no longer be read', async () => {
    const first = await createSecret(sm, NAME, canary())
    const { after } = await rotate(store(), RR, canary())
    await expect(store().retire(target, { requestId: RR, versionId: after })).rejects.toMatchObject({
      code: 'RETIRE_CURRENT',
    })
    await store().retire(target, { requestId: RR, versionId: first! })
    await store().retire(target, { requestId: RR, versionId: first! })
    expect((await labelsOf(sm, NAME))[first!]).toEqual([])
    const info = (await store().describe(target)).versions.find((v) => v.id === first)
    expect(info).toMatchObject({ stages: [], retired: true })
    await expect(store().read(target, first!)).rejects.toMatchObject({ code: 'VERSION_NOT_FOUND' })
  })

  it('discards a pending version: the old one stays current and the request cannot stage again', async () => {
    const first = await createSecret(sm, NAME, canary())
    const s = store()
    const v = await s.prepare(target, { requestId: RR, value: new Secret(canary()) })
    await s.discard(target, { requestId: RR, versionId: v.id })
    await s.discard(target, { requestId: RR, versionId: v.id })
    expect(await holder(sm, NAME, 'AWSCURRENT')).toBe(first)
    expect((await labelsOf(sm, NAME))[v.id]).toEqual([])
    await expect(s.prepare(target, { requestId: RR, value: new Secret(canary()) })).rejects.toMatchObject({
      code: 'VERSION_DISCARDED',
    })
  })

  it('says how to create a missing secret, as an external error (exit 3)', async () => {
    const err = await caught(() => store().prepare(target, { requestId: RR, value: new Secret(canary()) }))
    expect(err).toMatchObject({ code: 'AWS_SECRET_NOT_FOUND', exitCode: 3 })
    expect(err.next).toContain(`aws secretsmanager create-secret --name ${NAME}`)
    expect(await store().describe(target)).toEqual({ exists: false, versions: [] })
  })

  it('reports an unreachable endpoint as an external error naming the call', async () => {
    const down = new SecretsManagerStore({
      name: 'aws',
      config: { kind: 'aws-secrets-manager', region: 'us-east-1', endpoint: 'http://127.0.0.1:9' },
      env: { ...process.env, AWS_MAX_ATTEMPTS: '1' },
    })
    const err = await caught(() => down.describe(target))
    expect(err).toMatchObject({ code: 'AWS_UNREACHABLE', exitCode: 3 })
    expect(err.message).toContain('secretsmanager:ListSecretVersionIds')
    expect(err.next).toMatch(/endpoint/)
  })

  it('refuses a target of another mechanism', async () => {
    const local: Target = { provider: 'aws', mechanism: 'local', path: 'x/y' }
    await expect(store().describe(local)).rejects.toMatchObject({ code: 'MECHANISM_MISMATCH', exitCode: 2 })
  })

  it('never lets a secret value into a message, a result or a description', async () => {
    const values = [canary(), canary(), canary(), canary()]
    const texts: string[] = []
    const keep = async (fn: () => Promise<unknown>) => {
      try {
        texts.push(JSON.stringify(await fn()) ?? '')
      } catch (err) {
        texts.push(errorText(err))
      }
    }
    const first = await createSecret(sm, NAME, values[0])
    const s = store()
    await keep(() => s.prepare(target, { requestId: RR, value: new Secret(values[1]!) }))
    await keep(() => s.prepare(target, { requestId: 'rr-other', value: new Secret(values[2]!) }))
    await keep(() => s.describe(target))
    await keep(async () => String(await s.read(target, versionIdFor(RR))))
    await keep(() =>
      s.promote(target, { requestId: RR, versionId: versionIdFor(RR), expectedCurrent: 'wrong' }),
    )
    await keep(() =>
      s.promote(target, { requestId: RR, versionId: versionIdFor(RR), expectedCurrent: first }),
    )
    await keep(() => s.retire(target, { requestId: RR, versionId: versionIdFor(RR) }))
    await keep(() => s.rollback(target, { requestId: 'rr-undo' }))
    await keep(() => s.rollback(target, { requestId: 'rr-undo-2' }))
    await keep(() => s.read(target, 'no-such-version-00000000000000000000'))
    // A value AWS refuses (too long) must not come back in the refusal either.
    await keep(() => s.prepare(target, { requestId: 'rr-big', value: new Secret(values[3]!.repeat(5000)) }))
    expect(texts.length).toBe(11)
    expect(texts.some((t) => t.includes('FOREIGN_PENDING'))).toBe(true)
    expectNoCanary(texts, values)
  })
})
