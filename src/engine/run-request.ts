/**
 * Runs one approved request against its secret store: prepare, verify, promote, then retire
 * now or schedule it. Where to start is decided from the store's staged state alone (versions
 * carry the request id), so a run killed at any step boundary resumes the same rotation and
 * never rotates twice.
 */
import { CheckFailedError, isNhiError } from '../errors.js'
import type { Secret } from '../secret.js'
import type { RecoveryRequest } from '../spec/schema.js'
import { parseDuration } from '../time.js'
import { generateSecret } from './generate.js'
import { describeTargetRef } from './target-ref.js'
import type { ExecutableSpec, LedgerRecord, Outcome } from './ports.js'
import { stages, type SecretStore, type TargetState } from './secret-store.js'
import type { CrashHook } from './test-hooks.js'

export type Step = 'revoke' | 'prepare' | 'verify' | 'promote' | 'retire' | 'rollback'

export interface RequestOutcome {
  outcome: Outcome
  reason: string
  versionBefore?: string
  versionAfter?: string
  retireAfter?: string
  /** The previous version, when this run retired it at once (revoke, or retainPrevious 0s). */
  retired?: string
  /** True when the run found the work already done by an earlier, interrupted run. */
  resumed: boolean
}

export interface RunRequestDeps {
  store: SecretStore
  now: () => Date
  crash: CrashHook
  onStep?: (requestId: string, step: Step, detail: string) => void
  /** Configured verification beyond the provider's own: an HTTP call with the new credential. */
  httpCheck?: (check: HttpCheck, credential: Secret) => Promise<void>
  /** Ledger record of the request a rollback undoes. */
  rollbackOf?: LedgerRecord
}

export type HttpCheck = Extract<RecoveryRequest['rotation']['verification'][number], { kind: 'http' }>

/** Mechanisms whose provider issues the credential itself, so no value is generated here. */
const PROVIDER_ISSUED = new Set(['approle-secret-id', 'database-static-role', 'iam-access-key'])

export async function runRequest(x: ExecutableSpec, deps: RunRequestDeps): Promise<RequestOutcome> {
  const { spec } = x
  if (spec.action === 'rollback') return runRollback(x, deps)
  const { store, crash } = deps
  const id = spec.id
  const step = (s: Step, detail: string) => deps.onStep?.(id, s, detail)

  if (spec.action === 'revoke' && store.revoke) {
    // A compromised credential stops working first, before anything else is written.
    const revoked = await store.revoke(spec.target, { requestId: id })
    step('revoke', `disabled the current credential (version ${revoked.versionId})`)
  }
  const state = await store.describe(spec.target)
  const st = stages(state)
  let resumed = false
  let before = st.current?.id
  let after: string

  if (st.current?.requestId === id) {
    // An earlier run promoted this request's version and died before auditing it. Promote
    // again (it is idempotent) so that any cleanup the provider does on promote completes.
    resumed = true
    after = st.current.id
    // If the earlier run already retired the old version, it no longer holds a stage.
    before = st.previous?.id ?? lastRetiredBefore(state, after)
    await store.promote(spec.target, { requestId: id, versionId: after, expectedCurrent: before })
    step('promote', `version ${after} was already promoted (resumed)`)
  } else {
    if (st.pending && st.pending.requestId !== id) {
      throw new CheckFailedError(
        'FOREIGN_PENDING',
        `${describeTarget(spec)} has a pending version staged by ${st.pending.requestId ? `request ${st.pending.requestId}` : 'another rotation'}; refusing to overwrite it.`,
        { next: 'Let that rotation finish or roll it back, then run this request again.' },
      )
    }
    let pendingId: string
    /** Some providers cannot stage: their prepare puts the new credential in force at once. */
    let inForce = false
    if (st.pending?.requestId === id) {
      resumed = true
      pendingId = st.pending.id
      step('prepare', `version ${pendingId} already staged (resumed)`)
    } else {
      const value = PROVIDER_ISSUED.has(spec.target.mechanism) ? undefined : newValue(spec)
      const staged = await store.prepare(spec.target, { requestId: id, ...(value ? { value } : {}) })
      pendingId = staged.id
      inForce = staged.stages.includes('current')
      step(
        'prepare',
        inForce
          ? `version ${pendingId} is in force (the provider cannot stage)`
          : `staged version ${pendingId}`,
      )
    }
    crash('after-prepare', id)

    try {
      await store.verify(spec.target, { requestId: id, versionId: pendingId })
      for (const check of spec.rotation.verification) {
        if (check.kind !== 'http') continue
        if (!deps.httpCheck)
          throw new CheckFailedError(
            'VERIFY_UNAVAILABLE',
            'HTTP verification is configured but not available.',
          )
        await deps.httpCheck(check, await store.read(spec.target, pendingId))
      }
    } catch (err) {
      if (isNhiError(err) && err.kind === 'check-failed' && inForce) {
        // Nothing to roll back to: the old credential stopped working at prepare. Say so, and
        // leave the request to the next run, which verifies the credential in force again.
        throw new CheckFailedError(
          'VERIFY_FAILED_IN_FORCE',
          `verification failed: ${err.message} Version ${pendingId} is already in force (the provider replaced the old credential at prepare and keeps no copy), so nothing was rolled back.`,
          {
            next: 'Fix what the check reports (e.g. the consumer or the connection), then run execute again: it verifies the credential in force without rotating again.',
          },
        )
      }
      if (isNhiError(err) && err.kind === 'check-failed') {
        // The old credential was never demoted; dropping the staged one is the whole rollback.
        await store.discard(spec.target, { requestId: id, versionId: pendingId })
        step(
          'rollback',
          `verification failed; discarded version ${pendingId}, ${before ? `version ${before} stays current` : 'nothing was current'}`,
        )
        return {
          outcome: 'rolled-back',
          reason: `verification failed: ${err.message}`,
          ...(before ? { versionBefore: before } : {}),
          resumed,
        }
      }
      throw err
    }
    step('verify', `version ${pendingId} verified`)
    crash('after-verify', id)

    await store.promote(spec.target, { requestId: id, versionId: pendingId, expectedCurrent: before })
    after = pendingId
    step('promote', `version ${after} is current${before ? `, version ${before} is previous` : ''}`)
    crash('after-promote', id)
  }

  const retain = spec.action === 'revoke' ? 0 : parseDuration(spec.rotation.retainPrevious)
  const result: RequestOutcome = {
    outcome: 'succeeded',
    reason: `${spec.action} completed${resumed ? ' (resumed after an interrupted run)' : ''}`,
    ...(before ? { versionBefore: before } : {}),
    versionAfter: after,
    resumed,
  }
  if (before && retain === 0) {
    await store.retire(spec.target, { requestId: id, versionId: before })
    result.retired = before
    step('retire', `version ${before} retired`)
    crash('after-retire', id)
  } else if (before) {
    result.retireAfter = new Date(deps.now().getTime() + retain).toISOString()
    step('retire', `version ${before} stays valid until ${result.retireAfter}`)
  }
  return result
}

/**
 * Restores the version that the rolled-back request replaced. Stores make rollback idempotent
 * per request id, so a repeat after a crash finishes the same rollback; the engine only checks
 * that nothing else changed the target since the rotation it undoes.
 */
async function runRollback(x: ExecutableSpec, deps: RunRequestDeps): Promise<RequestOutcome> {
  const { spec } = x
  const original = deps.rollbackOf
  if (!original || original.outcome !== 'succeeded' || !original.versionBefore || !original.versionAfter) {
    throw new CheckFailedError(
      'ROLLBACK_TARGET_UNKNOWN',
      `Request ${spec.rollbackOf} has no succeeded rotation in the audit ledger to roll back.`,
      { next: 'Check rollbackOf against "nhi-recover audit log".' },
    )
  }
  const current = stages(await deps.store.describe(spec.target)).current
  const untouched = current?.id === original.versionAfter
  const alreadyOurs = current?.requestId === spec.id || current?.id === original.versionBefore
  if (!untouched && !alreadyOurs) {
    throw new CheckFailedError(
      'ROLLBACK_STATE_CHANGED',
      `${describeTarget(spec)} is no longer at version ${original.versionAfter} (current: ${current?.id ?? 'none'}); refusing to roll back over a later change.`,
      { next: 'File a new rotation request instead.' },
    )
  }
  const restored = await deps.store.rollback(spec.target, { requestId: spec.id })
  deps.onStep?.(spec.id, 'rollback', `version ${restored.id} is current${alreadyOurs ? ' (resumed)' : ''}`)
  deps.crash('after-promote', spec.id)
  return {
    outcome: 'succeeded',
    reason: `rollback of ${original.requestId} completed${alreadyOurs ? ' (resumed)' : ''}`,
    versionBefore: original.versionAfter,
    versionAfter: restored.id,
    resumed: alreadyOurs,
  }
}

/** The newest retired version created before `versionId`: the one a retirement at promote removed. */
function lastRetiredBefore(state: TargetState, versionId: string): string | undefined {
  const current = state.versions.find((v) => v.id === versionId)
  return state.versions
    .filter((v) => v.retired && v.id !== versionId && current !== undefined && v.created <= current.created)
    .at(-1)?.id
}

function newValue(spec: RecoveryRequest): Secret {
  const g = spec.rotation.generator ?? {
    kind: 'random' as const,
    length: 40,
    alphabet: 'alphanumeric' as const,
  }
  if (g.kind !== 'random')
    throw new CheckFailedError('GENERATOR_MISMATCH', `${spec.target.mechanism} needs a random generator.`)
  return generateSecret(g.length, g.alphabet)
}

/** A reference to the spec's target that is safe to print and audit. */
export function describeTarget(spec: RecoveryRequest): string {
  return describeTargetRef(spec.target)
}

/** Turns anything a provider threw into the outcome the audit entry records. */
export function failureReason(err: unknown): string {
  return isNhiError(err) ? `${err.code}: ${err.message}` : 'unexpected error (see the executor log)'
}
