/** Makes new credential values for specs whose generator is `random`. */
import { randomBytes } from 'node:crypto'
import { Secret } from '../secret.js'

const ALPHABETS = {
  alphanumeric: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789',
  base64url: 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_',
  hex: '0123456789abcdef',
} as const

export type Alphabet = keyof typeof ALPHABETS

/** A uniformly random string: bytes that would bias the modulo are rejected, not folded. */
export function generateSecret(length: number, alphabet: Alphabet): Secret {
  const chars = ALPHABETS[alphabet]
  const limit = 256 - (256 % chars.length)
  let out = ''
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b >= limit) continue
      out += chars[b % chars.length]
      if (out.length === length) break
    }
  }
  return new Secret(out)
}
