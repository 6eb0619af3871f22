/**
 * The `iam-access-key` mechanism: an IAM user serves as a service account, and its access key
 * pair lives in a Secrets Manager secret as {"AccessKeyId", "SecretAccessKey"}.
 *
 *   prepare  make room (IAM allows two keys), create a key, store it as AWSPENDING
 *   verify   sts:GetCallerIdentity with the new key must name the same IAM user
 *   promote  AWSCURRENT moves to the new version; every other key of the user is deactivated
 *   retire   the old key is deleted and its version loses its labels
 *   revoke   (action: revoke) deactivates the current key first, before anything else
 *
 * A key's secret half is returned by IAM only once, so a crash between CreateAccessKey and
 * PutSecretValue would leave a key nobody can use. Before creating, a tag on the user records
 * the request and the keys that existed; a repeat deletes any key created after it that never
 * reached the secret, then creates a fresh one.
 */
import type { IAMClient } from '@aws-sdk/client-iam'
import { CheckFailedError, ExternalError, UserError } from '../../../src/errors.js'
import { Secret } from '../../../src/secret.js'
import type { SecretStore, StageRequest, TargetState, VersionInfo } from '../../../src/engine/secret-store.js'
import type { ProviderConfig, Target } from '../../../src/spec/schema.js'
import { awsError, awsName, iamClient, loadIam, loadSts, stsClient, type AwsKeyPair } from './clients.js'
import {
  promoteStaged,
  readAny,
  readStaged,
  refuseCurrent,
  rollbackStaged,
  stagePending,
  type SecretsManagerStore,
} from './secrets-manager.js'
import {
  AWSCURRENT,
  isPending,
  REVOKED_LABEL,
  toInfo,
  type AwsVersion,
  type Labelled,
  type StagedSecret,
} from './staged-secret.js'

export type IamConfig = Extract<ProviderConfig, { kind: 'aws-iam' }>

/**
 * What prepare may do when the user already has two keys: delete an inactive one (never the
 * current key), also delete the oldest active one, or refuse.
 */
export type ExtraKeyPolicy = 'delete-inactive' | 'delete-inactive-or-oldest' | 'refuse'

/** User tag that marks a key creation in progress: "<request id> <key ids that existed before>". */
export const CREATING_TAG = 'nhi-recover:creating-key'

export interface IamAccessKeyStoreOptions {
  name: string
  config: IamConfig
  /** The aws-secrets-manager store holding a target's secret (target.secretProvider, else the default). */
  secretStore: (providerName: string | undefined) => SecretsManagerStore
  extraKeys?: ExtraKeyPolicy
  /** How long verify keeps trying a new key while IAM propagates it (default 20 s: under the engine's 30 s per call). */
  propagation?: { timeoutMs: number; intervalMs: number }
  env?: NodeJS.ProcessEnv
}

export interface RevokeResult {
  /** The secret version whose key was disabled. */
  versionId: string
  accessKeyId: string
  /** 'deactivated', or 'gone' when the key no longer exists. */
  key: 'deactivated' | 'gone'
}

interface AccessKey {
  id: string
  status: string
  created: Date
}

export class IamAccessKeyStore implements SecretStore {
  readonly name: string
  readonly config: IamConfig
  readonly #opts: IamAccessKeyStoreOptions
  readonly #env: NodeJS.ProcessEnv
  #client: Promise<IAMClient> | undefined

  constructor(opts: IamAccessKeyStoreOptions) {
    this.name = opts.name
    this.config = opts.config
    this.#opts = opts
    this.#env = opts.env ?? process.env
  }

  async describe(target: Target): Promise<TargetState> {
    const l = await this.#resolve(target).s.list()
    return { exists: l !== undefined, versions: (l?.versions ?? []).map(toInfo) }
  }

  async prepare(target: Target, req: StageRequest & { value?: Secret }): Promise<VersionInfo> {
    const { user, s } = this.#resolve(target)
    let created: string | undefined
    const info = await stagePending(
      s,
      req.requestId,
      async (l) => {
        const key = await this.#makeRoomAndCreate(user, s, l, req.requestId)
        created = key.id
        return new Secret(JSON.stringify({ AccessKeyId: key.id, SecretAccessKey: key.secret.reveal() }))
      },
      // Another run of this request stored its key first: ours never reached the secret.
      async () => {
        if (created) await user.deleteKey(created)
      },
    )
    await user.clearMarker(req.requestId)
    return info
  }

  async verify(target: Target, req: StageRequest & { versionId: string }): Promise<void> {
    const { user, s } = this.#resolve(target)
    const pair = keyPair((await readStaged(s, req.versionId)).value, s.ref, req.versionId)
    const arn = await this.#callerArn(pair, user)
    if (!arnIsUser(arn, user.name)) {
      throw new CheckFailedError(
        'VERIFY_FAILED',
        `The new access key ${pair.accessKeyId} signs in as ${arn}, not as IAM user ${user.name}.`,
        { next: `Check that target.user is the user whose key ${s.ref} holds.` },
      )
    }
  }

  async read(target: Target, versionId: string): Promise<Secret> {
    const { s } = this.#resolve(target)
    return (await readAny(s, versionId)).value
  }

  async promote(
    target: Target,
    req: StageRequest & { versionId: string; expectedCurrent: string | undefined },
  ): Promise<void> {
    const { user, s } = this.#resolve(target)
    const l = await promoteStaged(s, req.versionId, req.expectedCurrent)
    const fresh = await keyIdOf(s, l.byId(req.versionId)!)
    // The old key stops working at once; it is deleted when its version is retired.
    for (const k of await user.keys()) {
      if (k.id !== fresh && k.status === 'Active') await user.setStatus(k.id, 'Inactive')
    }
  }

  async discard(target: Target, req: StageRequest & { versionId: string }): Promise<void> {
    const { user, s } = this.#resolve(target)
    const l = await s.mustList()
    const v = l.byId(req.versionId)
    if (!v || !isPending(v)) return
    const id = await keyIdOf(s, v)
    if (l.current && (await keyIdOf(s, l.current)) === id) throw sharedKey(s, v.id, id)
    await user.deleteKey(id)
    await s.strip(v)
  }

  async rollback(target: Target, req: StageRequest): Promise<VersionInfo> {
    const { user, s } = this.#resolve(target)
    return rollbackStaged(s, req.requestId, {
      beforeRestore: async (previous) => {
        const id = await keyIdOf(s, previous)
        if ((await user.setStatus(id, 'Active')) === 'gone') {
          throw new CheckFailedError(
            'NO_PREVIOUS_VERSION',
            `The previous access key ${id} of IAM user ${user.name} was deleted; there is nothing to roll back to.`,
            { next: 'Recover with a new rotation instead.' },
          )
        }
      },
      afterDemote: async (demoted) => {
        if (demoted.labels.length > 0) await user.setStatus(await keyIdOf(s, demoted), 'Inactive')
      },
    })
  }

  async retire(target: Target, req: StageRequest & { versionId: string }): Promise<void> {
    const { user, s } = this.#resolve(target)
    const l = await s.mustList()
    const v = l.byId(req.versionId)
    if (!v || v.labels.length === 0) return
    refuseCurrent(s, v)
    const id = await keyIdOf(s, v)
    if (l.current && (await keyIdOf(s, l.current)) === id) throw sharedKey(s, v.id, id)
    await user.deleteKey(id)
    await s.strip(v)
  }

  /**
   * For `action: revoke`: deactivates the key of the current version at once, before any
   * rotation step, and labels that version so it is never made current again. A repeat (even
   * after the rotation finished) finds the label and touches only that key.
   */
  async revoke(target: Target, req: StageRequest): Promise<RevokeResult> {
    const { user, s } = this.#resolve(target)
    const marker = REVOKED_LABEL + req.requestId
    let got = await s.read(undefined, marker)
    const first = got === 'mismatch'
    if (got === 'mismatch') got = await s.read(undefined, AWSCURRENT)
    if (got === 'mismatch') {
      throw new CheckFailedError(
        'NO_CURRENT_VERSION',
        `${s.ref} has no current version, so nhi-recover cannot tell which key of IAM user ${user.name} to revoke.`,
        {
          next: `Deactivate the compromised key by hand (aws iam update-access-key --user-name ${user.name} --status Inactive --access-key-id ...).`,
        },
      )
    }
    const accessKeyId = keyPair(got.value, s.ref, got.id).accessKeyId
    const key = (await user.setStatus(accessKeyId, 'Inactive')) === 'gone' ? 'gone' : 'deactivated'
    if (first) await s.move(marker, got.id, undefined)
    return { versionId: got.id, accessKeyId, key }
  }

  async #makeRoomAndCreate(user: IamUser, s: StagedSecret, l: Labelled, requestId: string) {
    let keys = await user.keys()
    const marker = await user.marker()
    if (marker) {
      if (marker.requestId !== requestId) {
        throw new CheckFailedError(
          'KEY_CREATION_IN_PROGRESS',
          `Request ${marker.requestId} is creating an access key for IAM user ${user.name}; refusing to create another.`,
          {
            next: `Let request ${marker.requestId} finish (run it again), or remove the user tag ${CREATING_TAG} if that run is abandoned.`,
          },
        )
      }
      // An earlier run of this request created these keys and died before storing them: their
      // secret halves are lost, so nobody can use them.
      for (const k of keys.filter((k) => !marker.before.includes(k.id))) await user.deleteKey(k.id)
      keys = keys.filter((k) => marker.before.includes(k.id))
    }
    if (keys.length >= 2) {
      const victim = await this.#victim(user, s, l, keys)
      await user.deleteKey(victim.id)
      // The version that held it can no longer be restored: take its labels off too.
      if (l.previous && (await keyIdOf(s, l.previous)) === victim.id) await s.strip(l.previous)
      keys = keys.filter((k) => k.id !== victim.id)
    }
    await user.setMarker(
      requestId,
      keys.map((k) => k.id),
    )
    return user.createKey()
  }

  /** The key to delete when the user already has two, or a refusal with the reason. */
  async #victim(user: IamUser, s: StagedSecret, l: Labelled, keys: AccessKey[]): Promise<AccessKey> {
    const policy = this.#opts.extraKeys ?? 'delete-inactive'
    const live = l.current ? await keyIdOf(s, l.current) : undefined
    const candidates = keys
      .filter((k) => k.id !== live)
      .sort((a, b) => a.created.getTime() - b.created.getTime())
    const inactive = candidates.find((k) => k.status !== 'Active')
    if (inactive && policy !== 'refuse') return inactive
    if (candidates[0] && policy === 'delete-inactive-or-oldest') return candidates[0]
    const list = keys
      .map(
        (k) =>
          `${k.id} (${k.status.toLowerCase()}, created ${k.created.toISOString()}${k.id === live ? ', current in the secret' : ''})`,
      )
      .join(', ')
    const why =
      policy === 'refuse'
        ? 'the provider is set to never delete a key'
        : inactive
          ? 'no key may be deleted'
          : 'neither key is inactive, and only inactive keys may be deleted'
    throw new CheckFailedError(
      'TOO_MANY_KEYS',
      `IAM user ${user.name} already has two access keys, the most IAM allows: ${list}. Not deleting one: ${why}.`,
      {
        next: `Delete or deactivate the key that is no longer used (aws iam delete-access-key --user-name ${user.name} --access-key-id ...), then run again.`,
      },
    )
  }

  /** GetCallerIdentity with the new key, retried while IAM propagates a just-created key. */
  async #callerArn(pair: AwsKeyPair, user: IamUser): Promise<string> {
    const { timeoutMs, intervalMs } = this.#opts.propagation ?? { timeoutMs: 20_000, intervalMs: 1_000 }
    const { GetCallerIdentityCommand } = await loadSts()
    const sts = await stsClient(this.config, this.#env, pair)
    const deadline = Date.now() + timeoutMs
    try {
      for (;;) {
        try {
          const out = await sts.send(new GetCallerIdentityCommand({}))
          return out.Arn ?? ''
        } catch (err) {
          const name = awsName(err)
          const propagating = ['InvalidClientTokenId', 'SignatureDoesNotMatch', 'AuthFailure'].includes(name)
          if (!propagating)
            throw awsError(err, {
              service: 'STS',
              action: 'sts:GetCallerIdentity',
              resource: `a new key of ${user.name}`,
            })
          if (Date.now() + intervalMs > deadline) {
            throw new CheckFailedError(
              'VERIFY_FAILED',
              `AWS did not accept the new access key ${pair.accessKeyId} of IAM user ${user.name} within ${Math.round(timeoutMs / 1000)} s (${name}).`,
              {
                next: 'Check that the key is active and the user may sign in with keys; the old key stays current.',
              },
            )
          }
          await new Promise((r) => setTimeout(r, intervalMs))
        }
      }
    } finally {
      sts.destroy()
    }
  }

  #resolve(target: Target): { user: IamUser; s: StagedSecret } {
    if (target.mechanism !== 'iam-access-key') {
      throw new UserError(
        'MECHANISM_MISMATCH',
        `Provider ${this.name} (aws-iam) cannot run mechanism ${target.mechanism}.`,
        {
          next: 'Use mechanism iam-access-key with this provider, or point the target at the right provider.',
        },
      )
    }
    const store = this.#opts.secretStore(target.secretProvider)
    const client = () => (this.#client ??= iamClient(this.config, this.#env))
    return {
      user: new IamUser(client, target.user),
      s: store.staged(target.secret, `${store.name}:${target.secret}`),
    }
  }
}

/** The access key calls on one IAM user. */
class IamUser {
  constructor(
    private readonly client: () => Promise<IAMClient>,
    readonly name: string,
  ) {}

  async keys(): Promise<AccessKey[]> {
    const { ListAccessKeysCommand } = await loadIam()
    const out = await this.#send('ListAccessKeys', (c) =>
      c.send(new ListAccessKeysCommand({ UserName: this.name })),
    )
    return (out?.AccessKeyMetadata ?? []).map((k) => ({
      id: k.AccessKeyId ?? '',
      status: k.Status ?? 'Unknown',
      created: k.CreateDate ?? new Date(0),
    }))
  }

  async createKey(): Promise<{ id: string; secret: Secret }> {
    const { CreateAccessKeyCommand } = await loadIam()
    try {
      const out = await (await this.client()).send(new CreateAccessKeyCommand({ UserName: this.name }))
      const k = out.AccessKey
      if (!k?.AccessKeyId || !k.SecretAccessKey) throw new Error('CreateAccessKey returned no key')
      return { id: k.AccessKeyId, secret: new Secret(k.SecretAccessKey) }
    } catch (err) {
      if (awsName(err) === 'LimitExceededException') {
        throw new ExternalError(
          'aws-iam',
          'AWS_KEY_LIMIT',
          `IAM user ${this.name} got a second access key from someone else while nhi-recover was making room.`,
          { next: 'Run the request again; it resumes and re-checks the keys.' },
        )
      }
      throw this.#error(err, 'CreateAccessKey')
    }
  }

  /** 'gone' when the key does not exist (any more). */
  async setStatus(id: string, status: 'Active' | 'Inactive'): Promise<'ok' | 'gone'> {
    const { UpdateAccessKeyCommand } = await loadIam()
    const out = await this.#send(
      'UpdateAccessKey',
      (c) => c.send(new UpdateAccessKeyCommand({ UserName: this.name, AccessKeyId: id, Status: status })),
      true,
    )
    return out === undefined ? 'gone' : 'ok'
  }

  async deleteKey(id: string): Promise<'ok' | 'gone'> {
    const { DeleteAccessKeyCommand } = await loadIam()
    const out = await this.#send(
      'DeleteAccessKey',
      (c) => c.send(new DeleteAccessKeyCommand({ UserName: this.name, AccessKeyId: id })),
      true,
    )
    return out === undefined ? 'gone' : 'ok'
  }

  async marker(): Promise<{ requestId: string; before: string[] } | undefined> {
    const { ListUserTagsCommand } = await loadIam()
    const out = await this.#send('ListUserTags', (c) =>
      c.send(new ListUserTagsCommand({ UserName: this.name })),
    )
    const value = out?.Tags?.find((t) => t.Key === CREATING_TAG)?.Value
    if (!value) return undefined
    const [requestId = '', ...before] = value.split(' ').filter(Boolean)
    return { requestId, before }
  }

  async setMarker(requestId: string, before: string[]): Promise<void> {
    const { TagUserCommand } = await loadIam()
    const Value = [requestId, ...before].join(' ')
    await this.#send('TagUser', (c) =>
      c.send(new TagUserCommand({ UserName: this.name, Tags: [{ Key: CREATING_TAG, Value }] })),
    )
  }

  /** Removes the creation marker when it is this request's. */
  async clearMarker(requestId: string): Promise<void> {
    const m = await this.marker()
    if (m?.requestId !== requestId) return
    const { UntagUserCommand } = await loadIam()
    await this.#send('UntagUser', (c) =>
      c.send(new UntagUserCommand({ UserName: this.name, TagKeys: [CREATING_TAG] })),
    )
  }

  /**
   * Runs one call. A NoSuchEntity answer means the user is missing, except with `keyMayBeGone`,
   * where it means the key is already gone and yields undefined.
   */
  async #send<T>(op: string, fn: (c: IAMClient) => Promise<T>, keyMayBeGone = false): Promise<T | undefined> {
    try {
      return await fn(await this.client())
    } catch (err) {
      const name = awsName(err)
      if (name === 'NoSuchEntity' || name === 'NoSuchEntityException') {
        if (keyMayBeGone) return undefined
        throw new ExternalError(
          'aws-iam',
          'AWS_IAM_USER_NOT_FOUND',
          `IAM user ${this.name} does not exist.`,
          {
            next: 'Create the user first, or fix target.user in the spec.',
            cause: err,
          },
        )
      }
      throw this.#error(err, op)
    }
  }

  #error(err: unknown, op: string) {
    return awsError(err, { service: 'IAM', action: `iam:${op}`, resource: `user/${this.name}` })
  }
}

/** The key pair stored in a version. Parse failures never quote the value. */
function keyPair(value: Secret, ref: string, versionId: string): AwsKeyPair {
  let parsed: unknown
  try {
    parsed = JSON.parse(value.reveal())
  } catch {
    parsed = undefined
  }
  const p = parsed as { AccessKeyId?: unknown; SecretAccessKey?: unknown } | undefined
  if (!p || typeof p.AccessKeyId !== 'string' || typeof p.SecretAccessKey !== 'string') {
    throw new CheckFailedError(
      'AWS_KEY_PAIR_INVALID',
      `Version ${versionId} of ${ref} is not an access key pair (JSON with AccessKeyId and SecretAccessKey).`,
      { next: "Point target.secret at the secret that holds this user's key pair." },
    )
  }
  return { accessKeyId: p.AccessKeyId, secretAccessKey: new Secret(p.SecretAccessKey) }
}

async function keyIdOf(s: StagedSecret, v: AwsVersion): Promise<string> {
  return keyPair((await readAny(s, v.id)).value, s.ref, v.id).accessKeyId
}

/** True when `arn` is IAM user `user` (arn:aws:iam::123456789012:user/optional/path/NAME). */
export function arnIsUser(arn: string, user: string): boolean {
  const m = /^arn:aws[a-z-]*:iam::\d{12}:user\/(?:.*\/)?([^/]+)$/.exec(arn)
  return m?.[1] === user
}

function sharedKey(s: StagedSecret, versionId: string, keyId: string) {
  return new CheckFailedError(
    'KEY_IS_CURRENT',
    `Version ${versionId} of ${s.ref} holds access key ${keyId}, which the current version holds too; refusing to delete it.`,
    { next: 'Fix the secret so that each version holds its own key.' },
  )
}
