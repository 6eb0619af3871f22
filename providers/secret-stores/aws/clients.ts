/**
 * What every AWS adapter shares: the client settings made from a provider's config (region,
 * endpoint override, profile, the default credential chain, retries and timeouts), lazy loading
 * of the SDK packages, and the mapping of AWS failures to our typed errors. The SDK is only
 * imported inside functions, so loading this file never loads an SDK.
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import type { IAMClient } from '@aws-sdk/client-iam'
import type { STSClient } from '@aws-sdk/client-sts'
import { ExternalError, isNhiError, UserError, type NhiError } from '../../../src/errors.js'
import { scrubSecrets, Secret } from '../../../src/secret.js'
import type { ProviderConfig } from '../../../src/spec/schema.js'

export type AwsProviderConfig = Extract<ProviderConfig, { kind: 'aws-secrets-manager' | 'aws-iam' }>
export type AwsService = 'Secrets Manager' | 'IAM' | 'STS'

/** Static AWS credentials, e.g. a freshly issued access key under verification. */
export interface AwsKeyPair {
  accessKeyId: string
  secretAccessKey: Secret
}

export const loadSecretsManager = once(() => sdk(() => import('@aws-sdk/client-secrets-manager')))
export const loadIam = once(() => sdk(() => import('@aws-sdk/client-iam')))
export const loadSts = once(() => sdk(() => import('@aws-sdk/client-sts')))

/**
 * The SDK prints a multi-line NodeVersionSupportWarning on Node 20 at the first call. It is
 * advice for this project's maintainers (see package.json engines), not for someone running a
 * rotation, so it is silenced unless the user set the switch themselves.
 */
function sdk<T>(load: () => Promise<T>): Promise<T> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true'
  return load()
}

/** SDK attempts per call (1 try + 3 retries with the standard backoff) unless AWS_MAX_ATTEMPTS says otherwise. */
const DEFAULT_MAX_ATTEMPTS = 4

/**
 * The settings handed to an SDK client. Region and endpoint come from the provider config when
 * set; otherwise the SDK resolves them itself (AWS_REGION, AWS_ENDPOINT_URL,
 * AWS_ENDPOINT_URL_<SERVICE>, the profile). Credentials come from the SDK's default chain (env,
 * profile, SSO, web identity via AWS_WEB_IDENTITY_TOKEN_FILE, container and instance roles),
 * except in GitHub Actions with AWS_ROLE_ARN and no token file, where the job's OIDC token is
 * exchanged with AssumeRoleWithWebIdentity.
 */
export function clientSettings(
  cfg: AwsProviderConfig,
  env: NodeJS.ProcessEnv,
  opts: { keyPair?: AwsKeyPair; maxAttempts?: number } = {},
): Record<string, unknown> {
  const settings: Record<string, unknown> = {
    retryMode: 'standard',
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 30_000 },
  }
  if (cfg.region) settings.region = cfg.region
  if (cfg.endpoint) settings.endpoint = cfg.endpoint
  if (cfg.profile) settings.profile = cfg.profile
  if (opts.maxAttempts !== undefined) settings.maxAttempts = opts.maxAttempts
  else if (!env.AWS_MAX_ATTEMPTS) settings.maxAttempts = DEFAULT_MAX_ATTEMPTS
  if (opts.keyPair) {
    const { accessKeyId, secretAccessKey } = opts.keyPair
    settings.credentials = { accessKeyId, secretAccessKey: secretAccessKey.reveal() }
  } else if (usesGithubOidc(cfg, env)) {
    settings.credentials = githubOidcCredentials(cfg, env)
  }
  return settings
}

export async function secretsManagerClient(
  cfg: AwsProviderConfig,
  env: NodeJS.ProcessEnv,
): Promise<SecretsManagerClient> {
  const { SecretsManagerClient } = await loadSecretsManager()
  return new SecretsManagerClient(clientSettings(cfg, env))
}

export async function iamClient(cfg: AwsProviderConfig, env: NodeJS.ProcessEnv): Promise<IAMClient> {
  const { IAMClient } = await loadIam()
  return new IAMClient(clientSettings(cfg, env))
}

/** An STS client that signs with `keyPair` when given, else with the default credentials. */
export async function stsClient(
  cfg: AwsProviderConfig,
  env: NodeJS.ProcessEnv,
  keyPair?: AwsKeyPair,
): Promise<STSClient> {
  const { STSClient } = await loadSts()
  // A new key is checked once per call; the caller owns the propagation retries.
  return new STSClient(clientSettings(cfg, env, keyPair ? { keyPair, maxAttempts: 1 } : {}))
}

/** True when the job's GitHub OIDC token should be exchanged for a role's credentials. */
export function usesGithubOidc(cfg: AwsProviderConfig, env: NodeJS.ProcessEnv): boolean {
  return Boolean(
    !cfg.profile &&
    env.AWS_ROLE_ARN &&
    !env.AWS_WEB_IDENTITY_TOKEN_FILE &&
    !env.AWS_ACCESS_KEY_ID &&
    env.ACTIONS_ID_TOKEN_REQUEST_URL &&
    env.ACTIONS_ID_TOKEN_REQUEST_TOKEN,
  )
}

interface Identity {
  accessKeyId: string
  secretAccessKey: string
  sessionToken?: string
  expiration?: Date
}

/**
 * A credential provider for GitHub Actions: asks the runner for an OIDC token (audience
 * sts.amazonaws.com unless AWS_OIDC_AUDIENCE says otherwise) and trades it for the role's
 * temporary credentials. Cached until five minutes before they expire.
 */
function githubOidcCredentials(cfg: AwsProviderConfig, env: NodeJS.ProcessEnv): () => Promise<Identity> {
  let cached: Promise<Identity> | undefined
  const fetchOnce = async (): Promise<Identity> => {
    const url = new URL(env.ACTIONS_ID_TOKEN_REQUEST_URL!)
    url.searchParams.set('audience', env.AWS_OIDC_AUDIENCE || 'sts.amazonaws.com')
    let token: Secret
    try {
      const r = await fetch(url, {
        headers: {
          Authorization: `Bearer ${env.ACTIONS_ID_TOKEN_REQUEST_TOKEN}`,
          Accept: 'application/json',
        },
      })
      if (r.status !== 200) throw new Error(`HTTP ${r.status}`)
      const body = (await r.json()) as { value?: unknown }
      if (typeof body.value !== 'string' || body.value === '') throw new Error('no token in the answer')
      token = new Secret(body.value)
    } catch (err) {
      throw new ExternalError(
        'github-oidc',
        'AWS_OIDC_TOKEN_UNAVAILABLE',
        `Could not get the GitHub Actions OIDC token for AWS (${err instanceof Error ? err.message : 'unknown error'}).`,
        { next: 'Give the job "permissions: id-token: write", or set AWS credentials another way.' },
      )
    }
    const { STSClient, AssumeRoleWithWebIdentityCommand } = await loadSts()
    const sts = new STSClient({
      ...clientSettings({ ...cfg, profile: undefined }, env),
      // AssumeRoleWithWebIdentity is unsigned: never look for other credentials for it.
      credentials: { accessKeyId: 'unused', secretAccessKey: 'unused' },
    })
    try {
      const out = await sts.send(
        new AssumeRoleWithWebIdentityCommand({
          RoleArn: env.AWS_ROLE_ARN,
          RoleSessionName: env.AWS_ROLE_SESSION_NAME || 'nhi-recover',
          WebIdentityToken: token.reveal(),
          DurationSeconds: 3600,
        }),
      )
      const c = out.Credentials
      if (!c?.AccessKeyId || !c.SecretAccessKey)
        throw new Error('AssumeRoleWithWebIdentity returned no credentials')
      return {
        accessKeyId: c.AccessKeyId,
        secretAccessKey: c.SecretAccessKey,
        ...(c.SessionToken ? { sessionToken: c.SessionToken } : {}),
        ...(c.Expiration ? { expiration: c.Expiration } : {}),
      }
    } catch (err) {
      throw awsError(err, {
        service: 'STS',
        action: 'sts:AssumeRoleWithWebIdentity',
        resource: env.AWS_ROLE_ARN!,
      })
    } finally {
      token.dispose()
    }
  }
  return async () => {
    const current = cached ? await cached.catch(() => undefined) : undefined
    if (!current?.expiration || current.expiration.getTime() - Date.now() < 5 * 60_000) {
      cached = fetchOnce()
      cached.catch(() => (cached = undefined))
    }
    return cached!
  }
}

/** What a failed call was trying to do, for the message and the permission it names. */
export interface CallContext {
  service: AwsService
  /** The IAM action of the call, e.g. secretsmanager:PutSecretValue. */
  action: string
  /** What it acted on: a secret name, an IAM user, a role ARN. */
  resource: string
}

const ACCESS_DENIED = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'UnauthorizedOperation',
  'AuthorizationError',
  'UnauthorizedAccess',
])
const AUTH_FAILED = new Set([
  'ExpiredToken',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
  'IncompleteSignature',
  'InvalidAccessKeyId',
])
const THROTTLED = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'SlowDown',
])
const REFUSED = new Set([
  'InvalidRequestException',
  'InvalidParameterException',
  'ValidationError',
  'ValidationException',
  'DecryptionFailure',
  'EncryptionFailure',
  'MalformedPolicyDocument',
  'PreconditionNotMetException',
])
const NETWORK = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
])

/** The AWS error name (exception type) of an SDK failure, or '' for anything else. */
export function awsName(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { name?: unknown; Code?: unknown }
    if (typeof e.Code === 'string') return e.Code
    if (typeof e.name === 'string') return e.name
  }
  return ''
}

/**
 * Turns an SDK failure into an ExternalError (exit 3) that names what to do next. The message is
 * ours, built from the call context; AWS's own text is added only for request refusals, scrubbed
 * and shortened. Request bodies and credentials never appear.
 */
export function awsError(err: unknown, ctx: CallContext): NhiError {
  if (isNhiError(err)) return err
  const name = awsName(err)
  const code = networkCode(err)
  const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode
  const system = `aws-${ctx.service.toLowerCase().replace(/ /g, '-')}`
  const where = `${ctx.service} (${ctx.action} on ${ctx.resource})`
  const rawMessage = err instanceof Error ? err.message : ''

  if (/region is missing/i.test(rawMessage)) {
    return new UserError('AWS_REGION_MISSING', `No AWS region is set for ${ctx.service}.`, {
      next: 'Set region on the provider in nhi-recover.yaml, or set AWS_REGION.',
    })
  }
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(rawMessage)) {
    return new ExternalError(system, 'AWS_NO_CREDENTIALS', `No AWS credentials were found for ${where}.`, {
      next: 'Set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; in GitHub Actions set AWS_ROLE_ARN and give the job "permissions: id-token: write".',
      cause: err,
    })
  }
  // A 403 whose body the SDK could not read is still a refusal (moto answers JSON APIs in XML here).
  if (ACCESS_DENIED.has(name) || (status === 403 && !AUTH_FAILED.has(name))) {
    const action = deniedAction(rawMessage) ?? ctx.action
    return new ExternalError(system, 'AWS_ACCESS_DENIED', `AWS denied ${action} on ${ctx.resource}.`, {
      next: `Grant the executor's role ${action} on ${ctx.resource}; the minimal policy is in the README under "Using AWS".`,
      cause: err,
    })
  }
  if (AUTH_FAILED.has(name)) {
    return new ExternalError(
      system,
      'AWS_AUTH_FAILED',
      `AWS did not accept the credentials for ${where} (${name}).`,
      {
        next: 'Check that the AWS credentials are current and belong to this account; refresh them and run again.',
        cause: err,
      },
    )
  }
  if (THROTTLED.has(name)) {
    return new ExternalError(system, 'AWS_THROTTLED', `AWS throttled ${where} after the SDK's retries.`, {
      next: 'Run again later or with a lower --concurrency; the request resumes where it stopped.',
      cause: err,
    })
  }
  if (name === 'LimitExceededException') {
    return new ExternalError(
      system,
      'AWS_LIMIT_EXCEEDED',
      `AWS refused ${where}: a service limit is reached.`,
      {
        next: `Free what the limit counts (old access keys, old secret versions or labels) and run again.`,
        cause: err,
      },
    )
  }
  if (REFUSED.has(name)) {
    return new ExternalError(system, 'AWS_REQUEST_REFUSED', `AWS refused ${where}: ${awsText(rawMessage)}`, {
      next: 'Fix the secret or the request as the message says, then run again.',
      cause: err,
    })
  }
  if (code || name === 'TimeoutError' || name === 'RequestTimeout' || name === 'AbortError') {
    return new ExternalError(
      system,
      'AWS_UNREACHABLE',
      `Could not reach ${ctx.service} for ${ctx.action} (${code || name}).`,
      {
        next: 'Check the network, the region and any endpoint override (provider endpoint, AWS_ENDPOINT_URL), then run again.',
        cause: err,
      },
    )
  }
  return new ExternalError(
    system,
    'AWS_ERROR',
    `${where} failed: ${name || 'unknown error'}${status ? ` (HTTP ${status})` : ''}.`,
    { next: 'Check the AWS service health and the provider settings, then run again.', cause: err },
  )
}

/** The action an AWS AccessDenied message names ("not authorized to perform: kms:Decrypt"). */
function deniedAction(message: string): string | undefined {
  const m = /perform: ([a-z0-9-]+:[A-Za-z0-9*]+)/.exec(message)
  return m?.[1]
}

function networkCode(err: unknown): string | undefined {
  let e: unknown = err
  for (let depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string' && NETWORK.has(code)) return code
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

function awsText(message: string): string {
  const text = scrubSecrets(message).replace(/\s+/g, ' ').trim()
  return text.length > 300 ? `${text.slice(0, 297)}...` : text || 'no reason given'
}

function once<T>(fn: () => Promise<T>): () => Promise<T> {
  let p: Promise<T> | undefined
  return () => (p ??= fn())
}
