import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  CreateAccessKeyCommand,
  CreateUserCommand,
  PutUserPolicyCommand,
  type IAMClient,
} from '@aws-sdk/client-iam'
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAwsSecretStore } from '../../../providers/secret-stores/aws/index.js'
import type { IamAccessKeyStore } from '../../../providers/secret-stores/aws/iam-access-key.js'
import type { SecretsManagerStore } from '../../../providers/secret-stores/aws/secrets-manager.js'
import { stages, type SecretStore } from '../../../src/engine/secret-store.js'
import { Secret } from '../../../src/secret.js'
import type { ProviderConfig, Target } from '../../../src/spec/schema.js'
import { PROJECT_ROOT } from '../../helpers/cli.js'
import { startMoto, useMotoEnv, type MotoServer } from '../../harness/moto.js'
import { canary, caught, createKey, createSecret, createUser, rawClients, withEnv } from './fixtures.js'

interface Statement {
  Sid?: string
  Effect: string
  Action: string[]
  Resource: string | string[]
  Condition?: unknown
}
interface Policy {
  Version: string
  Statement: Statement[]
}

/** The minimal executor policy exactly as the README's "Using AWS" section prints it. */
function readmePolicy(): Policy {
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8')
  const section = readme.slice(readme.indexOf('## Using AWS'))
  const block = /```json\n([\s\S]*?)\n```/.exec(section)
  if (!block) throw new Error('README.md has no JSON policy under "## Using AWS"')
  return JSON.parse(block[1]!) as Policy
}

const smTarget: Target = { provider: 'aws-sm', mechanism: 'secrets-manager', secret: 'app/api-token' }
const iamTarget: Target = {
  provider: 'aws-iam',
  mechanism: 'iam-access-key',
  user: 'svc-reports',
  secret: 'svc/reports/aws-key',
  secretProvider: 'aws-sm',
}

describe('the README minimal IAM policy (moto with IAM enforcement on)', () => {
  let moto: MotoServer
  let sm: SecretsManagerClient
  let iam: IAMClient
  const policy = readmePolicy()
  const actions = policy.Statement.flatMap((s) => s.Action)

  beforeAll(async () => {
    useMotoEnv()
    moto = await startMoto()
    ;({ sm, iam } = rawClients(moto))
  })
  afterAll(async () => moto?.stop())

  /**
   * Fresh state, an executor user holding `doc` (moto matches Resource only as "*"), IAM
   * enforcement on; returns the executor's key.
   */
  async function arrange(doc: Policy) {
    await moto.enforceAuth(Infinity)
    await moto.reset()
    await createSecret(sm, 'app/api-token', canary())
    await createUser(iam, 'svc-reports')
    const k0 = await createKey(iam, 'svc-reports')
    await createSecret(
      sm,
      'svc/reports/aws-key',
      JSON.stringify({ AccessKeyId: k0.id, SecretAccessKey: k0.secret }),
    )
    await iam.send(new CreateUserCommand({ UserName: 'executor' }))
    const forMoto = { ...doc, Statement: doc.Statement.map((s) => ({ ...s, Resource: '*' })) }
    await iam.send(
      new PutUserPolicyCommand({
        UserName: 'executor',
        PolicyName: 'nhi-recover',
        PolicyDocument: JSON.stringify(forMoto),
      }),
    )
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: 'executor' }))).AccessKey!
    await moto.enforceAuth(0)
    return {
      AWS_ACCESS_KEY_ID: key.AccessKeyId!,
      AWS_SECRET_ACCESS_KEY: key.SecretAccessKey!,
      AWS_SESSION_TOKEN: undefined,
    }
  }

  /** Every provider call the engine makes, on both mechanisms. */
  async function exercise() {
    const providers: Record<string, ProviderConfig> = {
      'aws-sm': { kind: 'aws-secrets-manager', region: 'us-east-1', endpoint: moto.endpoint },
      'aws-iam': { kind: 'aws-iam', region: 'us-east-1', endpoint: moto.endpoint },
    }
    const s = createAwsSecretStore('aws-sm', providers) as SecretsManagerStore
    const k = createAwsSecretStore('aws-iam', providers, {
      propagation: { timeoutMs: 1_000, intervalMs: 100 },
    }) as IamAccessKeyStore
    const rotate = async (store: SecretStore, target: Target, requestId: string, value?: string) => {
      const before = stages(await store.describe(target)).current?.id
      const v = await store.prepare(target, { requestId, ...(value ? { value: new Secret(value) } : {}) })
      await store.verify(target, { requestId, versionId: v.id })
      await store.read(target, v.id)
      await store.promote(target, { requestId, versionId: v.id, expectedCurrent: before })
      return { before: before!, after: v.id }
    }
    const a = await rotate(s, smTarget, 'rr-sm-one', canary())
    await s.rollback(smTarget, { requestId: 'rr-sm-undo' })
    await s.retire(smTarget, { requestId: 'rr-sm-undo', versionId: a.after })
    const p = await s.prepare(smTarget, { requestId: 'rr-sm-two', value: new Secret(canary()) })
    await s.discard(smTarget, { requestId: 'rr-sm-two', versionId: p.id })

    const b = await rotate(k, iamTarget, 'rr-iam-one')
    await k.rollback(iamTarget, { requestId: 'rr-iam-undo' })
    await k.retire(iamTarget, { requestId: 'rr-iam-undo', versionId: b.after })
    await k.revoke(iamTarget, { requestId: 'rr-iam-leak' })
    const c = await rotate(k, iamTarget, 'rr-iam-leak')
    await k.retire(iamTarget, { requestId: 'rr-iam-leak', versionId: c.before })
  }

  it('is enough to run every step of both mechanisms', async () => {
    expect(actions.length).toBeGreaterThanOrEqual(10)
    const creds = await arrange(policy)
    await withEnv(creds, exercise)
  })

  it.each(actions)('is minimal: without %s the run is refused, naming that permission', async (action) => {
    const without = {
      ...policy,
      Statement: policy.Statement.map((s) => ({ ...s, Action: s.Action.filter((x) => x !== action) })).filter(
        (s) => s.Action.length > 0,
      ),
    }
    const creds = await arrange(without)
    const err = await withEnv(creds, () => caught(exercise))
    expect(err).toMatchObject({ code: 'AWS_ACCESS_DENIED', exitCode: 3 })
    expect(err.message).toContain(action)
  })
})
