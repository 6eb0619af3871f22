/**
 * Builds the AWS adapters from nhi-recover.yaml: an aws-secrets-manager provider runs the
 * secrets-manager mechanism, an aws-iam provider runs iam-access-key and keeps the key pair in a
 * secret of an aws-secrets-manager provider (target.secretProvider, else the first one defined).
 * Importing this file loads no SDK; each client loads its package on first use.
 */
import { UserError } from '../../../src/errors.js'
import type { ProviderConfig } from '../../../src/spec/schema.js'
import { IamAccessKeyStore, type ExtraKeyPolicy } from './iam-access-key.js'
import { SecretsManagerStore, type SecretsManagerConfig } from './secrets-manager.js'

export { IamAccessKeyStore, type RevokeResult } from './iam-access-key.js'
export { SecretsManagerStore } from './secrets-manager.js'

export interface AwsStoreOptions {
  env?: NodeJS.ProcessEnv
  extraKeys?: ExtraKeyPolicy
  propagation?: { timeoutMs: number; intervalMs: number }
}

/** The adapter for provider `name`, which must be of kind aws-secrets-manager or aws-iam. */
export function createAwsSecretStore(
  name: string,
  providers: Record<string, ProviderConfig>,
  opts: AwsStoreOptions = {},
): SecretsManagerStore | IamAccessKeyStore {
  const cfg = providers[name]
  const env = opts.env ?? process.env
  if (cfg?.kind === 'aws-secrets-manager') return new SecretsManagerStore({ name, config: cfg, env })
  if (cfg?.kind !== 'aws-iam') {
    throw new UserError('PROVIDER_KIND_MISMATCH', `Provider "${name}" is not an AWS provider.`, {
      next: 'Use kind aws-secrets-manager or aws-iam for AWS targets.',
    })
  }
  const stores = new Map<string, SecretsManagerStore>()
  const secretStore = (wanted: string | undefined): SecretsManagerStore => {
    const smName = wanted ?? Object.keys(providers).find((n) => providers[n]?.kind === 'aws-secrets-manager')
    const smCfg = smName ? providers[smName] : undefined
    if (!smName || smCfg?.kind !== 'aws-secrets-manager') {
      throw new UserError(
        'SECRET_PROVIDER_MISSING',
        wanted
          ? `target.secretProvider "${wanted}" is not an aws-secrets-manager provider in nhi-recover.yaml.`
          : `Provider "${name}" (aws-iam) needs an aws-secrets-manager provider for the key pair, and none is defined.`,
        { next: 'Define an aws-secrets-manager provider, and name it in target.secretProvider.' },
      )
    }
    let store = stores.get(smName)
    if (!store) {
      store = new SecretsManagerStore({ name: smName, config: smCfg as SecretsManagerConfig, env })
      stores.set(smName, store)
    }
    return store
  }
  return new IamAccessKeyStore({
    name,
    config: cfg,
    secretStore,
    env,
    ...(opts.extraKeys ? { extraKeys: opts.extraKeys } : {}),
    ...(opts.propagation ? { propagation: opts.propagation } : {}),
  })
}
