/**
 * The OpenBao / Vault secret store: one SecretStore over three mechanisms (kv-v2,
 * approle-secret-id, database-static-role), each in its own module. Every step is idempotent
 * per request id and resumes after a crash at any call; docs/providers.md explains how.
 */
import { UserError } from '../../../src/errors.js'
import type { SecretStore, StageRequest, TargetState, VersionInfo } from '../../../src/engine/secret-store.js'
import type { Secret } from '../../../src/secret.js'
import type { Target } from '../../../src/spec/schema.js'
import type { VaultApi } from '../../vault-client.js'
import { approleSecretId } from './approle-secret-id.js'
import { connectVault, type ConnectOptions, type VaultConfig } from './auth.js'
import { databaseStaticRole, type DatabaseOptions } from './database-static-role.js'
import { kvV2 } from './kv-v2.js'
import type { Mechanism, VaultContext } from './mechanism.js'

export interface VaultStoreOptions {
  name: string
  http: VaultApi
  database?: DatabaseOptions
}

type VaultTarget = Extract<Target, { mechanism: 'kv-v2' | 'approle-secret-id' | 'database-static-role' }>

export class VaultSecretStore implements SecretStore {
  readonly name: string
  readonly #mechanisms: { [K in VaultTarget['mechanism']]: Mechanism<Extract<VaultTarget, { mechanism: K }>> }

  constructor(opts: VaultStoreOptions) {
    this.name = opts.name
    const ctx: VaultContext = { name: opts.name, http: opts.http }
    this.#mechanisms = {
      'kv-v2': kvV2(ctx),
      'approle-secret-id': approleSecretId(ctx),
      'database-static-role': databaseStaticRole(ctx, opts.database),
    }
  }

  // One dispatch point: the target's mechanism picks the module.
  #for(target: Target): Mechanism<Target> {
    const m = this.#mechanisms[target.mechanism as VaultTarget['mechanism']]
    if (!m) {
      throw new UserError(
        'MECHANISM_MISMATCH',
        `Provider ${this.name} (vault) cannot run mechanism ${target.mechanism}.`,
        { next: 'Use kv-v2, approle-secret-id or database-static-role with a vault provider.' },
      )
    }
    return m as unknown as Mechanism<Target>
  }

  describe(target: Target): Promise<TargetState> {
    return this.#for(target).describe(target)
  }
  prepare(target: Target, req: StageRequest & { value?: Secret }): Promise<VersionInfo> {
    return this.#for(target).prepare(target, req)
  }
  verify(target: Target, req: StageRequest & { versionId: string }): Promise<void> {
    return this.#for(target).verify(target, req)
  }
  read(target: Target, versionId: string): Promise<Secret> {
    return this.#for(target).read(target, versionId)
  }
  promote(
    target: Target,
    req: StageRequest & { versionId: string; expectedCurrent: string | undefined },
  ): Promise<void> {
    return this.#for(target).promote(target, req)
  }
  discard(target: Target, req: StageRequest & { versionId: string }): Promise<void> {
    return this.#for(target).discard(target, req)
  }
  rollback(target: Target, req: StageRequest): Promise<VersionInfo> {
    return this.#for(target).rollback(target, req)
  }
  retire(target: Target, req: StageRequest & { versionId: string }): Promise<void> {
    return this.#for(target).retire(target, req)
  }
}

/** Connects as configured (address, namespace, TLS, token / AppRole / JWT) and returns the store. */
export async function createVaultSecretStore(
  config: VaultConfig,
  opts: ConnectOptions & { database?: DatabaseOptions },
): Promise<VaultSecretStore> {
  const http = await connectVault(config, opts)
  return new VaultSecretStore({
    name: opts.name,
    http,
    ...(opts.database ? { database: opts.database } : {}),
  })
}
