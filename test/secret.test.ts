import fc from 'fast-check'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import { Secret, scrubSecrets } from '../src/secret.js'

/** What scrubSecrets must guarantee, checked the slow way: no value of length ≥ 6 survives. */
function leaks(text: string, values: string[]): string[] {
  return values.filter((v) => v.length >= 6 && text.includes(v))
}

describe('Secret', () => {
  it('refuses to print through String, JSON, template literals and inspect', () => {
    const s = new Secret('canary-secret-3f9a1c')
    expect(String(s)).toBe('[REDACTED]')
    expect(JSON.stringify({ s })).toBe('{"s":"[REDACTED]"}')
    expect(`${s}`).toBe('[REDACTED]')
    expect(inspect(s)).toBe('Secret([REDACTED])')
    expect(s.reveal()).toBe('canary-secret-3f9a1c')
  })
})

describe('scrubSecrets', () => {
  it('redacts every occurrence of every live value, and leaves other text alone', () => {
    const a = new Secret('alpha-7c1e9b2d')
    const b = new Secret('bravo-0d44aa91')
    expect(scrubSecrets(`x ${a.reveal()} y ${b.reveal()}${a.reveal()} z`)).toBe(
      'x [REDACTED] y [REDACTED][REDACTED] z',
    )
    expect(scrubSecrets('nothing secret here')).toBe('nothing secret here')
  })

  it('redacts a value that contains another whole, leaving no piece of the longer one', () => {
    const inner = new Secret('k3y-0123456')
    const outer = new Secret(`prefix-${inner.reveal()}-suffix`)
    const out = scrubSecrets(`[${outer.reveal()}] and [${inner.reveal()}]`)
    expect(out).toBe('[[REDACTED]] and [[REDACTED]]')
  })

  it('redacts overlapping values and values that share a prefix', () => {
    const one = new Secret('shared-prefix-AAAA')
    const two = new Secret('shared-prefix-BBBB')
    const three = new Secret('x-BBBB-overlap')
    const text = `${one.reveal()} ${two.reveal()} shared-prefix-BBBB-overlap ${three.reveal()}`
    expect(
      leaks(
        scrubSecrets(text),
        [one, two, three].map((s) => s.reveal()),
      ),
    ).toEqual([])
  })

  it('stops redacting a value once it is disposed', () => {
    const s = new Secret('disposable-9e8d7c')
    expect(scrubSecrets(s.reveal())).toBe('[REDACTED]')
    s.dispose()
    expect(scrubSecrets('disposable-9e8d7c')).toBe('disposable-9e8d7c')
  })

  it('never lets a live value through, whatever the text and the values (property)', () => {
    const chars = fc.constantFrom(...'aD]-[RE1')
    fc.assert(
      fc.property(
        fc.array(fc.string({ unit: chars, minLength: 6, maxLength: 12 }), { minLength: 1, maxLength: 6 }),
        fc.array(fc.oneof(fc.string({ unit: chars, maxLength: 8 }), fc.nat({ max: 5 })), { maxLength: 20 }),
        (values, pieces) => {
          const secrets = values.map((v) => new Secret(v))
          try {
            const text = pieces.map((p) => (typeof p === 'number' ? (values[p] ?? '') : p)).join('')
            expect(leaks(scrubSecrets(text), values)).toEqual([])
          } finally {
            for (const s of secrets) s.dispose()
          }
        },
      ),
      { numRuns: 500 },
    )
  })
})
