/**
 * database-static-role: a PostgreSQL account whose password the database secrets engine
 * manages. A database role has one password, so this mechanism cannot stage: `rotate-role`
 * changes it in PostgreSQL and in the engine at once, and the old one stops working.
 *
 * - prepare checks that postgresql-database-plugin is in the plugin catalog, records the run's
 *   marker (request id and the `last_vault_rotation` it saw) in KV v2, then calls rotate-role.
 *   The marker write is a CAS write and a claim holds for a lease (60 s), so of executors racing
 *   on one role only one rotates; the others stop with ROTATION_IN_PROGRESS. A claim left by a
 *   crash before rotate-role is taken over once its lease has run out.
 * - A re-run compares `last_vault_rotation` with the marker: newer means this request already
 *   rotated, so it does not rotate twice.
 * - verify logs in to PostgreSQL with the password from static-creds (the `pg` client).
 * - promote checks that nobody rotated since and logs in again: a re-run after a crash before
 *   verify finds the password already current and resumes at promote, so the login must not be
 *   skipped. Rollback is impossible (the old password is gone), and retire has nothing to revoke
 *   (the old password stopped working at rotation).
 *
 * The version id is the `last_vault_rotation` timestamp.
 */
import { CheckFailedError, ExternalError, UserError } from '../../../src/errors.js'
import { Secret, scrubSecrets } from '../../../src/secret.js'
import type { Target } from '../../../src/spec/schema.js'
import { apiPath, type VaultApi } from '../../vault-client.js'
import { isCasMismatch } from './kv-cell.js'
import type { Mechanism, VaultContext } from './mechanism.js'

export type DatabaseTarget = Extract<Target, { mechanism: 'database-static-role' }>

export interface DatabaseOptions {
  /** KV v2 mount that keeps the run markers (nhi-recover/state/database/…). Default: secret. */
  stateMount?: string
  /** PostgreSQL connect timeout for verification. */
  connectTimeoutMs?: number
  /** How long a claim that has not rotated yet blocks other executors (default 60 s). */
  claimLeaseMs?: number
}

const PLUGIN = 'postgresql-database-plugin'
const MARKER_FORMAT = 'nhi-recover-db-marker/v1'

interface Marker {
  format: typeof MARKER_FORMAT
  request: string
  /** last_vault_rotation before this request rotated. */
  before: string
  /** last_vault_rotation after it rotated, once known. */
  after?: string
  attempt: number
  claimed: string
}

interface Creds {
  username: string
  password: string
  lastRotation: string
}

/** Refuses clearly when the server's plugin catalog lacks the database plugin this mechanism needs. */
export async function requirePlugin(http: VaultApi, plugin = PLUGIN): Promise<void> {
  const res = await http.call({
    method: 'GET',
    path: apiPath('sys', 'plugins', 'catalog', 'database', plugin),
    // Reading the plugin catalog is a sudo-protected endpoint.
    capability: ['read', 'sudo'],
    allow: [400, 404],
  })
  if (res.status !== 200 || res.body?.data?.name !== plugin) {
    throw new UserError(
      'DB_PLUGIN_MISSING',
      `The server's plugin catalog has no ${plugin}, so it cannot manage PostgreSQL roles.`,
      {
        next: `Use a server build that includes ${plugin} (OpenBao and Vault ship it built in), or register it: bao plugin register database ${plugin}`,
      },
    )
  }
}

/** The database-static-role mechanism on one executor client. */
export function databaseStaticRole(ctx: VaultContext, opts: DatabaseOptions = {}): Mechanism<DatabaseTarget> {
  const http = ctx.http
  const claimLeaseMs = opts.claimLeaseMs ?? 60_000
  const stateMount = opts.stateMount ?? 'secret'
  const statePath = (t: DatabaseTarget) => `nhi-recover/state/database/${t.mount}/${t.role}`
  const label = (t: DatabaseTarget) => `${t.mount}/static-roles/${t.role}`

  async function staticRole(t: DatabaseTarget): Promise<{ username: string; dbName: string } | undefined> {
    const res = await http.call({
      method: 'GET',
      path: apiPath(t.mount, 'static-roles', t.role),
      capability: 'read',
      allow: [404],
    })
    if (res.status === 404) return undefined
    return { username: String(res.body?.data?.username ?? ''), dbName: String(res.body?.data?.db_name ?? '') }
  }

  async function requireRole(t: DatabaseTarget) {
    const r = await staticRole(t)
    if (!r) {
      throw new CheckFailedError('DB_ROLE_NOT_FOUND', `The static role ${label(t)} does not exist.`, {
        next: `Create it first (bao write ${t.mount}/static-roles/${t.role} db_name=… username=…), or fix the role in the spec.`,
      })
    }
    return r
  }

  async function creds(t: DatabaseTarget): Promise<Creds> {
    const res = await http.call({
      method: 'GET',
      path: apiPath(t.mount, 'static-creds', t.role),
      capability: 'read',
    })
    const d = res.body?.data ?? {}
    if (typeof d.password === 'string') new Secret(d.password) // registers the value for scrubbing
    return {
      username: String(d.username ?? ''),
      password: String(d.password ?? ''),
      lastRotation: String(d.last_vault_rotation ?? ''),
    }
  }

  async function readMarker(t: DatabaseTarget): Promise<{ marker?: Marker; version: number }> {
    const res = await http.call({
      method: 'GET',
      path: apiPath(stateMount, 'data', statePath(t)),
      capability: 'read',
      allow: [404],
    })
    const version = Number(res.body?.data?.metadata?.version ?? 0)
    const data = res.body?.data?.data
    if (res.status === 404 || !data || data.format !== MARKER_FORMAT) {
      // A 404 for a deleted latest version still carries its version number: CAS must use it.
      return { version }
    }
    return { marker: data as Marker, version }
  }

  /** Writes the marker with CAS; false when another executor wrote it first. */
  async function writeMarker(t: DatabaseTarget, marker: Marker, cas: number): Promise<boolean> {
    const res = await http.call({
      method: 'POST',
      path: apiPath(stateMount, 'data', statePath(t)),
      json: { data: marker, options: { cas } },
      capability: cas === 0 ? 'create' : 'update',
      allow: [400],
    })
    if (res.status === 200) return true
    if (isCasMismatch(res.errors)) return false
    throw new CheckFailedError(
      'VAULT_REJECTED',
      `The server refused the run marker at ${stateMount}/${statePath(t)}: ${res.errors.join('; ')}.`,
      {
        next: `Check that ${stateMount} is a KV version 2 mount the executor may write to.`,
      },
    )
  }

  const advanced = (now: string, before: string) => now !== before && Date.parse(now) >= Date.parse(before)

  function current(t: DatabaseTarget, c: Creds, marker: Marker | undefined) {
    const mine = marker && (marker.after === c.lastRotation || advanced(c.lastRotation, marker.before))
    return {
      id: c.lastRotation,
      stages: ['current' as const],
      created: c.lastRotation,
      ...(mine ? { requestId: marker.request } : {}),
    }
  }

  async function connectionUrl(t: DatabaseTarget, dbName: string): Promise<string> {
    const res = await http.call({
      method: 'GET',
      path: apiPath(t.mount, 'config', dbName),
      capability: 'read',
    })
    const d = res.body?.data ?? {}
    if (d.plugin_name !== PLUGIN) {
      throw new UserError(
        'DB_PLUGIN_UNSUPPORTED',
        `The connection ${t.mount}/config/${dbName} uses ${String(d.plugin_name)}; only ${PLUGIN} can be verified.`,
        {
          next: 'Use a PostgreSQL connection for database-static-role targets.',
        },
      )
    }
    const url = d.connection_details?.connection_url
    if (typeof url !== 'string' || !/^postgres(?:ql)?:\/\//.test(url)) {
      throw new UserError(
        'DB_CONNECTION_URL',
        `The connection ${t.mount}/config/${dbName} has no postgresql:// connection_url to verify with.`,
        {
          next: 'Configure connection_url as postgresql://{{username}}:{{password}}@host:port/db.',
        },
      )
    }
    return url
  }

  const self: Mechanism<DatabaseTarget> = {
    async describe(t) {
      const role = await staticRole(t)
      if (!role) return { exists: false, versions: [] }
      const [c, m] = await Promise.all([creds(t), readMarker(t)])
      return { exists: true, versions: [current(t, c, m.marker)] }
    },

    async prepare(t, req) {
      await requirePlugin(http)
      await requireRole(t)
      const [c, m] = await Promise.all([creds(t), readMarker(t)])
      if (m.marker?.request === req.requestId && advanced(c.lastRotation, m.marker.before)) {
        return current(t, c, m.marker) // this request rotated already: never twice
      }
      // A claim that has not rotated yet may be a live executor between its claim and rotate-role,
      // or a dead one: it is only taken over once its lease ran out, so nobody rotates twice.
      if (m.marker && !advanced(c.lastRotation, m.marker.before)) {
        const age = Date.now() - Date.parse(m.marker.claimed)
        if (age >= 0 && age < claimLeaseMs) {
          const wait = Math.ceil((claimLeaseMs - age) / 1000)
          throw new CheckFailedError(
            'ROTATION_IN_PROGRESS',
            `Request ${m.marker.request} claimed the rotation of ${label(t)} ${Math.floor(age / 1000)} s ago and has not rotated yet.`,
            {
              next: `If that executor is still running, let it finish; otherwise run the request again in ${wait} s, when its claim expires and is taken over.`,
            },
          )
        }
      }
      const marker: Marker = {
        format: MARKER_FORMAT,
        request: req.requestId,
        before: c.lastRotation,
        attempt: (m.marker?.request === req.requestId ? m.marker.attempt : 0) + 1,
        claimed: new Date().toISOString(),
      }
      if (!(await writeMarker(t, marker, m.version))) {
        throw new CheckFailedError(
          'ROTATION_IN_PROGRESS',
          `Another executor is rotating ${label(t)} right now.`,
          {
            next: 'Wait for it to finish, then run the request again; it will find the rotation done.',
          },
        )
      }
      await http.call({ method: 'POST', path: apiPath(t.mount, 'rotate-role', t.role), capability: 'update' })
      const after = await creds(t)
      if (!advanced(after.lastRotation, marker.before)) {
        throw new ExternalError(
          'vault',
          'DB_ROTATION_NOT_SEEN',
          `rotate-role on ${label(t)} returned, but last_vault_rotation did not move.`,
          {
            next: 'Check the database secrets engine logs, then run the request again.',
          },
        )
      }
      // Best effort: the marker's `before` already proves the rotation on a re-run.
      await writeMarker(t, { ...marker, after: after.lastRotation }, m.version + 1)
      return current(t, after, { ...marker, after: after.lastRotation })
    },

    async verify(t, req) {
      const role = await requireRole(t)
      const c = await creds(t)
      if (c.lastRotation !== req.versionId) {
        throw new CheckFailedError(
          'VERSION_NOT_FOUND',
          `${label(t)} was rotated again since version ${req.versionId} (now ${c.lastRotation}).`,
          {
            next: 'Run the request again; it verifies the password in force.',
          },
        )
      }
      const template = await connectionUrl(t, role.dbName)
      const connectionString = template
        .replaceAll('{{username}}', encodeURIComponent(c.username))
        .replaceAll('{{password}}', encodeURIComponent(c.password))
      new Secret(connectionString)
      const { default: pg } = await import('pg')
      const client = new pg.Client({
        connectionString,
        connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
      })
      try {
        await client.connect()
        const r = await client.query<{ user: string }>('SELECT current_user AS user')
        if (r.rows[0]?.user !== c.username)
          throw new Error(`logged in as ${r.rows[0]?.user}, not ${c.username}`)
      } catch (err) {
        const code = String((err as { code?: unknown }).code ?? '')
        const why = scrubSecrets(String((err as Error).message ?? err)).slice(0, 200)
        if (
          /^(ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|ECONNRESET)$/.test(code) ||
          /timeout/i.test(why)
        ) {
          throw new ExternalError(
            'postgresql',
            'DB_UNREACHABLE',
            `PostgreSQL for ${label(t)} could not be reached to verify the new password (${code || why}).`,
            {
              next: 'Check that the database is up and reachable from the executor, then run the request again.',
            },
          )
        }
        throw new CheckFailedError(
          'VERIFY_FAILED',
          `Logging in to PostgreSQL as ${c.username} with the new password failed: ${why}.`,
          {
            next: 'Check the static role and the database; the password in force is the one the engine reports.',
          },
        )
      } finally {
        await client.end().catch(() => undefined)
      }
    },

    async read(t, versionId) {
      const c = await creds(t)
      if (c.lastRotation !== versionId) {
        throw new CheckFailedError(
          'VERSION_NOT_FOUND',
          `Only the password in force (${c.lastRotation}) of ${label(t)} can be read, not ${versionId}.`,
        )
      }
      return new Secret(c.password)
    },

    async promote(t, req) {
      // rotate-role already made the new password current; check nobody rotated since.
      const c = await creds(t)
      if (c.lastRotation !== req.versionId) {
        throw new CheckFailedError(
          'CURRENT_CHANGED',
          `${label(t)} was rotated again since version ${req.versionId} (now ${c.lastRotation}).`,
          {
            next: 'Check who rotated it (a rotation_period, or another executor) before running the request again.',
          },
        )
      }
      // A re-run after a crash between prepare and verify finds the password current and
      // resumes at promote: log in here too, so an unverified password never counts as done.
      await self.verify(t, req)
    },

    async discard() {
      // Nothing is staged: the rotation happened at prepare and cannot be taken back.
    },

    async rollback(t) {
      throw new CheckFailedError(
        'NO_PREVIOUS_VERSION',
        `${label(t)} keeps no previous password: rotate-role replaced it in the database.`,
        {
          next: 'Recover with a new rotation instead.',
        },
      )
    },

    async retire(t, req) {
      const c = await creds(t)
      if (c.lastRotation === req.versionId) {
        throw new CheckFailedError(
          'RETIRE_CURRENT',
          `Refusing to retire the password in force of ${label(t)}.`,
        )
      }
      // An older password stopped working when it was rotated: nothing left to revoke.
    },
  }
  return self
}
