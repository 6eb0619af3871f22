/** Checks of a schema-valid spec against the repo config and the clock. Pure. */
import type { ProviderConfig, RecoveryRequest, RepoConfig, Mechanism } from './schema.js'
import { locate } from './locate.js'
import type { Parsed } from './parse.js'
import { dotPath, type PathSeg, type Problem } from './problems.js'
import { parseDuration } from '../time.js'

/** Which provider kinds can run each mechanism. */
export const MECHANISM_PROVIDERS: Record<Mechanism, ProviderConfig['kind']> = {
  local: 'local',
  'kv-v2': 'vault',
  'approle-secret-id': 'vault',
  'database-static-role': 'vault',
  'secrets-manager': 'aws-secrets-manager',
  'iam-access-key': 'aws-iam',
}

/** Which mechanisms fit each identity type. */
export const IDENTITY_MECHANISMS: Record<RecoveryRequest['identity']['type'], readonly Mechanism[]> = {
  'api-key': ['local', 'kv-v2', 'secrets-manager'],
  'service-account': ['local', 'kv-v2', 'secrets-manager', 'approle-secret-id'],
  approle: ['approle-secret-id'],
  'database-role': ['database-static-role'],
  'iam-user': ['iam-access-key'],
}

/** Mechanisms whose provider issues the credential itself. */
const PROVIDER_GENERATED: ReadonlySet<Mechanism> = new Set([
  'approle-secret-id',
  'database-static-role',
  'iam-access-key',
])

/** Clocks of CI runners and laptops drift; a spec created a few minutes "ahead" is fine. */
const CLOCK_SKEW_MS = 5 * 60 * 1000

/** Own entries only: a name like "constructor" must not find Object.prototype. */
function own<T>(record: Partial<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined
}

/** Problems of a schema-valid spec against the repo config and the clock, each positioned. */
export function specSemanticProblems(
  parsed: Parsed<RecoveryRequest>,
  config: RepoConfig,
  now: Date,
): Problem[] {
  const { value: spec, yaml } = parsed
  const out: Problem[] = []
  const at = (path: PathSeg[], code: string, message: string) =>
    out.push({
      file: yaml.file,
      ...locate(yaml.doc, yaml.lineCounter, path),
      code,
      path: dotPath(path),
      message,
    })

  const provider = own(config.providers, spec.target.provider)
  if (!provider) {
    const known = Object.keys(config.providers).join(', ')
    at(
      ['target', 'provider'],
      'UNKNOWN_PROVIDER',
      `names provider "${spec.target.provider}", which nhi-recover.yaml does not define (defined: ${known})`,
    )
  } else if (provider.kind !== MECHANISM_PROVIDERS[spec.target.mechanism]) {
    at(
      ['target', 'mechanism'],
      'MECHANISM_MISMATCH',
      `"${spec.target.mechanism}" needs a provider of kind ${MECHANISM_PROVIDERS[spec.target.mechanism]}, but "${spec.target.provider}" is of kind ${provider.kind}`,
    )
  }
  if (spec.target.mechanism === 'iam-access-key') {
    if (spec.target.secretProvider) {
      const sp = own(config.providers, spec.target.secretProvider)
      if (!sp || sp.kind !== 'aws-secrets-manager') {
        at(
          ['target', 'secretProvider'],
          'UNKNOWN_PROVIDER',
          `must name a provider of kind aws-secrets-manager in nhi-recover.yaml; "${spec.target.secretProvider}" is ${sp ? `of kind ${sp.kind}` : 'not defined'}`,
        )
      }
    } else if (!Object.values(config.providers).some((p) => p?.kind === 'aws-secrets-manager')) {
      at(
        ['target', 'mechanism'],
        'UNKNOWN_PROVIDER',
        'stores the new key pair in Secrets Manager, but nhi-recover.yaml defines no provider of kind aws-secrets-manager',
      )
    }
  }
  if (!IDENTITY_MECHANISMS[spec.identity.type].includes(spec.target.mechanism)) {
    at(
      ['target', 'mechanism'],
      'MECHANISM_MISMATCH',
      `"${spec.target.mechanism}" cannot recover an identity of type ${spec.identity.type}; use one of: ${IDENTITY_MECHANISMS[spec.identity.type].join(', ')}`,
    )
  }
  if (!own(config.policy.tiers, spec.identity.risk)) {
    at(
      ['identity', 'risk'],
      'UNKNOWN_TIER',
      `is "${spec.identity.risk}", but nhi-recover.yaml defines no policy tier of that name (policy.tiers)`,
    )
  }
  const gen = spec.rotation.generator?.kind
  if (gen === 'random' && PROVIDER_GENERATED.has(spec.target.mechanism)) {
    at(
      ['rotation', 'generator', 'kind'],
      'GENERATOR_MISMATCH',
      `must be "provider": ${spec.target.mechanism} credentials are issued by the provider`,
    )
  }
  if (gen === 'provider' && !PROVIDER_GENERATED.has(spec.target.mechanism)) {
    at(
      ['rotation', 'generator', 'kind'],
      'GENERATOR_MISMATCH',
      `must be "random": ${spec.target.mechanism} does not issue credentials itself`,
    )
  }

  if (spec.action === 'rollback' && !spec.rollbackOf) {
    at(
      ['action'],
      'ROLLBACK_WITHOUT_TARGET',
      'is rollback, so rollbackOf must name the request whose rotation is undone',
    )
  }
  if (spec.action !== 'rollback' && spec.rollbackOf) {
    at(
      ['rollbackOf'],
      'ROLLBACK_FIELD_UNUSED',
      `only applies when action is rollback (action is ${spec.action})`,
    )
  }
  if (spec.rollbackOf === spec.id) at(['rollbackOf'], 'ROLLBACK_SELF', 'names this request itself')

  const isAgent = config.agents.includes(spec.requester.name)
  if (isAgent && spec.requester.kind !== 'agent') {
    at(
      ['requester', 'kind'],
      'REQUESTER_KIND',
      `is human, but "${spec.requester.name}" is listed under agents in nhi-recover.yaml; set kind: agent`,
    )
  }

  const created = Date.parse(spec.created)
  const expires = Date.parse(spec.expires)
  const maxLife = parseDuration(config.limits.maxRequestLifetime)
  if (created > now.getTime() + CLOCK_SKEW_MS) {
    at(['created'], 'CREATED_IN_FUTURE', 'is in the future; check the date and the time zone')
  }
  if (expires <= created) at(['expires'], 'EXPIRES_BEFORE_CREATED', 'must be after created')
  else if (expires - created > maxLife) {
    at(
      ['expires'],
      'LIFETIME_TOO_LONG',
      `is more than ${config.limits.maxRequestLifetime} after created (limits.maxRequestLifetime)`,
    )
  }
  if (expires <= now.getTime()) {
    at(['expires'], 'REQUEST_EXPIRED', `passed on ${spec.expires}; file a new request with "nhi-recover new"`)
  }
  return out
}
