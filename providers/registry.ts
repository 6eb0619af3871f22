/**
 * Builds the secret store adapter for each provider named in nhi-recover.yaml, on first use.
 * Adapters load lazily, so a run that only touches the local store never loads an SDK.
 */
import { isAbsolute, join } from 'node:path'
import { UserError } from '../src/errors.js'
import type { SecretStores } from '../src/engine/ports.js'
import { resilientStore, DEFAULT_RESILIENCE, type ResilienceOptions } from '../src/engine/resilient-store.js'
import type { SecretStore } from '../src/engine/secret-store.js'
import type { RepoConfig } from '../src/spec/schema.js'

export interface StoreRegistryOptions {
  config: RepoConfig
  repoRoot: string
  env?: NodeJS.ProcessEnv
  resilience?: ResilienceOptions
  /** Wraps each adapter, e.g. the dry-run recorder. */
  wrap?: (store: SecretStore) => SecretStore
}

export function createSecretStores(opts: StoreRegistryOptions): SecretStores {
  const cache = new Map<string, Promise<SecretStore>>()
  const env = opts.env ?? process.env
  const build = async (name: string): Promise<SecretStore> => {
    const cfg = opts.config.providers[name]
    if (!cfg) {
      throw new UserError('UNKNOWN_PROVIDER', `Provider "${name}" is not defined in nhi-recover.yaml.`, {
        next: 'Define it under providers, or fix target.provider in the spec.',
      })
    }
    let store: SecretStore
    switch (cfg.kind) {
      case 'local': {
        const { LocalSecretStore, loadLocalKey } = await import('./secret-stores/local.js')
        const dir = isAbsolute(cfg.store) ? cfg.store : join(opts.repoRoot, cfg.store)
        store = new LocalSecretStore({ name, dir, key: loadLocalKey(cfg, opts.repoRoot, env) })
        break
      }
      case 'vault': {
        const { createVaultSecretStore } = await import('./secret-stores/vault/index.js')
        store = await createVaultSecretStore(cfg, { name, env })
        break
      }
      case 'aws-secrets-manager':
      case 'aws-iam': {
        const { createAwsSecretStore } = await import('./secret-stores/aws/index.js')
        store = createAwsSecretStore(name, opts.config.providers, { env })
        break
      }
    }
    const resilient = resilientStore(store, opts.resilience ?? DEFAULT_RESILIENCE)
    return opts.wrap ? opts.wrap(resilient) : resilient
  }
  return {
    get(name) {
      let p = cache.get(name)
      if (!p) {
        p = build(name)
        cache.set(name, p)
      }
      return p
    },
  }
}
