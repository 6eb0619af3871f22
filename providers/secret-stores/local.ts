/**
 * The local provider: a versioned secret store on disk, encrypted at rest with AES-256-GCM.
 * One JSON file per secret path (named by the path's sha256, so no path can traverse), written
 * atomically (temp file, fsync, rename) under a file lock, so concurrent processes cannot
 * corrupt it. Same staged semantics as the real providers.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, statSync } from 'node:fs'
import { open, rename } from 'node:fs/promises'
import { dirname, isAbsolute, join } from 'node:path'
import lockfile from 'proper-lockfile'
import { CheckFailedError, ExternalError, UserError } from '../../src/errors.js'
import { Secret } from '../../src/secret.js'
import type { SecretStore, StageRequest, TargetState, VersionInfo } from '../../src/engine/secret-store.js'
import type { ProviderConfig, Target } from '../../src/spec/schema.js'

const FORMAT = 'nhi-recover-local-store/v1'

interface StoredVersion extends VersionInfo {
  /** The rollback request that demoted this version, so a repeat of it changes nothing. */
  rolledBackBy?: string
  iv?: string
  tag?: string
  data?: string
}

interface StoredSecret {
  format: typeof FORMAT
  path: string
  nextVersion: number
  versions: StoredVersion[]
}

type LocalConfig = Extract<ProviderConfig, { kind: 'local' }>

/** Loads the 32-byte store key from the configured env var, else from the key file (mode 0600 only). */
export function loadLocalKey(
  config: LocalConfig,
  repoRoot: string,
  env: NodeJS.ProcessEnv = process.env,
): Buffer {
  const fromEnv = env[config.keyEnv]
  if (fromEnv) {
    const key = Buffer.from(fromEnv.trim(), 'base64')
    if (key.length !== 32) {
      throw new UserError(
        'LOCAL_KEY_INVALID',
        `${config.keyEnv} must hold 32 bytes in base64 (it decodes to ${key.length}).`,
        {
          next: 'Generate a key with: openssl rand -base64 32',
        },
      )
    }
    return key
  }
  if (!config.keyFile) {
    throw new UserError(
      'LOCAL_KEY_MISSING',
      `The local store key is not set: ${config.keyEnv} is empty and no keyFile is configured.`,
      {
        next: `Set ${config.keyEnv} to a base64 key (openssl rand -base64 32), or set keyFile in nhi-recover.yaml.`,
      },
    )
  }
  const file = isAbsolute(config.keyFile) ? config.keyFile : join(repoRoot, config.keyFile)
  let st
  try {
    st = statSync(file)
  } catch {
    throw new UserError('LOCAL_KEY_MISSING', `The local store key file ${config.keyFile} does not exist.`, {
      next: `Create it with: (umask 077; openssl rand -base64 32 > ${config.keyFile})`,
    })
  }
  if ((st.mode & 0o077) !== 0) {
    throw new UserError(
      'LOCAL_KEY_PERMISSIONS',
      `The local store key file ${config.keyFile} is readable by others (mode ${(st.mode & 0o777).toString(8)}).`,
      {
        next: `Restrict it: chmod 600 ${config.keyFile}`,
      },
    )
  }
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64')
  if (key.length !== 32) {
    throw new UserError(
      'LOCAL_KEY_INVALID',
      `The local store key file ${config.keyFile} must hold 32 bytes in base64.`,
      {
        next: 'Generate a key with: openssl rand -base64 32',
      },
    )
  }
  return key
}

export interface LocalStoreOptions {
  name: string
  /** Absolute directory of the store. */
  dir: string
  key: Buffer
  now?: () => Date
}

export class LocalSecretStore implements SecretStore {
  readonly name: string
  readonly #dir: string
  readonly #key: Buffer
  readonly #now: () => Date

  constructor(opts: LocalStoreOptions) {
    this.name = opts.name
    this.#dir = opts.dir
    this.#key = opts.key
    this.#now = opts.now ?? (() => new Date())
  }

  async describe(target: Target): Promise<TargetState> {
    const stored = this.#load(pathOf(target))
    return { exists: stored !== undefined, versions: (stored?.versions ?? []).map(publicInfo) }
  }

  /** Creates a secret's first version as current. For seeding (demo, tests), not for rotation. */
  async put(path: string, value: Secret, requestId?: string): Promise<VersionInfo> {
    return this.#update(path, (s) => {
      const v = this.#newVersion(s, value, requestId)
      for (const old of s.versions)
        old.stages = old.stages.filter((st) => st !== 'current' && st !== 'previous')
      v.stages = ['current']
      s.versions.push(v)
      return publicInfo(v)
    })
  }

  async prepare(target: Target, req: StageRequest & { value?: Secret }): Promise<VersionInfo> {
    if (!req.value)
      throw new CheckFailedError('VALUE_REQUIRED', 'The local store needs a generated value to stage.')
    const value = req.value
    return this.#update(pathOf(target), (s) => {
      const pending = s.versions.find((v) => v.stages.includes('pending'))
      if (pending) {
        if (pending.requestId === req.requestId) return publicInfo(pending)
        throw foreignPending(pathOf(target), pending)
      }
      // A version this request already promoted means prepare ran before a crash: nothing to do.
      const mine = s.versions.find((v) => v.requestId === req.requestId && !v.retired)
      if (mine) return publicInfo(mine)
      const v = this.#newVersion(s, value, req.requestId)
      v.stages = ['pending']
      s.versions.push(v)
      return publicInfo(v)
    })
  }

  async verify(target: Target, req: StageRequest & { versionId: string }): Promise<void> {
    // The local store's own check: the version exists and decrypts with an intact tag.
    await this.read(target, req.versionId)
  }

  async read(target: Target, versionId: string): Promise<Secret> {
    const path = pathOf(target)
    const stored = this.#load(path)
    const v = stored?.versions.find((x) => x.id === versionId)
    if (!v || v.retired || !v.data || !v.iv || !v.tag) {
      throw new CheckFailedError(
        'VERSION_NOT_FOUND',
        `Version ${versionId} of ${path} does not exist or was retired.`,
      )
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(v.iv, 'base64'))
      decipher.setAAD(aad(path, v.id))
      decipher.setAuthTag(Buffer.from(v.tag, 'base64'))
      const plain = Buffer.concat([decipher.update(Buffer.from(v.data, 'base64')), decipher.final()])
      return new Secret(plain.toString('utf8'))
    } catch {
      throw new CheckFailedError(
        'LOCAL_DECRYPT_FAILED',
        `Version ${versionId} of ${path} does not decrypt: wrong key or tampered store.`,
        {
          next: 'Check that the store key is the one the store was written with.',
        },
      )
    }
  }

  async promote(
    target: Target,
    req: StageRequest & { versionId: string; expectedCurrent: string | undefined },
  ): Promise<void> {
    const path = pathOf(target)
    await this.#update(path, (s) => {
      const v = s.versions.find((x) => x.id === req.versionId)
      if (!v || v.retired)
        throw new CheckFailedError('VERSION_NOT_FOUND', `Version ${req.versionId} of ${path} does not exist.`)
      const current = s.versions.find((x) => x.stages.includes('current'))
      if (current?.id === v.id) return // already promoted: a re-run after a crash
      if (current?.id !== req.expectedCurrent) {
        throw new CheckFailedError(
          'CURRENT_CHANGED',
          `The current version of ${path} changed during the rotation (expected ${req.expectedCurrent ?? 'none'}, found ${current?.id ?? 'none'}).`,
          {
            next: 'Someone else rotated this secret; check its history before running the request again.',
          },
        )
      }
      for (const x of s.versions) x.stages = x.stages.filter((st) => st !== 'previous')
      if (current) current.stages = ['previous']
      v.stages = ['current']
    })
  }

  async discard(target: Target, req: StageRequest & { versionId: string }): Promise<void> {
    await this.#update(pathOf(target), (s) => {
      const v = s.versions.find((x) => x.id === req.versionId)
      if (!v || !v.stages.includes('pending')) return
      v.stages = []
      destroy(v)
    })
  }

  async rollback(target: Target, req: StageRequest): Promise<VersionInfo> {
    const path = pathOf(target)
    return this.#update(path, (s) => {
      const current = s.versions.find((x) => x.stages.includes('current'))
      if (s.versions.some((x) => x.rolledBackBy === req.requestId) && current) return publicInfo(current)
      const previous = s.versions.find((x) => x.stages.includes('previous'))
      if (!previous || previous.retired) {
        throw new CheckFailedError(
          'NO_PREVIOUS_VERSION',
          `${path} has no previous version to roll back to.`,
          {
            next: 'The previous credential was already retired; recover with a new rotation instead.',
          },
        )
      }
      if (current) {
        current.stages = []
        current.rolledBackBy = req.requestId
      }
      previous.stages = ['current']
      return publicInfo(previous)
    })
  }

  async retire(target: Target, req: StageRequest & { versionId: string }): Promise<void> {
    const path = pathOf(target)
    await this.#update(path, (s) => {
      const v = s.versions.find((x) => x.id === req.versionId)
      if (!v || v.retired) return
      if (v.stages.includes('current')) {
        throw new CheckFailedError(
          'RETIRE_CURRENT',
          `Refusing to retire version ${v.id} of ${path}: it is current.`,
        )
      }
      v.stages = []
      destroy(v)
    })
  }

  #file(path: string): string {
    const h = createHash('sha256').update(path).digest('hex')
    return join(this.#dir, 'secrets', h.slice(0, 2), `${h}.json`)
  }

  #load(path: string): StoredSecret | undefined {
    const file = this.#file(path)
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new ExternalError(
        'local-store',
        'LOCAL_STORE_UNREADABLE',
        `The local store file for ${path} cannot be read.`,
        { cause: err },
      )
    }
    let parsed: StoredSecret
    try {
      parsed = JSON.parse(text) as StoredSecret
    } catch {
      parsed = undefined as unknown as StoredSecret
    }
    if (!parsed || parsed.format !== FORMAT || parsed.path !== path || !Array.isArray(parsed.versions)) {
      throw new CheckFailedError(
        'LOCAL_STORE_CORRUPT',
        `The local store file for ${path} is not a valid ${FORMAT} file.`,
        {
          next: 'Restore the store directory from a backup; nothing was changed.',
        },
      )
    }
    return parsed
  }

  /** Read-modify-write of one secret under its lock; the file is replaced atomically. */
  async #update<T>(path: string, change: (s: StoredSecret) => T): Promise<T> {
    const file = this.#file(path)
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
    const release = await lockfile.lock(file, {
      realpath: false,
      stale: 10_000,
      retries: { retries: 200, minTimeout: 5, maxTimeout: 100, randomize: true },
    })
    try {
      const s = this.#load(path) ?? { format: FORMAT, path, nextVersion: 1, versions: [] }
      const result = change(s)
      await writeAtomic(file, JSON.stringify(s))
      return result
    } finally {
      await release()
    }
  }

  #newVersion(s: StoredSecret, value: Secret, requestId: string | undefined): StoredVersion {
    const id = String(s.nextVersion++)
    const iv = randomBytes(12)
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv)
    cipher.setAAD(aad(s.path, id))
    const data = Buffer.concat([cipher.update(value.reveal(), 'utf8'), cipher.final()])
    return {
      id,
      stages: [],
      created: this.#now().toISOString(),
      ...(requestId ? { requestId } : {}),
      iv: iv.toString('base64'),
      tag: cipher.getAuthTag().toString('base64'),
      data: data.toString('base64'),
    }
  }
}

function pathOf(target: Target): string {
  if (target.mechanism !== 'local') {
    throw new UserError('MECHANISM_MISMATCH', `The local provider cannot run mechanism ${target.mechanism}.`)
  }
  return target.path
}

/** Binds a ciphertext to its secret path and version, so swapping files or versions fails to decrypt. */
function aad(path: string, versionId: string): Buffer {
  return Buffer.from(`${FORMAT}\0${path}\0${versionId}`)
}

function destroy(v: StoredVersion): void {
  v.retired = true
  delete v.data
  delete v.iv
  delete v.tag
}

function publicInfo(v: StoredVersion): VersionInfo {
  return {
    id: v.id,
    stages: [...v.stages],
    created: v.created,
    ...(v.requestId ? { requestId: v.requestId } : {}),
    ...(v.retired ? { retired: true } : {}),
  }
}

function foreignPending(path: string, pending: StoredVersion): CheckFailedError {
  return new CheckFailedError(
    'FOREIGN_PENDING',
    `${path} already has a pending version (${pending.id}) staged by ${pending.requestId ? `request ${pending.requestId}` : 'another rotation'}; refusing to overwrite it.`,
    { next: 'Let that rotation finish or roll it back, then run this request again.' },
  )
}

/**
 * Temp file, fsync, rename: a reader sees the old file or the new one, never a torn one.
 * Asynchronous, so that concurrent rotations of different secrets wait on their fsyncs in
 * parallel rather than one after another on the event loop.
 */
async function writeAtomic(file: string, content: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(content)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, file)
}
