/**
 * Reads a target's version ids through the secret store adapters, for `plan`. Only
 * describe() is called: it returns version ids and stages, never a value.
 */
import type { TargetVersions } from '../src/approvals/plan.js'
import { findRepoRoot } from '../src/config/repo.js'
import type { SecretStores } from '../src/engine/ports.js'
import { stages } from '../src/engine/secret-store.js'
import type { RecoveryRequest, RepoConfig } from '../src/spec/schema.js'

const registries = new WeakMap<RepoConfig, Promise<SecretStores>>()

/** The current, previous and pending version ids of a spec's target. */
export async function readTargetVersions(opts: {
  spec: RecoveryRequest
  config: RepoConfig
  cwd: string
  env: NodeJS.ProcessEnv
}): Promise<TargetVersions> {
  let stores = registries.get(opts.config)
  if (!stores) {
    stores = import('./registry.js').then(({ createSecretStores }) =>
      createSecretStores({ config: opts.config, repoRoot: findRepoRoot(opts.cwd), env: opts.env }),
    )
    registries.set(opts.config, stores)
  }
  const store = await (await stores).get(opts.spec.target.provider)
  const state = await store.describe(opts.spec.target)
  const by = stages(state)
  return {
    read: true,
    exists: state.exists,
    ...(by.current ? { current: by.current.id } : {}),
    ...(by.previous ? { previous: by.previous.id } : {}),
    ...(by.pending ? { pending: by.pending.id } : {}),
    versions: state.versions.length,
  }
}
