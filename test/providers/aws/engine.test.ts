// The AWS stores driven by the engine's own per-request runner (runRequest), with a crash
// thrown at each of its step boundaries and a fresh store for the re-run. The engine's SIGKILL
// tests of `execute` cover the process-level crash; this checks the two fit together.
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import type { IAMClient } from '@aws-sdk/client-iam'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createAwsSecretStore } from '../../../providers/secret-stores/aws/index.js'
import { runRequest } from '../../../src/engine/run-request.js'
import type { CrashPoint } from '../../../src/engine/test-hooks.js'
import { RecoveryRequest, type ProviderConfig } from '../../../src/spec/schema.js'
import { startMoto, useMotoEnv, type MotoServer } from '../../harness/moto.js'
import {
  canary,
  createKey,
  createSecret,
  createUser,
  keysOf,
  labelsOf,
  rawClients,
  valueAt,
} from './fixtures.js'

class Crash extends Error {}

function spec(id: string, target: object, action: 'rotate' | 'revoke', generator: object) {
  return RecoveryRequest.parse({
    apiVersion: 'nhi-recover/v1',
    kind: 'RecoveryRequest',
    id,
    requester: { name: 'carol', kind: 'human' },
    reason: 'test',
    ticket: 'T-1',
    created: '2026-11-20T09:00:00Z',
    expires: '2036-11-20T09:00:00Z',
    identity: { name: 'svc-reports', type: 'service-account', owner: 'team-data', risk: 'low' },
    target,
    action,
    rotation: { generator, retainPrevious: action === 'revoke' ? '0s' : '24h' },
  })
}

describe('AWS stores under the engine runner (real moto server)', () => {
  let moto: MotoServer
  let sm: SecretsManagerClient
  let iam: IAMClient
  const providers = (): Record<string, ProviderConfig> => ({
    'aws-sm': { kind: 'aws-secrets-manager', region: 'us-east-1', endpoint: moto.endpoint },
    'aws-iam': { kind: 'aws-iam', region: 'us-east-1', endpoint: moto.endpoint },
  })

  /** One run of the request that dies at `point` (if given), then one clean run with fresh stores. */
  async function crashThenRerun(x: RecoveryRequest, provider: string, point?: CrashPoint) {
    const exec = {
      spec: x,
      path: `recovery-specs/${x.id}.yaml`,
      sha256: '0'.repeat(64),
      blob: '0'.repeat(40),
    }
    const deps = (crashAt?: CrashPoint) => ({
      store: createAwsSecretStore(provider, providers(), {
        propagation: { timeoutMs: 1_000, intervalMs: 100 },
      }),
      now: () => new Date('2026-11-21T00:00:00Z'),
      crash: (p: CrashPoint) => {
        if (p === crashAt) throw new Crash(p)
      },
    })
    if (point) await expect(runRequest(exec, deps(point))).rejects.toBeInstanceOf(Crash)
    return runRequest(exec, deps())
  }

  beforeAll(async () => {
    useMotoEnv()
    moto = await startMoto()
    ;({ sm, iam } = rawClients(moto))
  })
  afterAll(async () => moto?.stop())
  beforeEach(async () => moto.reset())

  const points: (CrashPoint | undefined)[] = [undefined, 'after-prepare', 'after-verify', 'after-promote']

  it.each(points)(
    'secrets-manager: a run that crashed at %s is finished by the next, once',
    async (point) => {
      const old = await createSecret(sm, 'prod/reporting/sa', canary())
      const x = spec(
        'rr-reporting-sa',
        { provider: 'aws-sm', mechanism: 'secrets-manager', secret: 'prod/reporting/sa' },
        'rotate',
        {
          kind: 'random',
          length: 32,
        },
      )
      const out = await crashThenRerun(x, 'aws-sm', point)
      expect(out).toMatchObject({
        outcome: 'succeeded',
        versionBefore: old,
        resumed: point !== undefined,
      })
      const labels = await labelsOf(sm, 'prod/reporting/sa')
      expect(Object.keys(labels)).toHaveLength(2)
      expect(labels[out.versionAfter!]).toEqual(['AWSCURRENT', 'nhi-recover-request:rr-reporting-sa'])
      expect(labels[old!]).toEqual(['AWSPREVIOUS'])
      expect(out.retireAfter).toBe('2026-11-22T00:00:00.000Z')
    },
  )

  it.each(points)(
    'iam-access-key revoke: a run that crashed at %s ends with one new key and the old one deleted',
    async (point) => {
      await createUser(iam, 'ci-deployer')
      const k0 = await createKey(iam, 'ci-deployer')
      await createSecret(
        sm,
        'prod/ci/deployer-key',
        JSON.stringify({ AccessKeyId: k0.id, SecretAccessKey: k0.secret }),
      )
      const x = spec(
        'rr-deployer-leak',
        {
          provider: 'aws-iam',
          mechanism: 'iam-access-key',
          user: 'ci-deployer',
          secret: 'prod/ci/deployer-key',
          secretProvider: 'aws-sm',
        },
        'revoke',
        { kind: 'provider' },
      )
      const out = await crashThenRerun(x, 'aws-iam', point)
      expect(out.outcome).toBe('succeeded')
      const current = JSON.parse((await valueAt(sm, 'prod/ci/deployer-key', 'AWSCURRENT'))!) as {
        AccessKeyId: string
      }
      // revoke retires at once: the old key is gone, the new one is the user's only key.
      expect(await keysOf(iam, 'ci-deployer')).toEqual([{ id: current.AccessKeyId, status: 'Active' }])
      expect(current.AccessKeyId).not.toBe(k0.id)
    },
  )
})
