import { createServer, type Server } from 'node:http'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  CreateAccessKeyCommand,
  CreateRoleCommand,
  CreateUserCommand,
  PutUserPolicyCommand,
  type IAMClient,
} from '@aws-sdk/client-iam'
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { clientSettings } from '../../../providers/secret-stores/aws/clients.js'
import { SecretsManagerStore } from '../../../providers/secret-stores/aws/secrets-manager.js'
import { Secret } from '../../../src/secret.js'
import type { Target } from '../../../src/spec/schema.js'
import { MOTO_ACCOUNT, startMoto, useMotoEnv, type MotoServer } from '../../harness/moto.js'
import { canary, caught, createSecret, errorText, expectNoCanary, rawClients, withEnv } from './fixtures.js'

const NAME = 'app/token'
const target: Target = { provider: 'aws', mechanism: 'secrets-manager', secret: NAME }
const ROLE_ARN = `arn:aws:iam::${MOTO_ACCOUNT}:role/nhi-recover-executor`
const NO_CREDS = {
  AWS_ACCESS_KEY_ID: undefined,
  AWS_SECRET_ACCESS_KEY: undefined,
  AWS_SESSION_TOKEN: undefined,
}

/** The access key ids that signed the recorded requests of one service. */
function signers(reqs: { headers: Record<string, string>; operation: string }[], prefix: string) {
  return reqs
    .filter((r) => r.operation.startsWith(prefix))
    .map((r) => {
      const auth = Object.entries(r.headers).find(([k]) => k.toLowerCase() === 'authorization')?.[1] ?? ''
      return /Credential=([^/]+)\//.exec(auth)?.[1]
    })
}

describe('AWS settings and credentials', () => {
  it('takes region, endpoint and profile from the provider config and leaves the rest to the SDK', () => {
    const s = clientSettings(
      {
        kind: 'aws-secrets-manager',
        region: 'eu-west-1',
        endpoint: 'https://sm.example.test',
        profile: 'ops',
      },
      {},
    )
    expect(s).toMatchObject({
      region: 'eu-west-1',
      endpoint: 'https://sm.example.test',
      profile: 'ops',
      maxAttempts: 4,
      retryMode: 'standard',
    })
    expect(s).not.toHaveProperty('credentials')
    const bare = clientSettings({ kind: 'aws-iam' }, { AWS_MAX_ATTEMPTS: '7' })
    expect(bare).not.toHaveProperty('region')
    expect(bare).not.toHaveProperty('endpoint')
    expect(bare).not.toHaveProperty('maxAttempts') // the SDK reads AWS_MAX_ATTEMPTS itself
  })

  it('uses GitHub OIDC only in Actions with a role and no other credentials', () => {
    const actions = {
      AWS_ROLE_ARN: ROLE_ARN,
      ACTIONS_ID_TOKEN_REQUEST_URL: 'http://127.0.0.1:1/token',
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'runtime-token',
    }
    const cfg = { kind: 'aws-secrets-manager' as const }
    expect(clientSettings(cfg, actions)).toHaveProperty('credentials')
    expect(clientSettings(cfg, { ...actions, AWS_ACCESS_KEY_ID: 'AKIA' })).not.toHaveProperty('credentials')
    expect(clientSettings(cfg, { ...actions, AWS_WEB_IDENTITY_TOKEN_FILE: '/t' })).not.toHaveProperty(
      'credentials',
    )
    expect(clientSettings({ ...cfg, profile: 'ops' }, actions)).not.toHaveProperty('credentials')
  })
})

describe('AWS auth against a real moto server', () => {
  let moto: MotoServer
  let sm: SecretsManagerClient
  let iam: IAMClient
  let dir: string
  const store = (config: Partial<{ endpoint: string; region: string; profile: string }> = {}) =>
    new SecretsManagerStore({
      name: 'aws',
      config: { kind: 'aws-secrets-manager', region: 'us-east-1', endpoint: moto.endpoint, ...config },
    })

  beforeAll(async () => {
    useMotoEnv()
    moto = await startMoto()
    ;({ sm, iam } = rawClients(moto))
  })
  afterAll(async () => moto?.stop())
  beforeEach(async () => {
    await moto.reset()
    dir = mkdtempSync(join(tmpdir(), 'nhi-aws-auth-'))
  })
  afterEach(async () => {
    await moto.enforceAuth(Infinity)
    rmSync(dir, { recursive: true, force: true })
  })

  /** An IAM user with an inline policy allowing `actions`, and its key. */
  async function userWith(name: string, actions: string[]) {
    await iam.send(new CreateUserCommand({ UserName: name }))
    const doc = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: actions, Resource: '*' }] }
    await iam.send(
      new PutUserPolicyCommand({ UserName: name, PolicyName: 'p', PolicyDocument: JSON.stringify(doc) }),
    )
    const k = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey!
    return { id: k.AccessKeyId!, secret: k.SecretAccessKey! }
  }

  it('uses AWS_ENDPOINT_URL when the provider config names no endpoint', async () => {
    await createSecret(sm, NAME, canary())
    const s = new SecretsManagerStore({
      name: 'aws',
      config: { kind: 'aws-secrets-manager', region: 'us-east-1' },
    })
    const state = await withEnv({ AWS_ENDPOINT_URL: moto.endpoint }, () => s.describe(target))
    expect(state.exists).toBe(true)
    expect(state.versions).toHaveLength(1)
  })

  it("uses the named profile's credentials from the shared AWS files", async () => {
    const admin = await userWith('profile-user', ['secretsmanager:*'])
    await createSecret(sm, NAME, canary())
    writeFileSync(join(dir, 'config'), '[profile nhi-test]\nregion = us-east-1\n')
    writeFileSync(
      join(dir, 'credentials'),
      `[nhi-test]\naws_access_key_id = ${admin.id}\naws_secret_access_key = ${admin.secret}\n`,
    )
    await moto.enforceAuth(0)
    const files = {
      AWS_CONFIG_FILE: join(dir, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'),
    }
    await moto.startRecording()
    const state = await withEnv({ ...files, ...NO_CREDS, AWS_REGION: undefined }, () =>
      new SecretsManagerStore({
        name: 'aws',
        config: { kind: 'aws-secrets-manager', endpoint: moto.endpoint, profile: 'nhi-test' },
      }).describe(target),
    )
    expect(state.exists).toBe(true)
    expect(signers(await moto.stopRecording(), 'secretsmanager.')).toEqual([admin.id])
    // The dummy env credentials are refused once moto checks signatures: the profile made the difference.
    const err = await caught(() => store().describe(target))
    expect(err.exitCode).toBe(3)
  })

  it('names the missing permission when AWS denies a call, and changes nothing', async () => {
    const weak = await userWith('weak-executor', ['secretsmanager:ListSecretVersionIds'])
    const current = canary()
    await createSecret(sm, NAME, current)
    await moto.enforceAuth(0)
    const value = canary()
    const err = await withEnv(
      { AWS_ACCESS_KEY_ID: weak.id, AWS_SECRET_ACCESS_KEY: weak.secret, AWS_SESSION_TOKEN: undefined },
      () => caught(() => store().prepare(target, { requestId: 'rr-denied', value: new Secret(value) })),
    )
    expect(err).toMatchObject({ code: 'AWS_ACCESS_DENIED', exitCode: 3 })
    expect(err.message).toBe(`AWS denied secretsmanager:PutSecretValue on aws:${NAME}.`)
    expect(err.next).toContain('Using AWS')
    expectNoCanary([errorText(err)], [value, current, weak.secret])
    await moto.enforceAuth(Infinity)
    expect(Object.keys((await store().describe(target)).versions)).toHaveLength(1)
  })

  describe('web identity (GitHub OIDC)', () => {
    let tokenServer: Server
    let seen: { auth?: string; audience?: string | null }[]
    const jwt = `eyJhbGciOiJSUzI1NiJ9.${Buffer.from(JSON.stringify({ sub: 'repo:o/r:ref:refs/heads/main' })).toString('base64url')}.c2ln`
    beforeAll(async () => {
      seen = []
      tokenServer = createServer((req, res) => {
        const url = new URL(req.url ?? '/', 'http://x')
        seen.push({ auth: req.headers.authorization, audience: url.searchParams.get('audience') })
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ value: jwt }))
      })
      await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r))
    })
    afterAll(() => new Promise((r) => tokenServer.close(r)))

    async function role() {
      const trust = {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Principal: {
              Federated: `arn:aws:iam::${MOTO_ACCOUNT}:oidc-provider/token.actions.githubusercontent.com`,
            },
            Action: 'sts:AssumeRoleWithWebIdentity',
          },
        ],
      }
      await iam.send(
        new CreateRoleCommand({
          RoleName: 'nhi-recover-executor',
          AssumeRolePolicyDocument: JSON.stringify(trust),
        }),
      )
    }

    it("in GitHub Actions, trades the job's OIDC token for the role's credentials", async () => {
      await role()
      await createSecret(sm, NAME, canary())
      const port = (tokenServer.address() as { port: number }).port
      await moto.startRecording()
      const state = await withEnv(
        {
          ...NO_CREDS,
          AWS_ROLE_ARN: ROLE_ARN,
          ACTIONS_ID_TOKEN_REQUEST_URL: `http://127.0.0.1:${port}/token?api-version=2.0`,
          ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'runner-request-token',
        },
        () => store().describe(target),
      )
      expect(state.exists).toBe(true)
      expect(seen.at(-1)).toEqual({ auth: 'Bearer runner-request-token', audience: 'sts.amazonaws.com' })
      const reqs = await moto.stopRecording()
      const assume = reqs.find((r) => r.body.includes('Action=AssumeRoleWithWebIdentity'))
      expect(new URLSearchParams(assume?.body).get('RoleArn')).toBe(ROLE_ARN)
      expect(new URLSearchParams(assume?.body).get('WebIdentityToken')).toBe(jwt)
      // The Secrets Manager call was signed with the role's temporary key, not the dummy one.
      const used = signers(reqs, 'secretsmanager.')
      expect(used.length).toBeGreaterThan(0)
      for (const id of used) expect(id).toMatch(/^ASIA/)
    })

    it('follows AWS_WEB_IDENTITY_TOKEN_FILE through the default credential chain', async () => {
      await role()
      await createSecret(sm, NAME, canary())
      writeFileSync(join(dir, 'token'), jwt)
      await moto.startRecording()
      const state = await withEnv(
        {
          ...NO_CREDS,
          AWS_ROLE_ARN: ROLE_ARN,
          AWS_WEB_IDENTITY_TOKEN_FILE: join(dir, 'token'),
          AWS_ENDPOINT_URL: moto.endpoint,
        },
        () => store({ endpoint: undefined }).describe(target),
      )
      expect(state.exists).toBe(true)
      const reqs = await moto.stopRecording()
      expect(reqs.some((r) => r.body.includes('Action=AssumeRoleWithWebIdentity'))).toBe(true)
      for (const id of signers(reqs, 'secretsmanager.')) expect(id).toMatch(/^ASIA/)
    })

    it('says how to fix a job without id-token permission', async () => {
      const err = await withEnv(
        {
          ...NO_CREDS,
          AWS_ROLE_ARN: ROLE_ARN,
          ACTIONS_ID_TOKEN_REQUEST_URL: 'http://127.0.0.1:9/token',
          ACTIONS_ID_TOKEN_REQUEST_TOKEN: 'runner-request-token',
        },
        () => caught(() => store().describe(target)),
      )
      expect(err).toMatchObject({ code: 'AWS_OIDC_TOKEN_UNAVAILABLE', exitCode: 3 })
      expect(err.next).toContain('id-token: write')
    })
  })

  it('says where to put credentials when there are none', async () => {
    const err = await withEnv({ ...NO_CREDS }, () => caught(() => store().describe(target)))
    expect(err).toMatchObject({ code: 'AWS_NO_CREDENTIALS', exitCode: 3 })
    expect(err.next).toMatch(/AWS_PROFILE/)
  })

  it('asks for a region when neither the config nor the environment sets one', async () => {
    const err = await withEnv({ AWS_REGION: undefined, AWS_DEFAULT_REGION: undefined }, () =>
      caught(() => store({ region: undefined }).describe(target)),
    )
    expect(err).toMatchObject({ code: 'AWS_REGION_MISSING', exitCode: 2 })
  })
})
