/** Shared setup for the Vault provider tests: a store on the real server, crash injection, canaries. */
import { randomBytes } from 'node:crypto'
import { VaultSecretStore } from '../../../providers/secret-stores/vault/index.js'
import type { DatabaseOptions } from '../../../providers/secret-stores/vault/database-static-role.js'
import {
  VaultHttp,
  type VaultApi,
  type VaultCall,
  type VaultResponse,
} from '../../../providers/vault-client.js'
import { Secret } from '../../../src/secret.js'
import type { OpenBaoServer } from '../../harness/openbao.js'

export const canary = () => `CANARY-${randomBytes(12).toString('hex')}`

/** A fresh client with the root token, as a new executor process would make. */
export function rootHttp(server: OpenBaoServer, namespace?: string): Promise<VaultHttp> {
  return VaultHttp.create(
    { address: server.addr, ...(namespace ? { namespace } : {}) },
    new Secret(server.rootToken),
  )
}

/** A fresh store, optionally over a wrapped client. */
export async function freshStore(
  server: OpenBaoServer,
  wrap?: (http: VaultApi) => VaultApi,
  database?: DatabaseOptions,
): Promise<VaultSecretStore> {
  const http = await rootHttp(server)
  return new VaultSecretStore({
    name: 'bao',
    http: wrap ? wrap(http) : http,
    ...(database ? { database } : {}),
  })
}

export class SimulatedCrash extends Error {
  constructor(n: number) {
    super(`simulated crash after write ${n}`)
  }
}

const isWrite = (c: VaultCall) => c.method !== 'GET' && c.method !== 'LIST'

/**
 * Wraps a client: `crashAfterWrite: n` lets the n-th write reach the server and then throws,
 * as if the executor died right after it; `beforeCall` runs before each call (to slip in a
 * foreign write at an exact moment).
 */
export class FaultyVault implements VaultApi {
  writes = 0
  constructor(
    private readonly inner: VaultApi,
    private readonly opts: {
      crashAfterWrite?: number
      beforeCall?: (call: VaultCall, writesSoFar: number) => Promise<void>
    } = {},
  ) {}

  get connection() {
    return this.inner.connection
  }

  anonymous(): Promise<VaultApi> {
    return this.inner.anonymous()
  }

  async call(call: VaultCall): Promise<VaultResponse> {
    await this.opts.beforeCall?.(call, this.writes)
    const res = await this.inner.call(call)
    if (isWrite(call)) {
      this.writes++
      if (this.opts.crashAfterWrite === this.writes) throw new SimulatedCrash(this.writes)
    }
    return res
  }
}

/** Raw API access with the root token, for setting up and inspecting the server. */
export async function api(
  server: OpenBaoServer,
  method: string,
  path: string,
  body?: unknown,
  namespace?: string,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<{ status: number; json: any }> {
  const res = await fetch(`${server.addr}/v1/${path}`, {
    method,
    headers: {
      'X-Vault-Token': server.rootToken,
      'Content-Type': 'application/json',
      ...(namespace ? { 'X-Vault-Namespace': namespace } : {}),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const text = await res.text()
  return { status: res.status, json: text ? JSON.parse(text) : {} }
}

/** The latest data of a KV v2 secret, as a consumer reads it. */
export async function kvLatest(
  server: OpenBaoServer,
  mount: string,
  path: string,
): Promise<Record<string, string>> {
  const r = await api(server, 'GET', `${mount}/data/${path}`)
  if (r.status !== 200) throw new Error(`kv read ${mount}/${path}: ${r.status}`)
  return r.json.data.data
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function kvMeta(server: OpenBaoServer, mount: string, path: string): Promise<any> {
  const r = await api(server, 'GET', `${mount}/metadata/${path}`)
  return r.status === 200 ? r.json.data : undefined
}

/** Every message, next step and JSON form of an error, for canary scans. */
export function errorText(err: unknown): string {
  const e = err as { message?: string; next?: string; stack?: string; code?: string }
  return [String(err), e.message, e.next, e.stack, e.code, JSON.stringify(err)].join('\n')
}

/** Runs `fn`, returns the error it threw (the test fails when it does not throw). */
export async function caught(fn: () => Promise<unknown>): Promise<Error & { code?: string; next?: string }> {
  try {
    await fn()
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected an error, got none')
}
