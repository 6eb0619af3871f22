/** The per-mechanism half of the Vault secret store: one implementation per target kind. */
import type { StageRequest, TargetState, VersionInfo } from '../../../src/engine/secret-store.js'
import type { Secret } from '../../../src/secret.js'
import type { Target } from '../../../src/spec/schema.js'
import type { VaultApi } from '../../vault-client.js'

export interface VaultContext {
  /** Provider name in nhi-recover.yaml. */
  name: string
  /** The executor's client. */
  http: VaultApi
}

/** The SecretStore steps for one target kind; see src/engine/secret-store.ts for the contract. */
export interface Mechanism<T extends Target> {
  describe(target: T): Promise<TargetState>
  prepare(target: T, req: StageRequest & { value?: Secret }): Promise<VersionInfo>
  verify(target: T, req: StageRequest & { versionId: string }): Promise<void>
  read(target: T, versionId: string): Promise<Secret>
  promote(
    target: T,
    req: StageRequest & { versionId: string; expectedCurrent: string | undefined },
  ): Promise<void>
  discard(target: T, req: StageRequest & { versionId: string }): Promise<void>
  rollback(target: T, req: StageRequest): Promise<VersionInfo>
  retire(target: T, req: StageRequest & { versionId: string }): Promise<void>
}
