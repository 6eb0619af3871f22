/**
 * The interface every secret store adapter implements (providers/secret-stores/*). It follows
 * the staged rotation of AWS Secrets Manager: a new version is staged as pending while the
 * current one stays valid, verified, then promoted; the old one becomes previous and is
 * retired later. Every call is idempotent per request id, and nothing here returns a value
 * except read(), which returns a Secret.
 */
import type { Secret } from '../secret.js'
import type { Target } from '../spec/schema.js'

export type Stage = 'current' | 'pending' | 'previous'

/** What the store knows about one version. Never a value. */
export interface VersionInfo {
  id: string
  stages: Stage[]
  /** ISO time the version was created. */
  created: string
  /** The request that created the version, when the store can record it. */
  requestId?: string
  /** True once the version was destroyed or revoked. */
  retired?: boolean
}

export interface TargetState {
  exists: boolean
  versions: VersionInfo[]
}

export interface StageRequest {
  /** The idempotency key: a repeat with the same id finds the work already done. */
  requestId: string
}

export interface SecretStore {
  /** Name of the provider in nhi-recover.yaml. */
  readonly name: string
  /** Versions and their stages; reads no value. */
  describe(target: Target): Promise<TargetState>
  /**
   * Stages a new version as pending. `value` is absent when the provider issues the credential.
   * A pending version of this request is returned as it is; a pending version of another
   * request is refused (CheckFailedError FOREIGN_PENDING), never overwritten.
   */
  prepare(target: Target, req: StageRequest & { value?: Secret }): Promise<VersionInfo>
  /** The provider's own check that a version works (read-back, login, GetCallerIdentity). Throws when it does not. */
  verify(target: Target, req: StageRequest & { versionId: string }): Promise<void>
  /** Reads one version's value, for configured verification or delivery. */
  read(target: Target, versionId: string): Promise<Secret>
  /**
   * Makes `versionId` current; the old current becomes previous. Refuses when the current
   * version is no longer `expectedCurrent` (someone else rotated in between).
   */
  promote(
    target: Target,
    req: StageRequest & { versionId: string; expectedCurrent: string | undefined },
  ): Promise<void>
  /** Drops a pending version that failed verification. */
  discard(target: Target, req: StageRequest & { versionId: string }): Promise<void>
  /**
   * Makes previous current again; the rolled-back version loses its stages. Returns the
   * now-current version. Idempotent per request id: a repeat by the same request finishes or
   * confirms its own rollback and never rolls back twice.
   */
  rollback(target: Target, req: StageRequest): Promise<VersionInfo>
  /**
   * For action revoke, where the store can: disables the current credential at once, before
   * anything else is written (a compromised key must stop working first). Idempotent.
   */
  revoke?(target: Target, req: StageRequest): Promise<{ versionId: string }>
  /** Destroys or revokes a version that is no longer current. Never touches the current version. */
  retire(target: Target, req: StageRequest & { versionId: string }): Promise<void>
}

/** The versions holding each stage, for callers that reason about state. */
export function stages(state: TargetState): Partial<Record<Stage, VersionInfo>> {
  const out: Partial<Record<Stage, VersionInfo>> = {}
  for (const v of state.versions) for (const s of v.stages) out[s] = v
  return out
}
