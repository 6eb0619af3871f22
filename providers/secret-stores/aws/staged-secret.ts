/**
 * One Secrets Manager secret seen as staged versions: the label moves of AWS's rotation protocol
 * (AWSPENDING, AWSCURRENT, AWSPREVIOUS) plus nhi-recover's own labels, which record on AWS itself
 * which request made a version, which rollback demoted it and which revoke disabled it. Both AWS
 * mechanisms (secrets-manager and iam-access-key) store their values through this.
 *
 * Every read names its VersionStage. A request's version id is its ClientRequestToken, derived
 * from the request id, so a repeated PutSecretValue cannot create a second version.
 */
import { createHash } from 'node:crypto'
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { CheckFailedError, ExternalError } from '../../../src/errors.js'
import { Secret } from '../../../src/secret.js'
import type { Stage, VersionInfo } from '../../../src/engine/secret-store.js'
import { awsError, awsName, loadSecretsManager } from './clients.js'

export const AWSCURRENT = 'AWSCURRENT'
export const AWSPENDING = 'AWSPENDING'
export const AWSPREVIOUS = 'AWSPREVIOUS'
/** Label on the version a request created; AWS keeps labelled versions, so it lives until retire. */
export const REQUEST_LABEL = 'nhi-recover-request:'
/** Label on the version a rollback request demoted: makes a repeated rollback a no-op. */
export const ROLLBACK_LABEL = 'nhi-recover-rolled-back-by:'
/** Label on the version whose credential a revoke request disabled: never made current again. */
export const REVOKED_LABEL = 'nhi-recover-revoked-by:'

/** The version id (= ClientRequestToken) of a request's version: a UUID derived from the request id. */
export function versionIdFor(requestId: string): string {
  const h = createHash('sha256').update(`nhi-recover/aws-version/v1\0${requestId}`).digest('hex')
  const variant = ((parseInt(h[16]!, 16) & 0x3) | 0x8).toString(16)
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${variant}${h.slice(17, 20)}-${h.slice(20, 32)}`
}

export interface AwsVersion {
  id: string
  labels: string[]
  created?: Date
}

export const has = (v: AwsVersion | undefined, label: string): boolean => Boolean(v?.labels.includes(label))
export const isCurrent = (v: AwsVersion | undefined) => has(v, AWSCURRENT)
/** AWSPENDING on the current version is a finished rotation (AWS's own reading), not a pending one. */
export const isPending = (v: AwsVersion | undefined) => has(v, AWSPENDING) && !isCurrent(v)

/** Maps an AWS version to the interface's view: our three stages, the request that made it, retired when unlabelled. */
export function toInfo(v: AwsVersion): VersionInfo {
  const stages: Stage[] = []
  if (isCurrent(v)) stages.push('current')
  if (isPending(v)) stages.push('pending')
  if (has(v, AWSPREVIOUS) && !isCurrent(v)) stages.push('previous')
  const requestId = v.labels.find((l) => l.startsWith(REQUEST_LABEL))?.slice(REQUEST_LABEL.length)
  return {
    id: v.id,
    stages,
    created: (v.created ?? new Date(0)).toISOString(),
    ...(requestId ? { requestId } : {}),
    // AWS calls a version without labels deprecated and deletes it in time.
    ...(v.labels.length === 0 ? { retired: true } : {}),
  }
}

/** The versions of one secret, by stage. */
export interface Labelled {
  versions: AwsVersion[]
  current?: AwsVersion
  pending?: AwsVersion
  previous?: AwsVersion
  byId(id: string): AwsVersion | undefined
  byLabel(label: string): AwsVersion | undefined
}

export function labelled(versions: AwsVersion[]): Labelled {
  const byLabel = (label: string) => versions.find((v) => v.labels.includes(label))
  return {
    versions,
    current: byLabel(AWSCURRENT),
    pending: versions.find(isPending),
    previous: versions.find((v) => has(v, AWSPREVIOUS) && !isCurrent(v)),
    byId: (id) => versions.find((v) => v.id === id),
    byLabel,
  }
}

/** Thin, typed calls on one secret. Each maps AWS failures to our errors, except the outcomes its caller decides on. */
export class StagedSecret {
  constructor(
    private readonly client: () => Promise<SecretsManagerClient>,
    /** Secret name or ARN. */
    readonly secretId: string,
    /** A printable reference for messages, e.g. "aws-prod:app/db-password". */
    readonly ref: string,
  ) {}

  /** All versions, deprecated ones included, or undefined when the secret does not exist. */
  async list(): Promise<Labelled | undefined> {
    const { ListSecretVersionIdsCommand } = await loadSecretsManager()
    const client = await this.client()
    const versions: AwsVersion[] = []
    let NextToken: string | undefined
    try {
      do {
        const out = await client.send(
          new ListSecretVersionIdsCommand({
            SecretId: this.secretId,
            IncludeDeprecated: true,
            MaxResults: 100,
            ...(NextToken ? { NextToken } : {}),
          }),
        )
        for (const v of out.Versions ?? []) {
          if (!v.VersionId) continue
          versions.push({
            id: v.VersionId,
            labels: [...(v.VersionStages ?? [])],
            ...(v.CreatedDate ? { created: v.CreatedDate } : {}),
          })
        }
        NextToken = out.NextToken || undefined
      } while (NextToken)
    } catch (err) {
      if (awsName(err) === 'ResourceNotFoundException' || (await this.#missing(err))) return undefined
      throw this.#error(err, 'ListSecretVersionIds')
    }
    versions.sort((a, b) => (a.created?.getTime() ?? 0) - (b.created?.getTime() ?? 0))
    return labelled(versions)
  }

  /** Like list(), but a missing secret is an error that says how to create it. */
  async mustList(): Promise<Labelled> {
    const l = await this.list()
    if (!l) {
      throw new ExternalError(
        'aws-secrets-manager',
        'AWS_SECRET_NOT_FOUND',
        `The secret ${this.ref} does not exist in Secrets Manager (or is not visible to these credentials).`,
        {
          next: `Create it first (aws secretsmanager create-secret --name ${this.secretId}), or fix target.secret.`,
        },
      )
    }
    return l
  }

  /**
   * Reads one version through one of its labels. 'mismatch' when the version does not carry
   * that label (or is gone): the caller decides what that means.
   */
  async read(versionId: string | undefined, label: string): Promise<ReadResult | 'mismatch'> {
    const { GetSecretValueCommand } = await loadSecretsManager()
    const client = await this.client()
    try {
      const out = await client.send(
        new GetSecretValueCommand({
          SecretId: this.secretId,
          VersionStage: label,
          ...(versionId ? { VersionId: versionId } : {}),
        }),
      )
      if (typeof out.SecretString !== 'string') {
        throw new CheckFailedError(
          'AWS_SECRET_NOT_STRING',
          `Version ${out.VersionId} of ${this.ref} holds binary data; nhi-recover manages string secrets only.`,
        )
      }
      return {
        id: out.VersionId ?? versionId ?? '',
        labels: [...(out.VersionStages ?? [])],
        value: new Secret(out.SecretString),
      }
    } catch (err) {
      const name = awsName(err)
      // AWS says ResourceNotFound when the label is not on that version; moto says InvalidRequest.
      if (name === 'ResourceNotFoundException') {
        await this.mustList() // a missing secret is its own, clearer error
        return 'mismatch'
      }
      if (name === 'InvalidRequestException' && /not associated|VersionStage/i.test(errMessage(err))) {
        return 'mismatch'
      }
      throw this.#error(err, 'GetSecretValue')
    }
  }

  /**
   * Stages `value` as a new version with AWSPENDING and this request's label. 'exists' when a
   * version with this request's token already exists (a concurrent run of the same request).
   */
  async putPending(requestId: string, value: Secret): Promise<AwsVersion | 'exists'> {
    const { PutSecretValueCommand } = await loadSecretsManager()
    const client = await this.client()
    const id = versionIdFor(requestId)
    try {
      const out = await client.send(
        new PutSecretValueCommand({
          SecretId: this.secretId,
          ClientRequestToken: id,
          SecretString: value.reveal(),
          VersionStages: [AWSPENDING, REQUEST_LABEL + requestId],
        }),
      )
      return { id: out.VersionId ?? id, labels: [...(out.VersionStages ?? [])], created: new Date() }
    } catch (err) {
      if (awsName(err) === 'ResourceExistsException') return 'exists'
      throw this.#error(err, 'PutSecretValue')
    }
  }

  /**
   * Moves `label` to version `to` and/or off version `from`. AWS checks that `from` holds the
   * label, which makes moving AWSCURRENT a compare-and-swap; 'mismatch' when it does not.
   */
  async move(label: string, to: string | undefined, from: string | undefined): Promise<'ok' | 'mismatch'> {
    const { UpdateSecretVersionStageCommand } = await loadSecretsManager()
    const client = await this.client()
    try {
      await client.send(
        new UpdateSecretVersionStageCommand({
          SecretId: this.secretId,
          VersionStage: label,
          ...(to ? { MoveToVersionId: to } : {}),
          ...(from ? { RemoveFromVersionId: from } : {}),
        }),
      )
      return 'ok'
    } catch (err) {
      const name = awsName(err)
      if (name === 'InvalidParameterException' || name === 'InvalidRequestException') {
        if (/RemoveFromVersionId|not found in version|not attached|currently attached/i.test(errMessage(err)))
          return 'mismatch'
      }
      throw this.#error(err, 'UpdateSecretVersionStage')
    }
  }

  /** Removes every label from a version, AWS's own labels first, so AWS deprecates it. Idempotent. */
  async strip(v: AwsVersion, keep: (label: string) => boolean = () => false): Promise<void> {
    const order = (l: string) => ([AWSPENDING, AWSPREVIOUS].includes(l) ? 0 : 1)
    for (const label of [...v.labels].sort((a, b) => order(a) - order(b))) {
      if (label === AWSCURRENT || keep(label)) continue
      await this.move(label, undefined, v.id) // 'mismatch': already gone
    }
  }

  /**
   * After a server-side failure of the listing, asks DescribeSecret whether the secret exists at
   * all, so a missing secret gets its own clear message (moto answers that listing with HTTP 500).
   * Any doubt (including no permission for DescribeSecret) keeps the original error.
   */
  async #missing(err: unknown): Promise<boolean> {
    const status = (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode ?? 0
    if (status < 500) return false
    const { DescribeSecretCommand } = await loadSecretsManager()
    try {
      await (await this.client()).send(new DescribeSecretCommand({ SecretId: this.secretId }))
      return false
    } catch (e) {
      return awsName(e) === 'ResourceNotFoundException'
    }
  }

  #error(err: unknown, op: string) {
    return awsError(err, { service: 'Secrets Manager', action: `secretsmanager:${op}`, resource: this.ref })
  }
}

export interface ReadResult {
  id: string
  labels: string[]
  value: Secret
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : ''
}

/** The refusal when another rotation has a version staged. */
export function foreignPending(ref: string, pending: AwsVersion): CheckFailedError {
  const by = toInfo(pending).requestId
  return new CheckFailedError(
    'FOREIGN_PENDING',
    `${ref} already has a pending version (${pending.id}) staged by ${by ? `request ${by}` : 'another rotation (not nhi-recover)'}; refusing to overwrite it.`,
    {
      next: by
        ? `Let request ${by} finish or roll it back, then run this request again.`
        : 'Finish or cancel that rotation in AWS (remove its AWSPENDING label), then run this request again.',
    },
  )
}
