/**
 * kv-v2: a static API key or password kept in one field of a KV v2 secret. The staging rules
 * are in kv-cell.ts; this module adds the field, the read-back verification and the values.
 */
import { CheckFailedError } from '../../../src/errors.js'
import { Secret } from '../../../src/secret.js'
import type { Target } from '../../../src/spec/schema.js'
import { KvCell } from './kv-cell.js'
import type { Mechanism, VaultContext } from './mechanism.js'

export type KvTarget = Extract<Target, { mechanism: 'kv-v2' }>

/** The kv-v2 mechanism on one executor client. */
export function kvV2(ctx: VaultContext): Mechanism<KvTarget> {
  const cell = (t: KvTarget) => new KvCell(ctx.http, t.mount, t.path)

  /**
   * The value of a version. A staged value answers for its own id (base + 1, or stale-<base + 1>)
   * when asked by the request that staged it; once written it equals that KV version anyway.
   * Otherwise a KV version of that number wins, and a staged value only fills a number not yet written.
   */
  async function valueOf(
    c: KvCell,
    field: string,
    versionId: string,
    requestId?: string,
  ): Promise<string | undefined> {
    const stale = versionId.startsWith('stale-')
    const n = Number(stale ? versionId.slice('stale-'.length) : versionId)
    if (!Number.isInteger(n) || n <= 0) return undefined
    const s = await c.staged()
    const ownsId = s !== undefined && s.base + 1 === n
    if (ownsId && (stale || s.request === requestId)) return s.value
    if (stale) return undefined
    const v = (await c.readVersion(n))?.[field]
    if (typeof v === 'string') return v
    return ownsId ? s.value : undefined
  }

  return {
    async describe(t) {
      const c = cell(t)
      const snap = await c.snapshot()
      return { exists: (snap.meta?.current ?? 0) > 0, versions: c.versions(snap) }
    },

    async prepare(t, req) {
      if (!req.value) {
        throw new CheckFailedError(
          'VALUE_REQUIRED',
          `kv-v2 needs a generated value to stage at ${t.mount}/${t.path}.`,
          {
            next: 'Use rotation.generator kind random for kv-v2 targets.',
          },
        )
      }
      const value = req.value.reveal()
      const c = cell(t)
      const { snap, id } = await c.prepare(
        req.requestId,
        async () => ({ kind: 'rotate', field: t.field, value }),
        undefined,
        true,
      )
      if (
        snap.staged &&
        snap.staged.field !== t.field &&
        !snap.landed &&
        snap.staged.request === req.requestId
      ) {
        throw new CheckFailedError(
          'KV_FIELD_MISMATCH',
          `The pending version of ${c.label} was staged for field ${snap.staged.field}, not ${t.field}.`,
        )
      }
      return c.info(snap, Number(id))
    },

    async verify(t, req) {
      const c = cell(t)
      const value = await valueOf(c, t.field, req.versionId, req.requestId)
      if (!value) {
        throw new CheckFailedError(
          'VERIFY_FAILED',
          `Reading back version ${req.versionId} of ${c.label} found no value in field ${t.field}.`,
          { next: 'Check the secret history; the current value was not changed by this check.' },
        )
      }
    },

    async read(t, versionId) {
      const c = cell(t)
      const value = await valueOf(c, t.field, versionId)
      if (value === undefined) {
        throw new CheckFailedError(
          'VERSION_NOT_FOUND',
          `Version ${versionId} of ${c.label} does not exist, was retired or has no field ${t.field}.`,
        )
      }
      return new Secret(value)
    },

    async promote(t, req) {
      const c = cell(t)
      await c.promote(req.requestId, req.versionId, (snap) => {
        const base = snap.staged?.base ?? 0
        return (req.expectedCurrent ?? '0') === String(base)
      })
    },

    async discard(t, req) {
      await cell(t).discard(req.requestId, req.versionId)
    },

    async rollback(t, req) {
      const c = cell(t)
      const snap = await c.rollback(req.requestId)
      return c.info(snap, snap.version)
    },

    async retire(t, req) {
      await cell(t).retire(req.versionId)
    },
  }
}
