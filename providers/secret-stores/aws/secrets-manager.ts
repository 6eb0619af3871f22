/**
 * The `secrets-manager` mechanism: AWS Secrets Manager's own four-step rotation, run by our
 * engine instead of a rotation Lambda.
 *
 *   prepare  (createSecret)  PutSecretValue with AWSPENDING and the request's token
 *   verify   (testSecret)    read the pending version back, by VersionId and VersionStage
 *   promote  (finishSecret)  UpdateSecretVersionStage moves AWSCURRENT (AWS moves AWSPREVIOUS)
 *   retire                   strip the old version's labels, so AWS deprecates and later deletes it
 *
 * Every step first reads the labels and decides from them, so a repeat after a crash at any
 * point finishes the same rotation; a pending version of another rotation is refused.
 */
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { BugError, CheckFailedError, UserError } from '../../../src/errors.js'
import type { Secret } from '../../../src/secret.js'
import type { SecretStore, StageRequest, TargetState, VersionInfo } from '../../../src/engine/secret-store.js'
import type { ProviderConfig, Target } from '../../../src/spec/schema.js'
import { secretsManagerClient } from './clients.js'
import {
  AWSCURRENT,
  AWSPENDING,
  AWSPREVIOUS,
  foreignPending,
  has,
  isCurrent,
  isPending,
  REVOKED_LABEL,
  ROLLBACK_LABEL,
  StagedSecret,
  toInfo,
  versionIdFor,
  labelled,
  type AwsVersion,
  type Labelled,
} from './staged-secret.js'

export type SecretsManagerConfig = Extract<ProviderConfig, { kind: 'aws-secrets-manager' }>

export interface SecretsManagerStoreOptions {
  name: string
  config: SecretsManagerConfig
  env?: NodeJS.ProcessEnv
}

/** Hooks the iam-access-key mechanism runs around the label moves; the plain mechanism has none. */
export interface StagedHooks {
  /** Before AWSCURRENT moves back to `previous` in a rollback (re-enable its credential). */
  beforeRestore?(previous: AwsVersion, s: StagedSecret): Promise<void>
  /** After a rollback demoted `demoted` (disable its credential). */
  afterDemote?(demoted: AwsVersion, s: StagedSecret): Promise<void>
}

export class SecretsManagerStore implements SecretStore {
  readonly name: string
  readonly config: SecretsManagerConfig
  readonly #env: NodeJS.ProcessEnv
  #client: Promise<SecretsManagerClient> | undefined

  constructor(opts: SecretsManagerStoreOptions) {
    this.name = opts.name
    this.config = opts.config
    this.#env = opts.env ?? process.env
  }

  /** The secret behind a secret name or ARN, sharing this provider's client. */
  staged(secretId: string, ref = `${this.name}:${secretId}`): StagedSecret {
    return new StagedSecret(
      () => (this.#client ??= secretsManagerClient(this.config, this.#env)),
      secretId,
      ref,
    )
  }

  async describe(target: Target): Promise<TargetState> {
    const l = await this.#secret(target).list()
    return { exists: l !== undefined, versions: (l?.versions ?? []).map(toInfo) }
  }

  async prepare(target: Target, req: StageRequest & { value?: Secret }): Promise<VersionInfo> {
    if (!req.value) {
      throw new CheckFailedError(
        'VALUE_REQUIRED',
        'The secrets-manager mechanism needs a generated value to stage.',
        {
          next: 'Use a random generator for this target (rotation.generator.kind: random).',
        },
      )
    }
    const value = req.value
    return stagePending(this.#secret(target), req.requestId, async () => value)
  }

  async verify(target: Target, req: StageRequest & { versionId: string }): Promise<void> {
    const got = await readStaged(this.#secret(target), req.versionId)
    if (got.value.length === 0) {
      throw new CheckFailedError(
        'VERIFY_FAILED',
        `Version ${req.versionId} of ${this.#ref(target)} is empty.`,
      )
    }
  }

  async read(target: Target, versionId: string): Promise<Secret> {
    return (await readAny(this.#secret(target), versionId)).value
  }

  async promote(
    target: Target,
    req: StageRequest & { versionId: string; expectedCurrent: string | undefined },
  ): Promise<void> {
    await promoteStaged(this.#secret(target), req.versionId, req.expectedCurrent)
  }

  async discard(target: Target, req: StageRequest & { versionId: string }): Promise<void> {
    const s = this.#secret(target)
    const v = (await s.mustList()).byId(req.versionId)
    if (!v || !isPending(v)) return
    await s.strip(v)
  }

  async rollback(target: Target, req: StageRequest): Promise<VersionInfo> {
    return rollbackStaged(this.#secret(target), req.requestId)
  }

  async retire(target: Target, req: StageRequest & { versionId: string }): Promise<void> {
    const s = this.#secret(target)
    const v = (await s.mustList()).byId(req.versionId)
    if (!v || v.labels.length === 0) return
    refuseCurrent(s, v)
    await s.strip(v)
  }

  #secret(target: Target): StagedSecret {
    if (target.mechanism !== 'secrets-manager') {
      throw new UserError(
        'MECHANISM_MISMATCH',
        `Provider ${this.name} (aws-secrets-manager) cannot run mechanism ${target.mechanism}.`,
        {
          next: 'Use mechanism secrets-manager with this provider, or point the target at the right provider.',
        },
      )
    }
    return this.staged(target.secret, this.#ref(target))
  }

  #ref(target: Target): string {
    return `${this.name}:${'secret' in target ? target.secret : '?'}`
  }
}

// ---------------------------------------------------------------------------------------------
// The staged steps, shared with the iam-access-key mechanism.

/**
 * prepare: returns this request's version when it exists (a repeat), refuses a foreign pending
 * version, else stages `make()`'s value as AWSPENDING. `make` runs only when a version is needed.
 */
export async function stagePending(
  s: StagedSecret,
  requestId: string,
  make: (l: Labelled) => Promise<Secret>,
  onRace?: () => Promise<void>,
): Promise<VersionInfo> {
  const l = await s.mustList()
  const mine = l.byId(versionIdFor(requestId))
  if (mine) return mineOrDiscarded(s, mine, requestId)
  if (l.pending) throw foreignPending(s.ref, l.pending)
  const put = await s.putPending(requestId, await make(l))
  if (put !== 'exists') return toInfo(put)
  // Another run of this same request staged first; its version is the one.
  await onRace?.()
  const again = (await s.mustList()).byId(versionIdFor(requestId))
  if (!again)
    throw new BugError(
      `PutSecretValue reported version ${versionIdFor(requestId)} as existing, but it is not listed.`,
    )
  return mineOrDiscarded(s, again, requestId)
}

function mineOrDiscarded(s: StagedSecret, mine: AwsVersion, requestId: string): VersionInfo {
  if (mine.labels.length === 0) {
    throw new CheckFailedError(
      'VERSION_DISCARDED',
      `Request ${requestId} already staged version ${mine.id} of ${s.ref}, and it was discarded or retired since.`,
      { next: 'File a new request to rotate this secret again.' },
    )
  }
  return toInfo(mine)
}

/** Reads a version under verification: as AWSPENDING, or as AWSCURRENT when it was promoted already. */
export async function readStaged(s: StagedSecret, versionId: string) {
  const pending = await s.read(versionId, AWSPENDING)
  if (pending !== 'mismatch') return pending
  const v = (await s.mustList()).byId(versionId)
  if (isCurrent(v)) {
    const current = await s.read(versionId, AWSCURRENT)
    if (current !== 'mismatch') return current
  }
  throw new CheckFailedError(
    'VERSION_NOT_PENDING',
    `Version ${versionId} of ${s.ref} is ${v ? 'no longer pending (another rotation took the AWSPENDING label)' : 'gone'}.`,
    {
      next: "Check the secret's versions (aws secretsmanager list-secret-version-ids) before running the request again.",
    },
  )
}

/** Reads any labelled version through one of its labels (AWS's own first). */
export async function readAny(s: StagedSecret, versionId: string) {
  for (let attempt = 0; attempt < 3; attempt++) {
    const v = (await s.mustList()).byId(versionId)
    const label = v && ([AWSCURRENT, AWSPENDING, AWSPREVIOUS].find((x) => has(v, x)) ?? v.labels[0])
    if (!v || !label) {
      throw new CheckFailedError(
        'VERSION_NOT_FOUND',
        `Version ${versionId} of ${s.ref} does not exist or was retired (it has no staging label).`,
      )
    }
    const got = await s.read(versionId, label)
    if (got !== 'mismatch') return got
    // The label moved between the listing and the read; look again.
  }
  throw new CheckFailedError(
    'VERSION_NOT_FOUND',
    `Version ${versionId} of ${s.ref} keeps changing labels; try again.`,
  )
}

/**
 * promote: AWSCURRENT moves to `versionId` only from `expectedCurrent` (AWS checks the
 * RemoveFromVersionId, so a concurrent promotion fails here), then the AWSPENDING label is
 * dropped. Already current: only the cleanup runs.
 */
export async function promoteStaged(
  s: StagedSecret,
  versionId: string,
  expectedCurrent: string | undefined,
): Promise<Labelled> {
  let l = await s.mustList()
  const v = l.byId(versionId)
  if (!v || v.labels.length === 0) {
    throw new CheckFailedError(
      'VERSION_NOT_FOUND',
      `Version ${versionId} of ${s.ref} does not exist or was retired.`,
    )
  }
  if (!isCurrent(v)) {
    if (!has(v, AWSPENDING)) {
      throw new CheckFailedError(
        'VERSION_NOT_PENDING',
        `Refusing to promote version ${versionId} of ${s.ref}: it is no longer pending${l.pending ? ` (version ${l.pending.id} holds AWSPENDING now)` : ''}.`,
        {
          next: 'Another rotation took over the secret; check its versions before running the request again.',
        },
      )
    }
    if (l.current?.id !== expectedCurrent) throw currentChanged(s, expectedCurrent, l.current?.id)
    const moved = await s.move(AWSCURRENT, versionId, expectedCurrent)
    if (moved === 'ok') l = afterCurrentMoved(l, versionId)
    else {
      l = await s.mustList()
      if (!isCurrent(l.byId(versionId))) throw currentChanged(s, expectedCurrent, l.current?.id)
    }
  }
  const now = l.byId(versionId)!
  if (has(now, AWSPENDING)) await s.move(AWSPENDING, undefined, versionId)
  return l
}

/** The labels after AWS moved AWSCURRENT to `to`: the old current becomes AWSPREVIOUS, as AWS does it. */
function afterCurrentMoved(l: Labelled, to: string): Labelled {
  const from = l.current?.id
  return labelled(
    l.versions.map((v) => {
      const rest = v.labels.filter((x) => x !== AWSCURRENT && x !== AWSPREVIOUS)
      if (v.id === to) return { ...v, labels: [...rest, AWSCURRENT] }
      if (v.id === from) return { ...v, labels: [...rest, AWSPREVIOUS] }
      return { ...v, labels: v.labels.filter((x) => x !== AWSPREVIOUS || !from) }
    }),
  )
}

function currentChanged(s: StagedSecret, expected: string | undefined, found: string | undefined) {
  return new CheckFailedError(
    'CURRENT_CHANGED',
    `The current version of ${s.ref} changed during the rotation (expected ${expected ?? 'none'}, found ${found ?? 'none'}).`,
    { next: 'Someone else rotated this secret; check its history before running the request again.' },
  )
}

export function refuseCurrent(s: StagedSecret, v: AwsVersion): void {
  if (isCurrent(v)) {
    throw new CheckFailedError(
      'RETIRE_CURRENT',
      `Refusing to retire version ${v.id} of ${s.ref}: it is current.`,
    )
  }
}

/**
 * rollback: AWSCURRENT goes back to the AWSPREVIOUS version and the demoted version loses
 * its stages. The demoted version is first labelled with the rollback request's id, so a
 * repeat, after a crash anywhere in between, finishes this rollback instead of flipping back.
 */
export async function rollbackStaged(
  s: StagedSecret,
  requestId: string,
  hooks: StagedHooks = {},
): Promise<VersionInfo> {
  const marker = ROLLBACK_LABEL + requestId
  let l = await s.mustList()
  let demoted = l.byLabel(marker)
  if (!demoted) {
    const current = l.current
    if (!current) {
      throw new CheckFailedError('NO_CURRENT_VERSION', `${s.ref} has no current version to roll back.`)
    }
    if (!l.previous) throw noPrevious(s)
    await s.move(marker, current.id, undefined)
    demoted = current
    l = await s.mustList()
  }
  if (isCurrent(l.byId(demoted.id))) {
    const previous = l.previous
    if (!previous) throw noPrevious(s)
    const revoked = previous.labels.find((x) => x.startsWith(REVOKED_LABEL))
    if (revoked) {
      throw new CheckFailedError(
        'ROLLBACK_TO_REVOKED',
        `Refusing to roll ${s.ref} back to version ${previous.id}: request ${revoked.slice(REVOKED_LABEL.length)} revoked its credential.`,
        { next: 'A revoked credential is never restored; file a new rotation request instead.' },
      )
    }
    await hooks.beforeRestore?.(previous, s)
    const moved = await s.move(AWSCURRENT, previous.id, demoted.id)
    l = await s.mustList()
    if (moved === 'mismatch' && !isCurrent(l.byId(previous.id)))
      throw currentChanged(s, demoted.id, l.current?.id)
  }
  // AWS put AWSPREVIOUS on the demoted version when AWSCURRENT left it: take it (and any AWSPENDING) off.
  const d = l.byId(demoted.id)
  if (d) {
    for (const label of [AWSPREVIOUS, AWSPENDING]) if (has(d, label)) await s.move(label, undefined, d.id)
    await hooks.afterDemote?.(d, s)
  }
  const restored = l.current
  if (!restored) throw new BugError(`${s.ref} has no current version after a rollback.`)
  return toInfo({ ...restored, labels: restored.labels.filter((x) => x !== AWSPENDING) })
}

function noPrevious(s: StagedSecret) {
  return new CheckFailedError('NO_PREVIOUS_VERSION', `${s.ref} has no previous version to roll back to.`, {
    next: 'The previous credential was already retired; recover with a new rotation instead.',
  })
}
