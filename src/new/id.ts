/** Request ids: rr-<identity>-<yyyymmdd>-<4 hex>, unique against every spec in the repo. */
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, openSync, readSync } from 'node:fs'
import { join } from 'node:path'
import { SAFE_ID } from '../spec/schema.js'
import { collectSpecFiles, SPECS_DIR } from '../spec/validate.js'
import { detectSecret } from '../spec/inline-secrets.js'
import { BugError } from '../errors.js'

/** Source of random hex; injectable so tests can force a collision. */
export type RandomHex = (bytes: number) => string
export const cryptoHex: RandomHex = (bytes) => randomBytes(bytes).toString('hex')

const MAX_STEM = 80 - 'rr-'.length - '-yyyymmdd'.length - '-xxxxxxxx'.length

/** The identity part of an id: lowercase a-z0-9 and single hyphens, or "request" when nothing usable is left. */
export function idStem(identity: string | undefined): string {
  // An identity that looks like a secret must not be copied into a file name.
  if (!identity || detectSecret(identity)) return 'request'
  const stem = identity
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .slice(0, MAX_STEM)
    .replace(/^-+|-+$/g, '')
  return stem.length > 0 ? stem : 'request'
}

function yyyymmdd(now: Date): string {
  return now.toISOString().slice(0, 10).replace(/-/g, '')
}

/**
 * A fresh id that no existing spec uses, no existing file is named after, and the inline
 * secret scan accepts. Four hex digits make collisions rare; after a few, eight digits make
 * them practically impossible.
 */
export function generateId(
  identity: string | undefined,
  now: Date,
  taken: (id: string) => boolean,
  random: RandomHex,
): string {
  // An identity whose ids keep looking random falls back to the plain "request" stem.
  for (const stem of [idStem(identity), 'request']) {
    const base = `rr-${stem}-${yyyymmdd(now)}`
    for (let attempt = 0; attempt < 32; attempt++) {
      const id = `${base}-${random(attempt < 16 ? 2 : 4)}`
      // Some draws make the whole id look like a high-entropy string, which validate would refuse.
      if (SAFE_ID.test(id) && !taken(id) && !detectSecret(id)) return id
    }
  }
  throw new BugError(`could not find a free request id for rr-${idStem(identity)}-${yyyymmdd(now)}-*`)
}

const ID_LINE = /^id:[ \t]*["']?([a-z0-9-]{1,80})["']?[ \t]*(?:#.*)?$/m
const PEEK_BYTES = 64 * 1024

/** The top-level id of a spec file, read the same cheap way validate's uniqueness check reads it. */
function peekId(absPath: string): string | undefined {
  try {
    const fd = openSync(absPath, 'r')
    try {
      const buf = Buffer.alloc(PEEK_BYTES)
      const n = readSync(fd, buf, 0, buf.length, 0)
      return ID_LINE.exec(buf.subarray(0, n).toString('utf8'))?.[1]
    } finally {
      closeSync(fd)
    }
  } catch {
    return undefined
  }
}

/** Every request id in the repo, mapped to the file that holds it. */
export function existingSpecIds(repoRoot: string): Map<string, string> {
  const ids = new Map<string, string>()
  if (!existsSync(join(repoRoot, SPECS_DIR))) return ids
  for (const abs of collectSpecFiles(repoRoot, repoRoot, [])) {
    const id = peekId(abs)
    if (id && !ids.has(id)) ids.set(id, abs)
  }
  return ids
}
