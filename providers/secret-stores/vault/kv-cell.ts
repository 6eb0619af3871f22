/**
 * Staged rotation on top of KV v2, which has no staging of its own. Shared by the kv-v2 and
 * approle-secret-id mechanisms (the latter delivers its secret-id through a KV secret).
 *
 * How the three stages map onto KV v2 (docs/providers.md has the long form):
 *
 * - current  = the secret's latest KV version (`current_version`): what every consumer reads.
 * - pending  = a staging secret in the same mount, at `nhi-recover/staging/<path>`. It holds the
 *              new value, the request id and `base`, the current version it was staged against.
 *              It is created with `cas: 0`, so at most one pending exists per secret, and the
 *              secret itself is untouched: the old value stays current until promote.
 *              The pending version's id is `base + 1`, the KV version promote will create, so a
 *              version keeps its id from prepare to current to previous.
 * - previous = the version named by custom_metadata `nhi-recover.previous` (set by promote).
 *
 * Promote writes the secret with `options.cas = base`. KV v2 gives a CAS write exactly version
 * base + 1, and refuses it when anyone wrote in between. Then it records the request id in
 * custom_metadata `nhi-recover.v<N>` and deletes the staging secret, in that order.
 *
 * A crash can stop promote between any two of those calls; a re-run tells the cases apart:
 * - marker `nhi-recover.v<N>` names the request: the write and the marker landed; finish cleanup.
 * - no marker, staging still there, version base + 1 exists and holds the staged value: the write
 *   landed (it was ours: the value is random), the marker did not; write it and clean up.
 * - version base + 1 exists with another value: a foreign write won the CAS race. Nothing of
 *   this request reached the secret; the pending stays staged until discard. CURRENT_CHANGED.
 * - current is still base: the write never landed; do it now.
 *
 * Rollback stages the previous version's data the same way (kind "rollback") and promotes it,
 * so it resumes by the same rules. Retire destroys a version and never the current one.
 */
import { CheckFailedError } from '../../../src/errors.js'
import type { Stage, VersionInfo } from '../../../src/engine/secret-store.js'
import { apiPath, type VaultApi } from '../../vault-client.js'

export const STAGING_PREFIX = 'nhi-recover/staging'
const STAGING_FORMAT = 'nhi-recover-staging/v1'
const MARK = 'nhi-recover.v'
const PREVIOUS = 'nhi-recover.previous'
/** Markers of versions this far below the new one are dropped (custom_metadata holds at most 64 keys). */
const KEEP_MARKS = 12

type Data = Record<string, unknown>

/** What the staging secret holds. Written once (cas 0), then only read or deleted. */
export interface Staged {
  format: typeof STAGING_FORMAT
  request: string
  kind: 'rotate' | 'rollback'
  /** The current version when staged; promote writes with cas = base. 0: the secret did not exist. */
  base: number
  /** Field mode: the new value of one field, merged into the base version's data at promote. */
  field?: string
  value?: string
  /** Full mode: the complete data of the new version. */
  data?: Data
  /** A mechanism's handle on the credential (an AppRole secret-id accessor). */
  ref?: string
  /** With kind rollback: the version whose data is restored. */
  restores?: number
  created: string
}

/** What custom_metadata `nhi-recover.v<N>` says about version N. */
export interface Mark {
  request: string
  ref?: string
  restores?: number
}

export interface KvVersionMeta {
  created: string
  deleted: boolean
  destroyed: boolean
}

export interface KvMeta {
  current: number
  versions: Map<number, KvVersionMeta>
  custom: Record<string, string>
}

/** The snapshot of one secret and its staging secret that every decision starts from. */
export interface KvSnapshot {
  meta: KvMeta | undefined
  staged: Staged | undefined
  /** Set when staged is already written as version base + 1 (a crash before its marker). */
  landed: boolean
}

export class KvCell {
  readonly http: VaultApi
  readonly mount: string
  readonly path: string

  constructor(http: VaultApi, mount: string, path: string) {
    if (
      path === STAGING_PREFIX ||
      path.startsWith(`${STAGING_PREFIX}/`) ||
      path.startsWith('nhi-recover/state/')
    ) {
      throw new CheckFailedError(
        'KV_RESERVED_PATH',
        `${mount}/${path} is inside nhi-recover's own area of the mount.`,
        {
          next: 'Choose a secret path outside nhi-recover/.',
        },
      )
    }
    this.http = http
    this.mount = mount
    this.path = path
  }

  get label(): string {
    return `${this.mount}/${this.path}`
  }

  get stagingPath(): string {
    return `${STAGING_PREFIX}/${this.path}`
  }

  // ---- reads -------------------------------------------------------------------------------

  async meta(): Promise<KvMeta | undefined> {
    const res = await this.http.call({
      method: 'GET',
      path: apiPath(this.mount, 'metadata', this.path),
      capability: 'read',
      allow: [404],
    })
    if (res.status === 404) return undefined
    const d = res.body?.data ?? {}
    const versions = new Map<number, KvVersionMeta>()
    for (const [k, v] of Object.entries((d.versions ?? {}) as Record<string, Record<string, unknown>>)) {
      versions.set(Number(k), {
        created: String(v.created_time ?? ''),
        deleted: Boolean(v.deletion_time),
        destroyed: v.destroyed === true,
      })
    }
    return {
      current: Number(d.current_version ?? 0),
      versions,
      custom: (d.custom_metadata ?? {}) as Record<string, string>,
    }
  }

  /** The data of one version, or undefined when it is gone (never written, deleted or destroyed). */
  async readVersion(version: number, path = this.path): Promise<Data | undefined> {
    const res = await this.http.call({
      method: 'GET',
      path: apiPath(this.mount, 'data', path),
      query: version > 0 ? { version } : {},
      capability: 'read',
      allow: [404],
    })
    if (res.status === 404) return undefined
    const data = res.body?.data?.data
    return data && typeof data === 'object' ? (data as Data) : undefined
  }

  /** The latest version with its custom_metadata in one call; undefined when it is missing or deleted. */
  async latest(): Promise<
    { version: number; created: string; data: Data; custom: Record<string, string> } | undefined
  > {
    const res = await this.http.call({
      method: 'GET',
      path: apiPath(this.mount, 'data', this.path),
      capability: 'read',
      allow: [404],
    })
    const d = res.body?.data
    if (res.status === 404 || !d?.data || !d.metadata) return undefined
    return {
      version: Number(d.metadata.version),
      created: String(d.metadata.created_time ?? ''),
      data: d.data as Data,
      custom: (d.metadata.custom_metadata ?? {}) as Record<string, string>,
    }
  }

  async staged(): Promise<Staged | undefined> {
    const data = await this.readVersion(0, this.stagingPath)
    if (data === undefined) return undefined
    if (data.format !== STAGING_FORMAT || typeof data.request !== 'string' || typeof data.base !== 'number') {
      throw new CheckFailedError(
        'KV_STAGING_CORRUPT',
        `The staging secret ${this.mount}/${this.stagingPath} was not written by nhi-recover.`,
        {
          next: `Inspect it; if nothing needs it, remove it with: bao kv metadata delete -mount=${this.mount} ${this.stagingPath}`,
        },
      )
    }
    return data as unknown as Staged
  }

  async snapshot(): Promise<KvSnapshot> {
    const [meta, staged] = await Promise.all([this.meta(), this.staged()])
    const landed = staged !== undefined && (await this.hasLanded(meta, staged))
    return { meta, staged, landed }
  }

  /** Whether version base + 1 exists and holds exactly what was staged. */
  async hasLanded(meta: KvMeta | undefined, staged: Staged): Promise<boolean> {
    const n = staged.base + 1
    if (!meta || meta.current < n) return false
    const v = meta.versions.get(n)
    if (!v || v.destroyed || v.deleted) return false
    const data = await this.readVersion(n)
    return data !== undefined && this.matches(data, staged)
  }

  matches(data: Data, staged: Staged): boolean {
    if (staged.field !== undefined) return data[staged.field] === staged.value
    return canonical(data) === canonical(staged.data ?? {})
  }

  // ---- stage mapping ---------------------------------------------------------------------

  /** The marker of version n, if nhi-recover wrote it. */
  mark(meta: KvMeta | undefined, n: number): Mark | undefined {
    const raw = meta?.custom[`${MARK}${n}`]
    if (!raw) return undefined
    try {
      const m = JSON.parse(raw) as Mark
      return typeof m.request === 'string' ? m : undefined
    } catch {
      return undefined
    }
  }

  /** The version a request wrote, newest first, from the markers. */
  versionOf(meta: KvMeta | undefined, requestId: string): number | undefined {
    if (!meta) return undefined
    const found = Object.keys(meta.custom)
      .filter((k) => k.startsWith(MARK))
      .map((k) => Number(k.slice(MARK.length)))
      .filter((n) => Number.isInteger(n) && this.mark(meta, n)?.request === requestId)
    return found.length ? Math.max(...found) : undefined
  }

  previous(snap: KvSnapshot): number | undefined {
    // In the crash window after the write and before the marker, previous is still implied by staging.
    if (snap.landed && snap.staged) {
      return snap.staged.kind === 'rotate' && snap.staged.base > 0 ? snap.staged.base : undefined
    }
    const p = Number(snap.meta?.custom[PREVIOUS] ?? NaN)
    if (!Number.isInteger(p) || p <= 0 || !snap.meta || p >= snap.meta.current) return undefined
    return p
  }

  /** The id the pending version goes by: base + 1, or stale-<base + 1> once a foreign write took that number. */
  pendingId(snap: KvSnapshot): string | undefined {
    const s = snap.staged
    if (!s || snap.landed) return undefined
    const n = s.base + 1
    return snap.meta && snap.meta.current >= n ? `stale-${n}` : String(n)
  }

  /** True when a pending version of the request can still be promoted: nobody wrote since it was staged. */
  isFresh(snap: KvSnapshot): boolean {
    return snap.staged !== undefined && !snap.landed && (snap.meta?.current ?? 0) === snap.staged.base
  }

  /** Every version with its stages; values are never read except to recognise a landed write. */
  versions(snap: KvSnapshot): VersionInfo[] {
    const out: VersionInfo[] = []
    const meta = snap.meta
    const previous = this.previous(snap)
    if (meta) {
      for (const [n, v] of [...meta.versions.entries()].sort((a, b) => a[0] - b[0])) {
        const stages: Stage[] = []
        if (n === meta.current) stages.push('current')
        else if (n === previous && !v.destroyed && !v.deleted) stages.push('previous')
        const mark = this.mark(meta, n)
        const request =
          mark?.request ??
          (snap.landed && snap.staged && n === snap.staged.base + 1 ? snap.staged.request : undefined)
        out.push({
          id: String(n),
          stages,
          created: v.created,
          ...(request ? { requestId: request } : {}),
          ...(v.destroyed || v.deleted ? { retired: true } : {}),
        })
      }
    }
    const pid = this.pendingId(snap)
    if (pid && snap.staged) {
      out.push({ id: pid, stages: ['pending'], created: snap.staged.created, requestId: snap.staged.request })
    }
    return out
  }

  /** The info of version n as the snapshot sees it. */
  info(snap: KvSnapshot, n: number): VersionInfo {
    const found = this.versions(snap).find((v) => v.id === String(n))
    if (!found)
      throw new CheckFailedError('VERSION_NOT_FOUND', `Version ${n} of ${this.label} does not exist.`)
    return found
  }

  // ---- writes ------------------------------------------------------------------------------

  /** Creates the staging secret; false when one exists already (someone staged first). */
  async stage(staged: Staged): Promise<boolean> {
    const res = await this.http.call({
      method: 'POST',
      path: apiPath(this.mount, 'data', this.stagingPath),
      json: { data: staged, options: { cas: 0 } },
      capability: 'create',
      allow: [400],
    })
    if (res.status === 200) return true
    if (isCasMismatch(res.errors)) return false
    throw rejected(this, 'stage the new version', res.errors)
  }

  /** Removes the staging secret with all its versions. Idempotent. */
  async unstage(): Promise<void> {
    await this.http.call({
      method: 'DELETE',
      path: apiPath(this.mount, 'metadata', this.stagingPath),
      capability: 'delete',
      allow: [404],
    })
  }

  /** Writes a new version with cas = base; 'cas' when someone else wrote first. */
  async write(data: Data, cas: number): Promise<number | 'cas'> {
    const res = await this.http.call({
      method: 'POST',
      path: apiPath(this.mount, 'data', this.path),
      json: { data, options: { cas } },
      capability: cas === 0 ? 'create' : 'update',
      allow: [400],
    })
    if (res.status === 200) return Number(res.body?.data?.version)
    if (isCasMismatch(res.errors)) return 'cas'
    throw rejected(this, 'write the new version', res.errors)
  }

  /** Merges keys into custom_metadata (null removes one); other keys stay as they are. */
  async patchCustom(patch: Record<string, string | null>): Promise<void> {
    await this.http.call({
      method: 'PATCH',
      path: apiPath(this.mount, 'metadata', this.path),
      json: { custom_metadata: patch },
      capability: 'patch',
    })
  }

  async destroy(n: number): Promise<void> {
    await this.http.call({
      method: 'POST',
      path: apiPath(this.mount, 'destroy', this.path),
      json: { versions: [n] },
      capability: 'update',
    })
  }

  // ---- the staged steps ----------------------------------------------------------------------

  /**
   * Stages `make()` as pending unless the request already has a pending or promoted version.
   * Returns the request's version. Refuses another request's pending (FOREIGN_PENDING) and a
   * pending of this request that a foreign write made stale (CURRENT_CHANGED).
   */
  async prepare(
    requestId: string,
    make: (
      base: number,
      meta: KvMeta | undefined,
    ) => Promise<Omit<Staged, 'format' | 'request' | 'base' | 'created'>>,
    onLost?: (staged: Staged) => Promise<void>,
    /** make() has no side effect: try to stage before reading the staging secret (one call less). */
    optimistic = false,
  ): Promise<{ snap: KvSnapshot; id: string }> {
    for (let attempt = 0; attempt < 2; attempt++) {
      // Optimistic: a missing staging secret is the common case, and `cas: 0` finds any other.
      const snap: KvSnapshot =
        optimistic && attempt === 0
          ? { meta: await this.meta(), staged: undefined, landed: false }
          : await this.snapshot()
      const done = this.versionOf(snap.meta, requestId)
      if (done !== undefined) return { snap: optimistic ? await this.snapshot() : snap, id: String(done) }
      if (snap.staged) {
        const s = snap.staged
        if (s.request !== requestId) throw foreignPending(this, s)
        if (snap.landed) return { snap, id: String(s.base + 1) }
        if (!this.isFresh(snap)) throw staleCurrent(this, s, snap.meta?.current ?? 0)
        return { snap, id: String(s.base + 1) }
      }
      const base = snap.meta?.current ?? 0
      if (base > 0) {
        const cur = snap.meta?.versions.get(base)
        if (!cur || cur.deleted || cur.destroyed) {
          throw new CheckFailedError(
            'KV_CURRENT_DELETED',
            `The current version ${base} of ${this.label} is deleted or destroyed, so a new version cannot be based on it.`,
            {
              next: `Undelete it (bao kv undelete -mount=${this.mount} -versions=${base} ${this.path}) or write a new version by hand, then run the request again.`,
            },
          )
        }
      }
      const part = await make(base, snap.meta)
      const staged: Staged = {
        format: STAGING_FORMAT,
        request: requestId,
        base,
        created: new Date().toISOString(),
        ...part,
      }
      if (await this.stage(staged)) {
        return { snap: { meta: snap.meta, staged, landed: false }, id: String(base + 1) }
      }
      // Someone staged first (or, optimistic, a staging secret existed): ours never became visible.
      await onLost?.(staged)
    }
    const snap = await this.snapshot()
    if (snap.staged && snap.staged.request !== requestId) throw foreignPending(this, snap.staged)
    throw new CheckFailedError(
      'KV_STAGING_RACE',
      `Staging a new version of ${this.label} kept racing with another writer.`,
      {
        next: 'Run the request again.',
      },
    )
  }

  /**
   * Makes the request's staged version current with a CAS write at `base`, then marks it and
   * removes the staging secret. `expected(meta)` says whether the current version is still the
   * one the caller expects. Safe to repeat after a crash at any call.
   */
  async promote(
    requestId: string,
    versionId: string,
    expected: (snap: KvSnapshot) => boolean | Promise<boolean>,
  ): Promise<number> {
    const fast = await this.promoteFast(requestId, versionId, expected)
    if (fast !== undefined) return fast
    let snap = await this.snapshot()
    const marked = Number(versionId)
    if (Number.isInteger(marked) && this.mark(snap.meta, marked)?.request === requestId) {
      if (snap.meta?.current !== marked) throw replacedAfter(this, marked, snap.meta?.current ?? 0)
      if (snap.staged?.request === requestId) await this.unstage()
      return marked
    }
    const s = snap.staged
    if (!s) {
      throw new CheckFailedError(
        'VERSION_NOT_FOUND',
        `${this.label} has no pending version ${versionId} of request ${requestId}.`,
        {
          next: 'Run the request from prepare again.',
        },
      )
    }
    if (s.request !== requestId) throw foreignPending(this, s)
    const n = s.base + 1
    if (versionId !== String(n) && versionId !== `stale-${n}`) {
      throw new CheckFailedError(
        'VERSION_NOT_FOUND',
        `The pending version of ${this.label} is ${n}, not ${versionId}.`,
      )
    }
    if (!snap.landed) {
      if ((snap.meta?.current ?? 0) !== s.base) throw staleCurrent(this, s, snap.meta?.current ?? 0)
      if (!(await expected(snap))) throw expectedChanged(this, s.base)
      let data: Data
      if (s.field !== undefined) {
        const baseData = s.base > 0 ? await this.readVersion(s.base) : {}
        if (baseData === undefined) throw staleCurrent(this, s, s.base)
        data = { ...baseData, [s.field]: s.value }
      } else {
        data = s.data ?? {}
      }
      const wrote = await this.write(data, s.base)
      if (wrote === n) {
        // The CAS write at base created exactly version n with our data: no need to read it back here.
        snap = { ...snap, landed: true, meta: snap.meta && { ...snap.meta, current: n } }
      } else {
        // Lost the CAS race: it may still be ours (a second executor of this request) or foreign.
        snap = await this.snapshot()
        if (!snap.landed) throw staleCurrent(this, s, snap.meta?.current ?? 0)
      }
    }
    await this.finish(snap, s)
    if (snap.meta && snap.meta.current > n) throw replacedAfter(this, n, snap.meta.current)
    return n
  }

  /**
   * The common case in two reads instead of four: the latest version is still the staged base,
   * so its data is the base data. Anything else (a re-run, a race, a new secret) returns
   * undefined and takes the general path above, which decides from a full snapshot.
   */
  private async promoteFast(
    requestId: string,
    versionId: string,
    expected: (snap: KvSnapshot) => boolean | Promise<boolean>,
  ): Promise<number | undefined> {
    const [latest, s] = await Promise.all([this.latest(), this.staged()])
    if (!latest || !s || s.request !== requestId || s.base <= 0 || latest.version !== s.base) return undefined
    const n = s.base + 1
    if (versionId !== String(n)) return undefined
    const meta: KvMeta = {
      current: latest.version,
      versions: new Map([[latest.version, { created: latest.created, deleted: false, destroyed: false }]]),
      custom: latest.custom,
    }
    const snap: KvSnapshot = { meta, staged: s, landed: false }
    if (!(await expected(snap))) throw expectedChanged(this, s.base)
    const data = s.field !== undefined ? { ...latest.data, [s.field]: s.value } : (s.data ?? {})
    if ((await this.write(data, s.base)) !== n) return undefined
    await this.finish({ meta: { ...meta, current: n }, staged: s, landed: true }, s)
    return n
  }

  /** Records the marker and the previous pointer for a landed staged version, then unstages. */
  async finish(snap: KvSnapshot, s: Staged): Promise<void> {
    const n = s.base + 1
    const mark: Mark = {
      request: s.request,
      ...(s.ref ? { ref: s.ref } : {}),
      ...(s.restores ? { restores: s.restores } : {}),
    }
    const patch: Record<string, string | null> = {
      [`${MARK}${n}`]: JSON.stringify(mark),
      [PREVIOUS]: s.kind === 'rotate' && s.base > 0 ? String(s.base) : null,
    }
    for (const k of Object.keys(snap.meta?.custom ?? {})) {
      const v = Number(k.slice(MARK.length))
      if (k.startsWith(MARK) && Number.isInteger(v) && v <= n - KEEP_MARKS) patch[k] = null
    }
    await this.patchCustom(patch)
    await this.unstage()
  }

  /** Drops the request's pending version. Refuses when it is already written (use rollback). */
  async discard(requestId: string, versionId: string): Promise<Staged | undefined> {
    const snap = await this.snapshot()
    const s = snap.staged
    if (!s || s.request !== requestId) return undefined
    const n = s.base + 1
    if (versionId !== String(n) && versionId !== `stale-${n}`) return undefined
    if (snap.landed) {
      throw new CheckFailedError(
        'ALREADY_PROMOTED',
        `Version ${n} of ${this.label} is already written as the current version; it cannot be discarded.`,
        {
          next: 'Finish the rotation (run the request again) or roll it back.',
        },
      )
    }
    await this.unstage()
    return s
  }

  /**
   * Restores the previous version's data as a new current version (KV v2 has no rollback
   * endpoint; `bao kv rollback` does the same). `check(previous)` may veto, e.g. when the
   * credential behind the previous version was revoked.
   */
  async rollback(
    requestId: string,
    check?: (mark: Mark | undefined) => Promise<void>,
  ): Promise<KvSnapshot & { version: number }> {
    let snap = await this.snapshot()
    const done = this.versionOf(snap.meta, requestId)
    if (done !== undefined) {
      // This request already wrote its restoring version; never roll back twice.
      if (snap.meta?.current !== done) throw replacedAfter(this, done, snap.meta?.current ?? 0)
      if (snap.staged?.request === requestId) await this.unstage()
      return { ...snap, version: done }
    }
    if (snap.staged && (snap.staged.request !== requestId || snap.staged.kind !== 'rollback')) {
      throw foreignPending(this, snap.staged)
    }
    if (!snap.staged) {
      const prev = this.previous(snap)
      const data = prev !== undefined ? await this.readVersion(prev) : undefined
      if (prev === undefined || data === undefined) {
        throw new CheckFailedError(
          'NO_PREVIOUS_VERSION',
          `${this.label} has no previous version to roll back to.`,
          {
            next: 'The previous credential was already retired or never recorded; recover with a new rotation instead.',
          },
        )
      }
      const prevMark = this.mark(snap.meta, prev)
      await check?.(prevMark)
      const staged: Staged = {
        format: STAGING_FORMAT,
        request: requestId,
        kind: 'rollback',
        base: snap.meta?.current ?? 0,
        data,
        restores: prev,
        ...(prevMark?.ref ? { ref: prevMark.ref } : {}),
        created: new Date().toISOString(),
      }
      if (!(await this.stage(staged))) {
        const now = await this.snapshot()
        if (now.staged) throw foreignPending(this, now.staged)
      }
      snap = await this.snapshot()
    }
    const s = snap.staged!
    const version = await this.promote(requestId, String(s.base + 1), () => true)
    return { ...(await this.snapshot()), version }
  }

  /** Destroys version n; never the current one. Idempotent. */
  async retire(versionId: string): Promise<void> {
    const n = Number(versionId)
    const meta = await this.meta()
    if (!Number.isInteger(n) || n <= 0 || !meta || n > meta.current) {
      throw new CheckFailedError(
        'VERSION_NOT_FOUND',
        `${this.label} has no version ${versionId} to retire.`,
        {
          next: 'A pending version is dropped with discard, not retire.',
        },
      )
    }
    if (n === meta.current) {
      throw new CheckFailedError(
        'RETIRE_CURRENT',
        `Refusing to retire version ${n} of ${this.label}: it is current.`,
      )
    }
    const v = meta.versions.get(n)
    if (!v || v.destroyed) return
    await this.destroy(n)
  }
}

export function isCasMismatch(errors: string[]): boolean {
  return errors.some((e) => /check-and-set/i.test(e))
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`
  if (value && typeof value === 'object') {
    const o = value as Record<string, unknown>
    return `{${Object.keys(o)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(value)
}

function rejected(cell: KvCell, what: string, errors: string[]): CheckFailedError {
  return new CheckFailedError(
    'VAULT_REJECTED',
    `The server refused to ${what} of ${cell.label}${errors.length ? `: ${errors.join('; ')}` : ''}.`,
    {
      next: 'Check that the mount is a KV version 2 engine and the spec names the right path.',
    },
  )
}

export function foreignPending(cell: KvCell, s: Staged): CheckFailedError {
  return new CheckFailedError(
    'FOREIGN_PENDING',
    `${cell.label} already has a pending version (${s.base + 1}) staged by request ${s.request}; refusing to overwrite it.`,
    { next: 'Let that rotation finish or discard it, then run this request again.' },
  )
}

function staleCurrent(cell: KvCell, s: Staged, current: number): CheckFailedError {
  return new CheckFailedError(
    'CURRENT_CHANGED',
    `Someone else wrote ${cell.label} during the rotation (version ${current} exists; request ${s.request} staged against version ${s.base}). Nothing of this request was written to the secret.`,
    {
      next: `Check the secret's history (bao kv metadata get -mount=${cell.mount} ${cell.path}), discard the pending version, then file the request again if it is still needed.`,
    },
  )
}

function expectedChanged(cell: KvCell, base: number): CheckFailedError {
  return new CheckFailedError(
    'CURRENT_CHANGED',
    `The current version of ${cell.label} is ${base}, not the one this rotation expected.`,
    { next: 'Someone else rotated this secret; check its history before running the request again.' },
  )
}

function replacedAfter(cell: KvCell, n: number, current: number): CheckFailedError {
  return new CheckFailedError(
    'CURRENT_CHANGED',
    `Version ${n} of ${cell.label} was promoted, but a later write (version ${current}) replaced it.`,
    {
      next: `Check the secret's history (bao kv metadata get -mount=${cell.mount} ${cell.path}) before doing anything else.`,
    },
  )
}
