/**
 * The one schema. The TypeScript types, the runtime validation and the published JSON
 * Schemas under recovery-specs/schema/ all come from the definitions in this file.
 */
import * as z from 'zod'

export const SPEC_API_VERSION = 'nhi-recover/v1'

/** Safe identifier: lowercase, digits and single hyphens; cannot traverse paths. */
export const SAFE_ID = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,79}$/
/** A provider-side path: segments of a restricted charset separated by "/". No "..", no leading "/". */
export const SAFE_PATH = /^(?!.*(?:^|\/)\.{1,2}(?:\/|$))[A-Za-z0-9_.@+=-]+(?:\/[A-Za-z0-9_.@+=-]+)*$/
/** A duration such as 30m, 24h or 7d. */
export const DURATION = /^(?:0|[1-9][0-9]{0,5})(?:s|m|h|d)$/

const safeId = z.string().regex(SAFE_ID, {
  message:
    'must be 3–80 characters of a-z, 0-9 and single hyphens, starting and ending with a letter or digit',
})
const safePath = z.string().max(512).regex(SAFE_PATH, {
  message:
    'must be a relative path of [A-Za-z0-9_.@+=-] segments separated by "/", with no "." or ".." segment',
})
const safeName = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.@+-]*(?:\[bot\])?$/, {
    message: 'must be a login or principal of [A-Za-z0-9_.@+-] characters',
  })
const duration = z.string().regex(DURATION, { message: 'must be a duration such as 30m, 24h or 7d' })
const datetime = z.iso.datetime({ offset: true, message: 'must be an ISO 8601 date-time with a time zone' })
const text = (max: number) => z.string().trim().min(1).max(max)

export const RISKS = ['low', 'medium', 'high', 'critical'] as const
export const Risk = z
  .enum(RISKS)
  .describe('Risk tier of the identity; the policy tier with this name applies.')
export type Risk = z.infer<typeof Risk>

export const IDENTITY_TYPES = ['api-key', 'service-account', 'approle', 'database-role', 'iam-user'] as const
export const MECHANISMS = [
  'local',
  'kv-v2',
  'approle-secret-id',
  'database-static-role',
  'secrets-manager',
  'iam-access-key',
] as const
export type Mechanism = (typeof MECHANISMS)[number]
export const ACTIONS = ['rotate', 'revoke', 'reissue', 'rollback'] as const

const Requester = z
  .strictObject({
    name: safeName.describe('Login or principal of whoever asks for the recovery.'),
    kind: z.enum(['human', 'agent']).describe('Whether the requester is a person or an automation agent.'),
    email: z.email().optional().describe('Contact address of the requester.'),
  })
  .describe('Who asks. The requester never counts as an approver.')

const Identity = z
  .strictObject({
    name: safeId.describe('Name of the non-human identity.'),
    type: z.enum(IDENTITY_TYPES).describe('Kind of identity; it decides which mechanisms fit.'),
    owner: safeName.describe('Team or person that owns the identity.'),
    risk: Risk,
  })
  .describe('The non-human identity whose credential is recovered.')

const providerRef = safeId.describe('Name of a provider in nhi-recover.yaml.')

const LocalTarget = z.strictObject({
  provider: providerRef,
  mechanism: z.literal('local'),
  path: safePath.describe('Key of the secret in the local store.'),
})
const KvV2Target = z.strictObject({
  provider: providerRef,
  mechanism: z.literal('kv-v2'),
  mount: safePath.default('secret').describe('Mount path of the KV v2 engine.'),
  path: safePath.describe('Path of the secret inside the mount.'),
  field: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .default('value')
    .describe('Key inside the secret data that holds the credential.'),
})
const AppRoleTarget = z.strictObject({
  provider: providerRef,
  mechanism: z.literal('approle-secret-id'),
  mount: safePath.default('approle').describe('Mount path of the AppRole auth method.'),
  role: safeId.describe('AppRole role name.'),
  deliverTo: z
    .strictObject({ mount: safePath.default('secret'), path: safePath })
    .describe('KV v2 location where the consumer picks up the new secret-id.'),
})
const DatabaseStaticRoleTarget = z.strictObject({
  provider: providerRef,
  mechanism: z.literal('database-static-role'),
  mount: safePath.default('database').describe('Mount path of the database secrets engine.'),
  role: safeId.describe('Static role name.'),
})
const secretRef = z
  .string()
  .min(1)
  .max(2048)
  .regex(
    /^(?:arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+|[A-Za-z0-9/_+=.@-]+)$/,
    {
      message: 'must be a Secrets Manager secret name or ARN',
    },
  )
  .refine((s) => !s.split('/').some((seg) => seg === '..' || seg === '.'), {
    message: 'must not contain "." or ".." segments',
  })
const SecretsManagerTarget = z.strictObject({
  provider: providerRef,
  mechanism: z.literal('secrets-manager'),
  secret: secretRef.describe('Secret name or ARN.'),
})
const IamAccessKeyTarget = z.strictObject({
  provider: providerRef,
  mechanism: z.literal('iam-access-key'),
  user: z
    .string()
    .regex(/^[A-Za-z0-9+=,.@_-]{1,64}$/, { message: 'must be an IAM user name' })
    .describe('IAM user that serves as the service account.'),
  secret: secretRef.describe('Secrets Manager secret that receives the new key pair.'),
  secretProvider: providerRef
    .optional()
    .describe('aws-secrets-manager provider for the secret; defaults to the first one.'),
})

export const Target = z
  .discriminatedUnion('mechanism', [
    LocalTarget,
    KvV2Target,
    AppRoleTarget,
    DatabaseStaticRoleTarget,
    SecretsManagerTarget,
    IamAccessKeyTarget,
  ])
  .describe('Where the credential lives and how it is rotated.')
export type Target = z.infer<typeof Target>

const Generator = z
  .discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('random'),
      length: z.int().min(16).max(256).default(40),
      alphabet: z.enum(['alphanumeric', 'base64url', 'hex']).default('alphanumeric'),
    }),
    z.strictObject({ kind: z.literal('provider').describe('The provider issues the credential itself.') }),
  ])
  .describe('How the new credential value is made.')

const Verification = z
  .discriminatedUnion('kind', [
    z.strictObject({
      kind: z
        .literal('provider')
        .describe("The provider's own check: read back, login, or GetCallerIdentity."),
    }),
    z.strictObject({
      kind: z.literal('http'),
      url: z.url({ protocol: /^https?$/ }),
      header: z
        .string()
        .regex(/^[A-Za-z0-9-]{1,64}$/)
        .default('Authorization'),
      scheme: z
        .string()
        .regex(/^[A-Za-z0-9-]{0,32}$/)
        .default('Bearer'),
      expectStatus: z.int().min(100).max(599).default(200),
    }),
  ])
  .describe('A check that the new credential works before it becomes current.')

const Rotation = z
  .strictObject({
    generator: Generator.optional(),
    verification: z
      .array(Verification)
      .max(8)
      .default([{ kind: 'provider' }]),
    retainPrevious: duration
      .default('24h')
      .describe('How long the previous credential stays valid after promotion.'),
  })
  .describe('Rotation options.')

export const RecoveryRequest = z
  .strictObject({
    apiVersion: z.literal(SPEC_API_VERSION).describe('Version of the spec format.'),
    kind: z.literal('RecoveryRequest'),
    id: safeId.describe('Unique id of the request; the idempotency key of its execution.'),
    requester: Requester,
    reason: text(2000).describe('Why the credential must be recovered.'),
    ticket: text(200).describe('Incident or change ticket reference.'),
    created: datetime.describe('When the request was filed (ISO 8601 with a time zone).'),
    expires: datetime.describe('After this time the request can no longer be approved or executed.'),
    identity: Identity,
    target: Target,
    action: z
      .enum(ACTIONS)
      .describe(
        'rotate: staged replacement; revoke: disable the old credential first; reissue: a new credential when the old is lost; rollback: restore the previous one.',
      ),
    rollbackOf: safeId
      .optional()
      .describe('With action rollback: the id of the request whose rotation is undone.'),
    rotation: Rotation.default({ verification: [{ kind: 'provider' }], retainPrevious: '24h' }),
  })
  .describe('RecoveryRequest v1: one request to recover the credential of a non-human identity.')
export type RecoveryRequest = z.infer<typeof RecoveryRequest>

// ---------------------------------------------------------------------------------------
// Repo config: nhi-recover.yaml

const envName = z
  .string()
  .regex(/^[A-Z_][A-Z0-9_]{0,127}$/, { message: 'must be an environment variable name' })
const repoFile = safePath.describe('Path relative to the repo root.')

const VaultAuth = z.discriminatedUnion('method', [
  z.strictObject({
    method: z.literal('token'),
    tokenEnv: envName.optional().describe('Env var with the token; defaults to BAO_TOKEN, then VAULT_TOKEN.'),
    tokenFile: z.string().min(1).max(1024).optional().describe('File that holds the token.'),
  }),
  z.strictObject({
    method: z.literal('approle'),
    mount: safePath.default('approle'),
    roleIdEnv: envName,
    secretIdEnv: envName,
  }),
  z.strictObject({
    method: z.literal('jwt'),
    mount: safePath.default('jwt'),
    role: safeId,
    tokenEnv: envName
      .optional()
      .describe('Env var with the JWT. In GitHub Actions the OIDC token is requested instead.'),
    audience: z.string().min(1).max(256).optional(),
  }),
])

const Endpoint = z.url({ protocol: /^https?$/ })
const awsRegion = z
  .string()
  .regex(/^[a-z]{2}(?:-[a-z]+)+-\d$/, { message: 'must be an AWS region such as eu-west-1' })

export const ProviderConfig = z.discriminatedUnion('kind', [
  z.strictObject({
    kind: z.literal('local'),
    store: repoFile.default('.nhi-recover/local-store').describe('Directory of the encrypted local store.'),
    keyEnv: envName.default('NHI_RECOVER_LOCAL_KEY').describe('Env var with the 32-byte store key (base64).'),
    keyFile: z
      .string()
      .min(1)
      .max(1024)
      .optional()
      .describe('Key file (mode 0600) used when the env var is unset.'),
  }),
  z.strictObject({
    kind: z.literal('vault'),
    address: Endpoint.optional().describe('Server address; defaults to BAO_ADDR, then VAULT_ADDR.'),
    namespace: z.string().max(256).optional(),
    auth: VaultAuth.default({ method: 'token' }),
    tls: z
      .strictObject({
        caFile: z.string().min(1).max(1024).optional(),
        skipVerify: z
          .boolean()
          .default(false)
          .describe('Disables certificate checks. Prints a loud warning.'),
      })
      .optional(),
  }),
  z.strictObject({
    kind: z.literal('aws-secrets-manager'),
    region: awsRegion.optional(),
    endpoint: Endpoint.optional().describe('Endpoint override; AWS_ENDPOINT_URL also applies.'),
    profile: z.string().max(128).optional(),
  }),
  z.strictObject({
    kind: z.literal('aws-iam'),
    region: awsRegion.optional(),
    endpoint: Endpoint.optional(),
    profile: z.string().max(128).optional(),
  }),
])
export type ProviderConfig = z.infer<typeof ProviderConfig>

const TeamRequirement = z.strictObject({
  team: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/)
    .describe('Team slug; in GitHub, a team of the repository owner.'),
  min: z.int().min(1).max(20).default(1).describe('How many approvals this team must contribute.'),
})

export const Tier = z.strictObject({
  approvals: z.int().min(1).max(20).describe('Approvals required in total.'),
  teams: z.array(TeamRequirement).max(10).default([]),
  backends: z
    .array(z.enum(['github', 'ssh']))
    .min(1)
    .default(['github'])
    .describe('Evidence backends that must each supply the approvals.'),
  signed: z.boolean().default(false).describe('Whether SSH-signed approvals are required.'),
  maxAge: duration.default('7d').describe('Approvals older than this do not count.'),
})
export type Tier = z.infer<typeof Tier>

const Escalation = z.strictObject({
  when: z
    .strictObject({
      identityType: z.enum(IDENTITY_TYPES).optional(),
      mechanism: z.enum(MECHANISMS).optional(),
      provider: safeId.optional(),
      action: z.enum(ACTIONS).optional(),
      requesterKind: z.enum(['human', 'agent']).optional(),
      owner: safeName.optional(),
    })
    .refine((w) => Object.keys(w).length > 0, { message: 'needs at least one condition' }),
  minTier: Risk,
  reason: text(200).optional(),
})

const SshSigner = z.strictObject({
  kind: z.literal('ssh'),
  keyFile: z.string().min(1).max(1024).optional(),
  keyEnv: envName.optional(),
  agent: z.boolean().default(false).describe('Use the key loaded in ssh-agent.'),
  principal: safeName.describe('Principal of the signer in allowed_signers.'),
})
const TransitSigner = z.strictObject({
  kind: z.literal('transit'),
  provider: safeId,
  mount: safePath.default('transit'),
  key: safeId,
  principal: safeName,
})

export const RepoConfig = z
  .strictObject({
    apiVersion: z.literal(SPEC_API_VERSION).describe('Version of the config format.'),
    kind: z.literal('RepoConfig'),
    providers: z
      .record(safeId, ProviderConfig)
      .refine((p) => Object.keys(p).length > 0, { message: 'needs at least one provider' }),
    approvals: z
      .strictObject({
        github: z
          .strictObject({
            baseUrl: Endpoint.optional().describe(
              'GitHub Enterprise API URL; defaults to https://api.github.com.',
            ),
            tokenEnv: envName.default('GITHUB_TOKEN'),
          })
          .optional(),
        ssh: z
          .strictObject({
            allowedSigners: repoFile.default('.nhi-recover/allowed_signers'),
          })
          .optional(),
      })
      .default({}),
    policy: z.strictObject({
      tiers: z
        .partialRecord(Risk, Tier)
        .describe('One tier per risk level. A spec whose risk has no tier is refused.'),
      escalation: z.array(Escalation).max(100).default([]),
    }),
    agents: z
      .array(safeName)
      .max(500)
      .default([])
      .describe('Logins of bots and agents; they never count as approvers.'),
    audit: z
      .strictObject({
        path: repoFile.default('audit'),
        signer: z.discriminatedUnion('kind', [SshSigner, TransitSigner]).optional(),
      })
      .default({ path: 'audit' }),
    limits: z
      .strictObject({
        maxSpecBytes: z
          .int()
          .min(1024)
          .max(16 * 1024 * 1024)
          .default(256 * 1024),
        maxRequestLifetime: duration.default('30d').describe('Longest allowed span from created to expires.'),
        maxDepth: z.int().min(4).max(256).default(32).describe('Deepest YAML nesting accepted.'),
        maxAliases: z.int().min(0).max(1000).default(50).describe('Most YAML alias expansions accepted.'),
      })
      .default({ maxSpecBytes: 256 * 1024, maxRequestLifetime: '30d', maxDepth: 32, maxAliases: 50 }),
  })
  .describe('nhi-recover.yaml: providers, approval backends, policy tiers and limits of a recovery repo.')
export type RepoConfig = z.infer<typeof RepoConfig>
export type Limits = RepoConfig['limits']

export const DEFAULT_LIMITS: Limits = RepoConfig.shape.limits.parse(undefined)

/** Published JSON Schemas, keyed by file name under recovery-specs/schema/. */
export function jsonSchemas(): Record<string, unknown> {
  const opts = { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' } as const
  return {
    'recovery-request.v1.json': {
      $id: 'urn:nhi-recover:schema:recovery-request:v1',
      title: 'RecoveryRequest v1',
      ...z.toJSONSchema(RecoveryRequest, opts),
    },
    'repo-config.v1.json': {
      $id: 'urn:nhi-recover:schema:repo-config:v1',
      title: 'nhi-recover.yaml',
      ...z.toJSONSchema(RepoConfig, opts),
    },
  }
}
