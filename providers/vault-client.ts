/**
 * Shared plumbing for OpenBao and HashiCorp Vault: one small HTTP layer over node-vault.
 *
 * - node-vault is CommonJS and heavy (axios), so it is imported lazily, on first use.
 * - Every path is built from segments that are each encoded with encodeURIComponent; no
 *   caller-supplied string is ever spliced into a URL raw.
 * - LIST is sent as `GET ?list=true` (noCustomHTTPVerbs), so proxies that drop odd verbs pass it.
 * - node-vault's login helpers replace the client's token, so we never call them: logins go
 *   through a separate, token-less client (see `VaultHttp.anonymous`).
 * - Every failure becomes one of our typed errors. Messages name the path and the capability
 *   a call needed, never a token or a value; the server's own words are scrubbed first.
 */
import { readFileSync } from 'node:fs'
import { BugError, CheckFailedError, ExternalError, UserError, type NhiError } from '../src/errors.js'
import { scrubSecrets, type Secret } from '../src/secret.js'

export type Capability = 'create' | 'read' | 'update' | 'patch' | 'delete' | 'list' | 'sudo'

export interface VaultCall {
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'LIST'
  /** Already-encoded API path without /v1, from `apiPath()`. */
  path: string
  /** Query string pairs; values are encoded here. */
  query?: Record<string, string | number>
  json?: unknown
  /** What the policy must grant for this call; named in a permission-denied error. */
  capability: Capability | Capability[]
  /** Statuses the caller handles itself instead of getting an error (e.g. 404, 400). */
  allow?: number[]
  /** Overrides the client's token for this one call (e.g. revoke-self of a login token). */
  token?: Secret
}

export interface VaultResponse {
  status: number
  // Vault's JSON is untyped; each module narrows what it reads.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any
  /** The server's error strings, scrubbed of any value this process holds. */
  errors: string[]
}

export interface VaultConnection {
  /** e.g. https://vault.example.com:8200, without a trailing slash. */
  address: string
  namespace?: string
  /** PEM of the CA that signed the server certificate. */
  ca?: string
  skipVerify?: boolean
  /** Per-call timeout in milliseconds. */
  timeoutMs?: number
}

/** One segment-by-segment encoded API path: apiPath('secret', 'data', 'team/app') -> secret/data/team/app. */
export function apiPath(...parts: string[]): string {
  const segments: string[] = []
  for (const part of parts) {
    for (const seg of part.split('/')) {
      if (seg === '' || seg === '.' || seg === '..') {
        throw new BugError(`Refusing to build a Vault path with an empty, "." or ".." segment.`)
      }
      segments.push(encodeURIComponent(seg))
    }
  }
  return segments.join('/')
}

interface NodeVaultClient {
  token?: string
  namespace?: string
  pathPrefix: string
  request(options: {
    path: string
    method: string
    json?: unknown
    headers?: Record<string, string>
  }): Promise<unknown>
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
let factoryPromise: Promise<(options: any) => NodeVaultClient> | undefined
async function nodeVault() {
  factoryPromise ??= import('node-vault').then(
    (m) => ((m as { default?: unknown }).default ?? m) as (options: unknown) => NodeVaultClient,
  )
  return factoryPromise
}

const noDebug = Object.assign(() => undefined, { enabled: false })

/** What the mechanisms need from a client; tests wrap it to inject crashes and foreign writes. */
export interface VaultApi {
  readonly connection: VaultConnection
  call(call: VaultCall): Promise<VaultResponse>
  /** A second client on the same connection with no token, for logins that must not touch this one. */
  anonymous(): Promise<VaultApi>
}

/** A Vault client with one token (or none), one address and one namespace. */
export class VaultHttp implements VaultApi {
  readonly connection: VaultConnection
  readonly #client: NodeVaultClient
  #token: Secret | undefined

  private constructor(connection: VaultConnection, client: NodeVaultClient, token: Secret | undefined) {
    this.connection = connection
    this.#client = client
    this.#token = token
  }

  /** Creates a client. `token` may be absent for a client that only logs in. */
  static async create(connection: VaultConnection, token?: Secret): Promise<VaultHttp> {
    const factory = await nodeVault()
    const skip = connection.skipVerify === true
    const client = factory({
      apiVersion: 'v1',
      endpoint: connection.address,
      noCustomHTTPVerbs: true,
      // node-vault's debug logger prints request bodies, i.e. secret values: never enable it.
      debug: noDebug,
      // Explicit values, so that node-vault's own env fallbacks (VAULT_SKIP_VERIFY etc.) never apply.
      rpDefaults: { strictSSL: !skip, timeout: connection.timeoutMs ?? 15_000 },
      requestOptions: {
        ...(connection.ca ? { ca: connection.ca } : {}),
        strictSSL: !skip,
      },
    })
    // node-vault falls back to VAULT_TOKEN, VAULT_NAMESPACE and VAULT_PREFIX; we decide those ourselves.
    client.pathPrefix = ''
    client.token = undefined
    client.namespace = connection.namespace || undefined
    return new VaultHttp(connection, client, token)
  }

  /** A second client on the same connection with no token, for logins that must not touch this one. */
  anonymous(): Promise<VaultHttp> {
    return VaultHttp.create(this.connection)
  }

  /** Sets the token this client sends (after a login on an anonymous client). */
  useToken(token: Secret): void {
    this.#token = token
  }

  get hasToken(): boolean {
    return this.#token !== undefined
  }

  /** Sends one call; returns the response or throws a typed error (see `vaultError`). */
  async call(call: VaultCall): Promise<VaultResponse> {
    let path = `/${call.path}`
    const query: string[] = Object.entries(call.query ?? {}).map(
      ([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`,
    )
    let method: string = call.method
    if (method === 'LIST') {
      method = 'GET'
      query.push('list=true')
    }
    if (query.length) path += `?${query.join('&')}`
    const headers: Record<string, string> = {}
    const token = call.token ?? this.#token
    if (token) headers['X-Vault-Token'] = token.reveal()
    if (call.method === 'PATCH') headers['Content-Type'] = 'application/merge-patch+json'
    try {
      const body = await this.#client.request({
        path,
        method,
        headers,
        ...(call.json === undefined ? {} : { json: call.json }),
      })
      return { status: 200, body: body ?? {}, errors: [] }
    } catch (err) {
      const response = (err as { response?: { statusCode?: number; body?: unknown } }).response
      if (response && typeof response.statusCode === 'number') {
        const errors = serverErrors(response.body)
        // A 404 from the router means no engine is mounted there: never "the secret does not exist".
        const unmounted = response.statusCode === 404 && errors.some((e) => /no handler for route/i.test(e))
        if (unmounted) throw noMount(this.connection, call)
        if (call.allow?.includes(response.statusCode)) {
          return { status: response.statusCode, body: response.body ?? {}, errors }
        }
        throw vaultError(this.connection, call, response.statusCode, errors)
      }
      throw networkError(this.connection, call, err)
    }
  }
}

function serverErrors(body: unknown): string[] {
  const errors = (body as { errors?: unknown } | undefined)?.errors
  if (!Array.isArray(errors)) return []
  return errors.map((e) =>
    scrubSecrets(String(e))
      .replace(/\s+/g, ' ')
      .replace(/^1 error occurred: \* /, '')
      .trim()
      .replace(/\.+$/, '')
      .slice(0, 300),
  )
}

function noMount(conn: VaultConnection, call: VaultCall): NhiError {
  const path = decodeURIComponent(call.path)
  const first = path.split('/')[0] === 'auth' ? path.split('/').slice(0, 2).join('/') : path.split('/')[0]
  return new CheckFailedError(
    'VAULT_NO_MOUNT',
    `Nothing is mounted at ${first}/ for ${path}${conn.namespace ? ` (namespace ${conn.namespace})` : ''} at ${conn.address}.`,
    {
      next: 'Check the mount in the spec (and the namespace in nhi-recover.yaml), and that the secrets engine or auth method is enabled there.',
    },
  )
}

/** Where a call went, for messages: "secret/data/app (namespace team-a) at https://…". */
function where(conn: VaultConnection, call: VaultCall): string {
  const path = decodeURIComponent(call.path)
  return `${path}${conn.namespace ? ` (namespace ${conn.namespace})` : ''} at ${conn.address}`
}

/** Maps an HTTP status from Vault to one of our error kinds, with a next step. */
export function vaultError(
  conn: VaultConnection,
  call: VaultCall,
  status: number,
  errors: string[],
): NhiError {
  const said = errors.length ? `: ${errors.join('; ')}` : ''
  const at = where(conn, call)
  if (status === 403) {
    const caps = [call.capability].flat()
    const named = caps.map((c) => `"${c}"`).join(' and ')
    return new UserError(
      'VAULT_PERMISSION_DENIED',
      `Permission denied: the token needs the ${named} ${caps.length > 1 ? 'capabilities' : 'capability'} on ${at}.`,
      {
        next: `Grant ${named} on path "${policyPath(conn, call)}" in the executor's policy (README "Using a real Vault or OpenBao" has a minimal one), or check that the token has not expired.`,
      },
    )
  }
  if (status === 429 || status >= 500) {
    const sealed = status === 503 && errors.some((e) => /sealed/i.test(e))
    return new ExternalError(
      'vault',
      sealed ? 'VAULT_SEALED' : 'VAULT_UNAVAILABLE',
      `${sealed ? 'The server is sealed' : `The server answered ${status}`} for ${call.method} ${at}${said}.`,
      {
        next: sealed
          ? 'Unseal the server, then run the command again; every step is safe to repeat.'
          : 'Check the server (bao status / vault status) and its logs, then run the command again; every step is safe to repeat.',
      },
    )
  }
  if (status === 404) {
    return new CheckFailedError('VAULT_NOT_FOUND', `Nothing exists at ${at}${said}.`, {
      next: 'Check the mount and path in the spec, and that the secrets engine or auth method is enabled there.',
    })
  }
  return new CheckFailedError(
    'VAULT_REJECTED',
    `The server refused ${call.method} ${at} (${status})${said}.`,
    {
      next: 'Check the spec against the server configuration; nothing further was changed.',
    },
  )
}

/** The policy path that grants a call: KV v2 and LIST paths look different in policies. */
function policyPath(conn: VaultConnection, call: VaultCall): string {
  const path = decodeURIComponent(call.path)
  return conn.namespace ? `${conn.namespace.replace(/\/$/, '')}/${path}` : path
}

const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
])
const TIMEOUT = new Set(['ETIMEDOUT', 'ECONNABORTED', 'ESOCKETTIMEDOUT', 'ERR_CANCELED'])
const TLS = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|TLS|SSL|ERR_OSSL|HOSTNAME/i

function networkError(conn: VaultConnection, call: VaultCall, err: unknown): NhiError {
  const code = String((err as { code?: unknown })?.code ?? '')
  const at = where(conn, call)
  if (TIMEOUT.has(code) || /timeout/i.test(String((err as Error)?.message ?? ''))) {
    return new ExternalError(
      'vault',
      'VAULT_TIMEOUT',
      `The server did not answer ${call.method} ${at} in time.`,
      {
        next: 'Check that the server is up and reachable, then run the command again; every step is safe to repeat.',
      },
    )
  }
  if (UNREACHABLE.has(code)) {
    return new ExternalError(
      'vault',
      'VAULT_UNREACHABLE',
      `Cannot reach the server at ${conn.address} (${code}).`,
      {
        next: 'Check the address (address in nhi-recover.yaml, BAO_ADDR or VAULT_ADDR) and that the server is running, then run the command again.',
      },
    )
  }
  if (TLS.test(code)) {
    return new UserError('VAULT_TLS', `The TLS connection to ${conn.address} failed (${code}).`, {
      next: 'Set tls.caFile in nhi-recover.yaml (or BAO_CACERT / VAULT_CACERT) to the CA that signed the server certificate.',
    })
  }
  return new ExternalError(
    'vault',
    'VAULT_UNREACHABLE',
    `The request ${call.method} ${at} failed before the server answered${code ? ` (${code})` : ''}.`,
    { next: 'Check the address and the network path to the server, then run the command again.' },
  )
}

/** Reads a CA bundle for tls.caFile, with a clear error when it is missing. */
export function readCaFile(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    throw new UserError('VAULT_CA_FILE', `The CA file ${file} cannot be read.`, {
      next: 'Point tls.caFile (or BAO_CACERT / VAULT_CACERT) at a readable PEM file.',
    })
  }
}
