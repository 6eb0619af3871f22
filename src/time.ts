import { DURATION } from './spec/schema.js'

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

/** Milliseconds in a schema duration such as "24h". Throws on anything the schema would refuse. */
export function parseDuration(text: string): number {
  if (!DURATION.test(text)) throw new RangeError(`not a duration: ${text}`)
  const unit = text.at(-1) as keyof typeof UNIT_MS
  return Number(text.slice(0, -1)) * UNIT_MS[unit]
}
