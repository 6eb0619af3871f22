import { inspect } from 'node:util'

const REDACTED = '[REDACTED]'

/**
 * Values of every Secret made in this process. The CLI's output path scrubs them, so even an
 * unexpected third-party error message that quotes a value cannot print it.
 */
const live = new Set<string>()
const MIN_SCRUB_LENGTH = 6

/** Replaces every known secret value in `text` with [REDACTED]. */
export function scrubSecrets(text: string): string {
  let out = text
  for (const value of live) if (out.includes(value)) out = out.split(value).join(REDACTED)
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
    if (value.length >= MIN_SCRUB_LENGTH) live.add(value)
  }

  /** The only way to read the value. Never pass the result to a logger or an error. */
  reveal(): string {
    return this.#value
  }

  /** Forgets the value for scrubbing once it is no longer held anywhere (e.g. after retire). */
  dispose(): void {
    live.delete(this.#value)
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
