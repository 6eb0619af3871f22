/**
 * approle-secret-id: the credential of a service account that logs in with AppRole.
 *
 * AppRole has no "current" secret-id: every unexpired one works. What makes one current is
 * that the consumer reads it from the KV v2 secret `deliverTo`, so the stages live there, by
 * the rules of kv-cell.ts, and a version's id is its secret-id accessor (never the secret-id):
 *
 * - prepare generates a secret-id whose metadata carries the request id and stages
 *   {secret_id, secret_id_accessor} in the staging secret (the value is only returned once, so
 *   it must be kept before anything else can fail).
 * - verify logs in with role-id + secret-id on a separate client and revokes the token again.
 * - promote CAS-writes the staged pair to deliverTo.
 * - retire destroys the accessor of an old secret-id; never the delivered one.
 *
 * A crash between generating and staging leaves a secret-id whose value nobody holds. It is
 * recognised by its metadata and destroyed when the request promotes or discards.
 */
import { CheckFailedError } from '../../../src/errors.js'
import { Secret } from '../../../src/secret.js'
import type { Stage, VersionInfo } from '../../../src/engine/secret-store.js'
import type { Target } from '../../../src/spec/schema.js'
import { apiPath } from '../../vault-client.js'
import { KvCell, type KvSnapshot } from './kv-cell.js'
import type { Mechanism, VaultContext } from './mechanism.js'

export type AppRoleTarget = Extract<Target, { mechanism: 'approle-secret-id' }>

/** The secret-id metadata key that names the request which generated it. */
export const REQUEST_METADATA = 'nhi_recover_request'

interface SecretIdInfo {
  accessor: string
  created: string
  request?: string
  numUses: number
}

/** The approle-secret-id mechanism on one executor client. */
export function approleSecretId(ctx: VaultContext): Mechanism<AppRoleTarget> {
  const http = ctx.http
  const cell = (t: AppRoleTarget) => new KvCell(http, t.deliverTo.mount, t.deliverTo.path)
  const role = (t: AppRoleTarget, ...rest: string[]) => apiPath('auth', t.mount, 'role', t.role, ...rest)

  async function accessors(t: AppRoleTarget): Promise<string[]> {
    const res = await http.call({
      method: 'LIST',
      path: role(t, 'secret-id'),
      capability: 'list',
      allow: [404],
    })
    const keys = res.body?.data?.keys
    return Array.isArray(keys) ? keys.map(String) : []
  }

  async function lookup(t: AppRoleTarget, accessor: string): Promise<SecretIdInfo | undefined> {
    const res = await http.call({
      method: 'POST',
      path: role(t, 'secret-id-accessor', 'lookup'),
      json: { secret_id_accessor: accessor },
      capability: 'update',
      allow: [404],
    })
    const d = res.body?.data
    if (res.status === 404 || !d || d.error) return undefined
    const request = d.metadata?.[REQUEST_METADATA]
    return {
      accessor,
      created: String(d.creation_time ?? ''),
      numUses: Number(d.secret_id_num_uses ?? 0),
      ...(typeof request === 'string' ? { request } : {}),
    }
  }

  async function lookupAll(t: AppRoleTarget): Promise<SecretIdInfo[]> {
    const out: SecretIdInfo[] = []
    const list = await accessors(t)
    // A few lookups at a time: roles rarely hold many secret-ids, but some hold hundreds.
    for (let i = 0; i < list.length; i += 8) {
      const batch = await Promise.all(list.slice(i, i + 8).map((a) => lookup(t, a)))
      for (const x of batch) if (x) out.push(x)
    }
    return out
  }

  async function destroyAccessor(t: AppRoleTarget, accessor: string): Promise<void> {
    const res = await http.call({
      method: 'POST',
      path: role(t, 'secret-id-accessor', 'destroy'),
      json: { secret_id_accessor: accessor },
      capability: 'update',
      allow: [400, 404, 500],
    })
    // Destroying what is already gone answers "failed to find accessor entry": that is done, not an error.
    if (res.status !== 200 && !res.errors.some((e) => /failed to find accessor/i.test(e))) {
      throw new CheckFailedError(
        'APPROLE_DESTROY_FAILED',
        `Destroying secret-id accessor ${accessor} of role ${t.role} failed${res.errors.length ? `: ${res.errors.join('; ')}` : ''}.`,
        { next: 'Run the request again; destroying is safe to repeat.' },
      )
    }
  }

  /** Destroys secret-ids this request generated that were never delivered (lost in a crash or a race). */
  async function destroyOrphans(t: AppRoleTarget, requestId: string, keep: Set<string>): Promise<void> {
    for (const s of await lookupAll(t)) {
      if (s.request === requestId && !keep.has(s.accessor)) await destroyAccessor(t, s.accessor)
    }
  }

  /** The accessor delivered in KV version n, from its marker or, for a version written by hand, its data. */
  async function accessorOf(c: KvCell, snap: KvSnapshot, n: number): Promise<string | undefined> {
    const mark = c.mark(snap.meta, n)
    if (mark?.ref) return mark.ref
    if (snap.landed && snap.staged && snap.staged.base + 1 === n) return snap.staged.ref
    const data = await c.readVersion(n)
    const a = data?.secret_id_accessor
    return typeof a === 'string' ? a : undefined
  }

  /** The stages of each accessor, from the deliverTo secret. */
  async function stagesOf(c: KvCell, snap: KvSnapshot) {
    const current =
      snap.meta && snap.meta.current > 0 ? await accessorOf(c, snap, snap.meta.current) : undefined
    const prevN = c.previous(snap)
    const previous = prevN !== undefined ? await accessorOf(c, snap, prevN) : undefined
    const pending = c.pendingId(snap) !== undefined ? snap.staged?.ref : undefined
    return { current, previous, pending }
  }

  /** The secret-id of an accessor: staged while pending, else from the KV version that delivered it. */
  async function secretIdOf(c: KvCell, snap: KvSnapshot, accessor: string): Promise<string | undefined> {
    const s = snap.staged
    if (s?.ref === accessor && typeof s.data?.secret_id === 'string') return s.data.secret_id
    if (!snap.meta) return undefined
    for (let n = snap.meta.current; n > 0 && n > snap.meta.current - 12; n--) {
      const v = snap.meta.versions.get(n)
      if (!v || v.deleted || v.destroyed) continue
      if ((await accessorOf(c, snap, n)) !== accessor) continue
      const data = await c.readVersion(n)
      if (typeof data?.secret_id === 'string') return data.secret_id
    }
    return undefined
  }

  return {
    async describe(t) {
      const c = cell(t)
      const [snap, ids] = await Promise.all([c.snapshot(), lookupAll(t)])
      const st = await stagesOf(c, snap)
      const stagesFor = (a: string): Stage[] =>
        a === st.current
          ? ['current']
          : a === st.pending
            ? ['pending']
            : a === st.previous
              ? ['previous']
              : []
      const versions: VersionInfo[] = ids.map((s) => ({
        id: s.accessor,
        stages: stagesFor(s.accessor),
        created: s.created,
        ...(s.request ? { requestId: s.request } : {}),
      }))
      // A delivered secret-id whose accessor is gone was destroyed or expired: it is retired.
      for (const a of [st.current, st.previous]) {
        if (a && !versions.some((v) => v.id === a)) {
          versions.push({ id: a, stages: a === st.current ? ['current'] : [], created: '', retired: true })
        }
      }
      return { exists: ids.length > 0 || (snap.meta?.current ?? 0) > 0, versions }
    },

    async prepare(t, req) {
      // AppRole issues the secret-id itself; a generated value, if the engine passes one, is not used.
      const c = cell(t)
      let issued: string | undefined
      const { snap } = await c.prepare(
        req.requestId,
        async () => {
          const res = await http.call({
            method: 'POST',
            path: role(t, 'secret-id'),
            json: { metadata: JSON.stringify({ [REQUEST_METADATA]: req.requestId }) },
            capability: 'update',
          })
          const secretId = res.body?.data?.secret_id
          const accessor = res.body?.data?.secret_id_accessor
          if (typeof secretId !== 'string' || typeof accessor !== 'string') {
            throw new CheckFailedError(
              'APPROLE_NO_SECRET_ID',
              `Role ${t.role} at auth/${t.mount} returned no secret-id.`,
            )
          }
          new Secret(secretId) // registers the value for scrubbing
          issued = accessor
          return {
            kind: 'rotate',
            data: { secret_id: secretId, secret_id_accessor: accessor },
            ref: accessor,
          }
        },
        async (lost) => {
          if (lost.ref) await destroyAccessor(t, lost.ref)
        },
      )
      const st = await stagesOf(c, snap)
      const mine = snap.staged?.request === req.requestId ? snap.staged.ref : undefined
      const accessor =
        mine ?? issued ?? (await accessorOf(c, snap, c.versionOf(snap.meta, req.requestId) ?? 0))
      if (!accessor)
        throw new CheckFailedError(
          'VERSION_NOT_FOUND',
          `Request ${req.requestId} has no secret-id for role ${t.role}.`,
        )
      const info = await lookup(t, accessor)
      return {
        id: accessor,
        stages: accessor === st.current ? ['current'] : accessor === st.previous ? ['previous'] : ['pending'],
        created: info?.created ?? snap.staged?.created ?? new Date().toISOString(),
        requestId: req.requestId,
      }
    },

    async verify(t, req) {
      const c = cell(t)
      const snap = await c.snapshot()
      const secretId = await secretIdOf(c, snap, req.versionId)
      const info = await lookup(t, req.versionId)
      if (!secretId || !info) {
        throw new CheckFailedError(
          'VERIFY_FAILED',
          `Secret-id accessor ${req.versionId} of role ${t.role} does not exist or is not delivered.`,
          {
            next: 'Run the request again from prepare; the delivered secret-id was not changed.',
          },
        )
      }
      const roleId = await http.call({ method: 'GET', path: role(t, 'role-id'), capability: 'read' })
      if (info.numUses === 1) {
        // A login would use up a single-use secret-id; the lookup above proved it exists and is unexpired.
        return
      }
      const machine = await http.anonymous()
      const res = await machine.call({
        method: 'POST',
        path: apiPath('auth', t.mount, 'login'),
        json: { role_id: roleId.body?.data?.role_id, secret_id: secretId },
        capability: 'update',
        allow: [400, 401, 403],
      })
      const token = res.body?.auth?.client_token
      if (res.status !== 200 || typeof token !== 'string') {
        throw new CheckFailedError(
          'VERIFY_FAILED',
          `An AppRole login of role ${t.role} with secret-id accessor ${req.versionId} failed${res.errors.length ? `: ${res.errors.join('; ')}` : ''}.`,
          {
            next: 'Check the role (bound CIDRs, policies); the delivered secret-id was not changed.',
          },
        )
      }
      // The check's own token is not needed: revoke it at once.
      await machine.call({
        method: 'POST',
        path: apiPath('auth', 'token', 'revoke-self'),
        capability: 'update',
        token: new Secret(token),
        allow: [400, 403],
      })
    },

    async read(t, versionId) {
      const c = cell(t)
      const value = await secretIdOf(c, await c.snapshot(), versionId)
      if (!value)
        throw new CheckFailedError(
          'VERSION_NOT_FOUND',
          `No secret-id with accessor ${versionId} is staged or delivered for role ${t.role}.`,
        )
      return new Secret(value)
    },

    async promote(t, req) {
      const c = cell(t)
      const snap = await c.snapshot()
      // The KV version id of this accessor: the pending one, or the one a re-run already delivered.
      const done = c.versionOf(snap.meta, req.requestId)
      const n =
        snap.staged?.request === req.requestId && snap.staged.ref === req.versionId
          ? snap.staged.base + 1
          : done !== undefined && c.mark(snap.meta, done)?.ref === req.versionId
            ? done
            : undefined
      if (n === undefined) {
        throw new CheckFailedError(
          'VERSION_NOT_FOUND',
          `Secret-id accessor ${req.versionId} is not staged by request ${req.requestId} for ${c.label}.`,
        )
      }
      await c.promote(req.requestId, String(n), async (s) => {
        const cur = s.meta && s.meta.current > 0 ? s.meta.current : undefined
        const delivered = cur === undefined ? undefined : await accessorOf(c, s, cur)
        return delivered === req.expectedCurrent
      })
      await destroyOrphans(t, req.requestId, new Set([req.versionId]))
    },

    async discard(t, req) {
      const c = cell(t)
      const snap = await c.snapshot()
      const s = snap.staged
      if (s && s.request === req.requestId && s.ref === req.versionId && !snap.landed) {
        // Destroy first: a crash after this leaves a staged pair that no longer logs in, never a live orphan.
        await destroyAccessor(t, req.versionId)
        await c.discard(req.requestId, String(s.base + 1))
      }
      const st = await stagesOf(c, await c.snapshot())
      const keep = new Set([st.current, st.previous, st.pending].filter((a): a is string => !!a))
      await destroyOrphans(t, req.requestId, keep)
    },

    async rollback(t, req) {
      const c = cell(t)
      const snap = await c.rollback(req.requestId, async (mark) => {
        if (mark?.ref && !(await lookup(t, mark.ref))) {
          throw new CheckFailedError(
            'NO_PREVIOUS_VERSION',
            `The previous secret-id of role ${t.role} (accessor ${mark.ref}) was already destroyed.`,
            {
              next: 'Recover with a new rotation instead.',
            },
          )
        }
      })
      const accessor = c.mark(snap.meta, snap.version)?.ref ?? (await accessorOf(c, snap, snap.version))
      const info = accessor ? await lookup(t, accessor) : undefined
      return {
        id: accessor ?? `kv-${snap.version}`,
        stages: ['current'],
        created: info?.created ?? '',
        requestId: req.requestId,
      }
    },

    async retire(t, req) {
      const c = cell(t)
      const st = await stagesOf(c, await c.snapshot())
      if (req.versionId === st.current) {
        throw new CheckFailedError(
          'RETIRE_CURRENT',
          `Refusing to retire secret-id accessor ${req.versionId} of role ${t.role}: it is the delivered one.`,
        )
      }
      if (req.versionId === st.pending) {
        throw new CheckFailedError(
          'RETIRE_PENDING',
          `Secret-id accessor ${req.versionId} of role ${t.role} is pending; drop it with discard.`,
        )
      }
      if (await lookup(t, req.versionId)) await destroyAccessor(t, req.versionId)
    },
  }
}
