import { describe, expect, it } from 'vitest'
import { generateSecret } from '../../src/engine/generate.js'

describe('generateSecret', () => {
  it('makes values of the requested length from the requested alphabet', () => {
    expect(generateSecret(40, 'alphanumeric').reveal()).toMatch(/^[A-Za-z0-9]{40}$/)
    expect(generateSecret(64, 'hex').reveal()).toMatch(/^[0-9a-f]{64}$/)
    expect(generateSecret(33, 'base64url').reveal()).toMatch(/^[A-Za-z0-9_-]{33}$/)
  })

  it('uses every character of the alphabet roughly evenly (no modulo bias)', () => {
    const counts = new Map<string, number>()
    for (let i = 0; i < 200; i++)
      for (const ch of generateSecret(62, 'alphanumeric').reveal()) counts.set(ch, (counts.get(ch) ?? 0) + 1)
    expect(counts.size).toBe(62)
    const expected = (200 * 62) / 62
    for (const n of counts.values()) expect(Math.abs(n - expected) / expected).toBeLessThan(0.4)
  })

  it('never prints its value', () => {
    const s = generateSecret(40, 'alphanumeric')
    expect(`${s}`).toBe('[REDACTED]')
    expect(JSON.stringify({ s })).toBe('{"s":"[REDACTED]"}')
  })
})
