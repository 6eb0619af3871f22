/**
 * Connects to OpenBao or Vault as configured in nhi-recover.yaml: address, namespace, TLS and
 * one of three logins (token, AppRole, JWT). Each login runs on its own token-less client, so
 * the executor's client is never half-switched to another identity.
 */
import { readFileSync } from 'node:fs'
import { UserError } from '../../../src/errors.js'
import { Secret } from '../../../src/secret.js'
import type { ProviderConfig } from '../../../src/spec/schema.js'
import { apiPath, readCaFile, VaultHttp, type VaultConnection } from '../../vault-client.js'

export type VaultConfig = Extract<ProviderConfig, { kind: 'vault' }>

export interface ConnectOptions {
  /** Provider name in nhi-recover.yaml, for messages. */
  name: string
  env?: NodeJS.ProcessEnv
  /** Where the skip-verify warning goes; stderr unless a test captures it. */
  warn?: (line: string) => void
  timeoutMs?: number
  /** Fetch used for the GitHub Actions OIDC token request. */
  fetch?: typeof fetch
}

/** Address, namespace and TLS settings from the config, falling back to BAO_* then VAULT_* variables. */
export function resolveConnection(config: VaultConfig, opts: ConnectOptions): VaultConnection {
  const env = opts.env ?? process.env
  const address = (config.address ?? env.BAO_ADDR ?? env.VAULT_ADDR ?? '').trim().replace(/\/+$/, '')
  if (!address) {
    throw new UserError('VAULT_ADDRESS_MISSING', `Provider ${opts.name} has no server address.`, {
      next: 'Set address in nhi-recover.yaml, or BAO_ADDR (or VAULT_ADDR) in the environment.',
    })
  }
  if (!/^https?:\/\/[^/\s]+/.test(address)) {
    throw new UserError(
      'VAULT_ADDRESS_INVALID',
      `Provider ${opts.name} has an address that is not an http(s) URL.`,
      {
        next: 'Use a URL such as https://vault.example.com:8200.',
      },
    )
  }
  const namespace = config.namespace ?? env.BAO_NAMESPACE ?? env.VAULT_NAMESPACE
  const caFile = config.tls?.caFile ?? env.BAO_CACERT ?? env.VAULT_CACERT
  const skipVerify = config.tls?.skipVerify === true
  if (skipVerify && address.startsWith('https://')) {
    const warn = opts.warn ?? ((line: string) => process.stderr.write(line))
    warn(
      [
        '',
        '!!! WARNING: TLS CERTIFICATE VERIFICATION IS DISABLED !!!',
        `!!! Provider ${opts.name} (tls.skipVerify: true) accepts any certificate from ${address}.`,
        '!!! Anyone on the network path can read and change the secrets this run handles.',
        '!!! Set tls.caFile to the server CA instead.',
        '',
      ].join('\n'),
    )
  }
  return {
    address,
    ...(namespace ? { namespace } : {}),
    ...(caFile ? { ca: readCaFile(caFile) } : {}),
    ...(skipVerify ? { skipVerify } : {}),
    ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
  }
}

/** A client logged in as the executor, by the configured method. */
export async function connectVault(config: VaultConfig, opts: ConnectOptions): Promise<VaultHttp> {
  const env = opts.env ?? process.env
  const connection = resolveConnection(config, opts)
  const auth = config.auth
  if (auth.method === 'token') return VaultHttp.create(connection, tokenFrom(auth, env, opts.name))
  const anon = await VaultHttp.create(connection)
  if (auth.method === 'approle') {
    const roleId = env[auth.roleIdEnv]
    const secretId = env[auth.secretIdEnv]
    if (!roleId || !secretId) {
      throw new UserError(
        'VAULT_APPROLE_CREDENTIALS_MISSING',
        `Provider ${opts.name} logs in with AppRole, but ${!roleId ? auth.roleIdEnv : auth.secretIdEnv} is empty.`,
        { next: `Set ${auth.roleIdEnv} and ${auth.secretIdEnv} for the executor.` },
      )
    }
    const token = await login(
      anon,
      auth.mount,
      { role_id: roleId, secret_id: new Secret(secretId) },
      opts.name,
    )
    return VaultHttp.create(connection, token)
  }
  const jwt = await jwtFor(auth, env, opts)
  const token = await login(anon, auth.mount, { role: auth.role, jwt }, opts.name)
  return VaultHttp.create(connection, token)
}

function tokenFrom(
  auth: Extract<VaultConfig['auth'], { method: 'token' }>,
  env: NodeJS.ProcessEnv,
  name: string,
): Secret {
  const fromEnv = auth.tokenEnv ? env[auth.tokenEnv] : (env.BAO_TOKEN ?? env.VAULT_TOKEN)
  if (fromEnv?.trim()) return new Secret(fromEnv.trim())
  if (auth.tokenFile) {
    let text: string
    try {
      text = readFileSync(auth.tokenFile, 'utf8').trim()
    } catch {
      throw new UserError(
        'VAULT_TOKEN_FILE',
        `The token file ${auth.tokenFile} of provider ${name} cannot be read.`,
        {
          next: 'Point auth.tokenFile at a readable file that holds only the token.',
        },
      )
    }
    if (text) return new Secret(text)
  }
  const where = auth.tokenEnv ? auth.tokenEnv : 'BAO_TOKEN or VAULT_TOKEN'
  throw new UserError(
    'VAULT_TOKEN_MISSING',
    `Provider ${name} has no token: ${where} is empty${auth.tokenFile ? ` and ${auth.tokenFile} is empty` : ''}.`,
    {
      next: `Set ${where}, or auth.tokenFile in nhi-recover.yaml, or use auth method approle or jwt.`,
    },
  )
}

async function jwtFor(
  auth: Extract<VaultConfig['auth'], { method: 'jwt' }>,
  env: NodeJS.ProcessEnv,
  opts: ConnectOptions,
): Promise<Secret> {
  if (auth.tokenEnv) {
    const value = env[auth.tokenEnv]?.trim()
    if (value) return new Secret(value)
    throw new UserError(
      'VAULT_JWT_MISSING',
      `Provider ${opts.name} logs in with a JWT, but ${auth.tokenEnv} is empty.`,
      {
        next: `Set ${auth.tokenEnv} to the JWT, or run in GitHub Actions with "permissions: id-token: write".`,
      },
    )
  }
  const url = env.ACTIONS_ID_TOKEN_REQUEST_URL
  const bearer = env.ACTIONS_ID_TOKEN_REQUEST_TOKEN
  if (!url || !bearer) {
    throw new UserError(
      'VAULT_JWT_MISSING',
      `Provider ${opts.name} logs in with a JWT, but no token source is available.`,
      {
        next: 'In GitHub Actions grant "permissions: id-token: write"; elsewhere set auth.tokenEnv to a variable that holds the JWT.',
      },
    )
  }
  // GitHub Actions OIDC: GET $ACTIONS_ID_TOKEN_REQUEST_URL&audience=… with the request token as bearer.
  const request = new URL(url)
  if (auth.audience) request.searchParams.set('audience', auth.audience)
  const doFetch = opts.fetch ?? fetch
  let value: unknown
  try {
    const res = await doFetch(request, {
      headers: { Authorization: `bearer ${bearer}`, Accept: 'application/json' },
    })
    if (!res.ok) throw new Error(String(res.status))
    value = ((await res.json()) as { value?: unknown }).value
  } catch {
    throw new UserError(
      'VAULT_OIDC_TOKEN',
      `Provider ${opts.name} could not get an OIDC token from GitHub Actions.`,
      {
        next: 'Check that the workflow has "permissions: id-token: write" and run it again.',
      },
    )
  }
  if (typeof value !== 'string' || !value) {
    throw new UserError(
      'VAULT_OIDC_TOKEN',
      `GitHub Actions returned no OIDC token for provider ${opts.name}.`,
      {
        next: 'Check that the workflow has "permissions: id-token: write" and run it again.',
      },
    )
  }
  return new Secret(value)
}

/** Logs in at auth/<mount>/login on a token-less client and returns the client token. */
async function login(
  anon: VaultHttp,
  mount: string,
  body: Record<string, string | Secret>,
  name: string,
): Promise<Secret> {
  const json = Object.fromEntries(
    Object.entries(body).map(([k, v]) => [k, v instanceof Secret ? v.reveal() : v]),
  )
  const res = await anon.call({
    method: 'POST',
    path: apiPath('auth', mount, 'login'),
    json,
    capability: 'update',
    allow: [400, 401, 403],
  })
  const token = res.body?.auth?.client_token
  if (res.status !== 200 || typeof token !== 'string' || !token) {
    throw new UserError(
      'VAULT_LOGIN_FAILED',
      `Provider ${name} could not log in at auth/${mount}${res.errors.length ? `: ${res.errors.join('; ')}` : ''}.`,
      {
        next: `Check the ${mount} auth method's role and the credentials given to the executor.`,
      },
    )
  }
  return new Secret(token)
}
