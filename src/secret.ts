import { inspect } from 'node:util'

const REDACTED = '[REDACTED]'

/**
 * Values of every Secret made in this process. The CLI's output path scrubs them, so even an
 * unexpected third-party error message that quotes a value cannot print it.
 */
const live = new Set<string>()
const MIN_SCRUB_LENGTH = 6
/** The live values by a hash of their first MIN_SCRUB_LENGTH characters, so a scrub scans its text once. */
const byPrefix = new Map<number, Set<string>>()

/** A hash of the MIN_SCRUB_LENGTH characters of `s` at `i` (collisions are checked by startsWith). */
function prefixKey(s: string, i: number): number {
  let h = 0
  for (let k = i; k < i + MIN_SCRUB_LENGTH; k++) h = (Math.imul(h, 31) + s.charCodeAt(k)) | 0
  return h
}

function remember(value: string): void {
  if (live.has(value)) return
  live.add(value)
  const key = prefixKey(value, 0)
  const same = byPrefix.get(key)
  if (same) same.add(value)
  else byPrefix.set(key, new Set([value]))
}

function forget(value: string): void {
  if (!live.delete(value)) return
  const key = prefixKey(value, 0)
  const same = byPrefix.get(key)
  same?.delete(value)
  if (same?.size === 0) byPrefix.delete(key)
}

/**
 * Replaces every known secret value in `text` with [REDACTED]. One pass over the text finds
 * the values it holds (a run of 1,000 rotations knows thousands, and its output is large);
 * the longest are replaced first, so a value inside another never leaves a piece behind, and
 * the text is scanned again until nothing is found.
 */
export function scrubSecrets(text: string): string {
  let out = text
  for (let pass = 0; pass < 4; pass++) {
    const found = new Set<string>()
    for (let i = 0; i + MIN_SCRUB_LENGTH <= out.length; i++) {
      const candidates = byPrefix.get(prefixKey(out, i))
      if (candidates) for (const v of candidates) if (out.startsWith(v, i)) found.add(v)
    }
    if (found.size === 0) return out
    for (const v of [...found].sort((a, b) => b.length - a.length)) out = out.split(v).join(REDACTED)
  }
  return out
}

/**
 * A secret value that refuses to print. String conversion, JSON, util.inspect and template
 * literals all yield "[REDACTED]"; the value comes out only through reveal(), whose call
 * sites are few and reviewed.
 */
export class Secret {
  readonly #value: string

  constructor(value: string) {
    if (typeof value !== 'string') throw new TypeError('Secret value must be a string')
    this.#value = value
    if (value.length >= MIN_SCRUB_LENGTH) remember(value)
  }

  /** The only way to read the value. Never pass the result to a logger or an error. */
  reveal(): string {
    return this.#value
  }

  /** Forgets the value for scrubbing once it is no longer held anywhere (e.g. after retire). */
  dispose(): void {
    forget(this.#value)
  }

  /** Constant-time equality against another secret. */
  equals(other: Secret): boolean {
    const a = Buffer.from(this.#value)
    const b = Buffer.from(other.#value)
    if (a.length !== b.length) return false
    let diff = 0
    for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!
    return diff === 0
  }

  get length(): number {
    return this.#value.length
  }

  toString(): string {
    return REDACTED
  }

  toJSON(): string {
    return REDACTED
  }

  [Symbol.toPrimitive](): string {
    return REDACTED
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED})`
  }
}
