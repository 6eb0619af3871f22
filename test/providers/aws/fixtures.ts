/**
 * Arranging and inspecting AWS state for the provider tests, with the real SDK against moto:
 * secrets in a given label state, raw label reads, IAM users. Plus the canary scan.
 */
import { randomBytes } from 'node:crypto'
import {
  CreateSecretCommand,
  GetSecretValueCommand,
  ListSecretVersionIdsCommand,
  PutSecretValueCommand,
  SecretsManagerClient,
  UpdateSecretVersionStageCommand,
} from '@aws-sdk/client-secrets-manager'
import {
  CreateAccessKeyCommand,
  CreateUserCommand,
  IAMClient,
  ListAccessKeysCommand,
} from '@aws-sdk/client-iam'
import { expect } from 'vitest'
import type { MotoServer } from '../../harness/moto.js'

export const canary = () => `CANARY-${randomBytes(12).toString('hex')}`

export function rawClients(moto: MotoServer) {
  const cfg = { endpoint: moto.endpoint, region: 'us-east-1' }
  return { sm: new SecretsManagerClient(cfg), iam: new IAMClient(cfg) }
}

export type Labels = Record<string, string[]>

/** Every version of a secret and its labels, as AWS (moto) holds them. */
export async function labelsOf(sm: SecretsManagerClient, secret: string): Promise<Labels> {
  const out = await sm.send(new ListSecretVersionIdsCommand({ SecretId: secret, IncludeDeprecated: true }))
  return Object.fromEntries(
    (out.Versions ?? []).map((v) => [v.VersionId!, [...(v.VersionStages ?? [])].sort()]),
  )
}

/** The version holding `label`, or undefined. */
export async function holder(sm: SecretsManagerClient, secret: string, label: string) {
  const l = await labelsOf(sm, secret)
  return Object.keys(l).find((id) => l[id]!.includes(label))
}

export async function valueAt(sm: SecretsManagerClient, secret: string, stage: string, versionId?: string) {
  const out = await sm.send(
    new GetSecretValueCommand({
      SecretId: secret,
      VersionStage: stage,
      ...(versionId ? { VersionId: versionId } : {}),
    }),
  )
  return out.SecretString
}

/** Creates a secret whose first version (AWSCURRENT) holds `value`; returns that version's id. */
export async function createSecret(
  sm: SecretsManagerClient,
  name: string,
  value?: string,
): Promise<string | undefined> {
  const out = await sm.send(
    new CreateSecretCommand({ Name: name, ...(value ? { SecretString: value } : {}) }),
  )
  return value ? out.VersionId : undefined
}

/** Adds a version with the given labels (no request label: as a person or a rotation Lambda would). */
export async function putVersion(
  sm: SecretsManagerClient,
  name: string,
  value: string,
  stages: string[],
  token?: string,
): Promise<string> {
  const out = await sm.send(
    new PutSecretValueCommand({
      SecretId: name,
      SecretString: value,
      VersionStages: stages,
      ...(token ? { ClientRequestToken: token } : {}),
    }),
  )
  return out.VersionId!
}

export async function moveLabel(
  sm: SecretsManagerClient,
  name: string,
  label: string,
  to: string | undefined,
  from: string | undefined,
) {
  await sm.send(
    new UpdateSecretVersionStageCommand({
      SecretId: name,
      VersionStage: label,
      ...(to ? { MoveToVersionId: to } : {}),
      ...(from ? { RemoveFromVersionId: from } : {}),
    }),
  )
}

export async function createUser(iam: IAMClient, name: string) {
  await iam.send(new CreateUserCommand({ UserName: name }))
}

export async function createKey(iam: IAMClient, user: string) {
  const out = await iam.send(new CreateAccessKeyCommand({ UserName: user }))
  return { id: out.AccessKey!.AccessKeyId!, secret: out.AccessKey!.SecretAccessKey! }
}

export async function keysOf(iam: IAMClient, user: string) {
  const out = await iam.send(new ListAccessKeysCommand({ UserName: user }))
  return (out.AccessKeyMetadata ?? [])
    .map((k) => ({ id: k.AccessKeyId!, status: k.Status! }))
    .sort((a, b) => a.id.localeCompare(b.id))
}

/** Everything a caller could print about an error: message, next step, code, JSON, inspect, stack. */
export function errorText(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const e = err as Error & { next?: string; code?: string; cause?: unknown }
  return [e.message, e.next ?? '', e.code ?? '', String(e), JSON.stringify(e), e.stack ?? ''].join('\n')
}

/** Fails when any of the secret values appears in any of the texts. */
export function expectNoCanary(texts: string[], values: string[]): void {
  for (const v of values) {
    expect(v.length).toBeGreaterThan(8)
    for (const t of texts) expect(t.includes(v), `a secret value leaked into: ${t.slice(0, 200)}`).toBe(false)
  }
}

/** Runs `fn` and returns the error it threw, failing when it did not throw. */
export async function caught(
  fn: () => Promise<unknown>,
): Promise<Error & { code?: string; next?: string; exitCode?: number }> {
  try {
    await fn()
  } catch (err) {
    return err as Error & { code?: string; next?: string; exitCode?: number }
  }
  throw new Error('expected a failure, but the call succeeded')
}

/** Runs `fn` with process.env changed (undefined deletes), then restores it: the SDK reads process.env itself. */
export async function withEnv<T>(
  changes: Record<string, string | undefined>,
  fn: () => Promise<T>,
): Promise<T> {
  const saved = Object.fromEntries(Object.keys(changes).map((k) => [k, process.env[k]]))
  const apply = (vars: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(vars)) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  }
  apply(changes)
  try {
    return await fn()
  } finally {
    apply(saved)
  }
}
