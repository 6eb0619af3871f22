import { describe, expect, it } from 'vitest'
import { resilientStore } from '../../src/engine/resilient-store.js'
import type { SecretStore } from '../../src/engine/secret-store.js'
import { CheckFailedError, ExternalError } from '../../src/errors.js'

const target = { provider: 'p', mechanism: 'local', path: 'a' } as const
const fast = { timeoutMs: 200, attempts: 3, breakAfter: 2, halfOpenAfterMs: 60_000, initialDelayMs: 1 }

/** A store whose describe() follows a script of results, counting calls. */
function scripted(results: Array<Error | 'ok' | 'hang'>): SecretStore & { calls: number } {
  const s = {
    name: 'p',
    calls: 0,
    async describe() {
      const r = results[Math.min(s.calls++, results.length - 1)]
      if (r === 'hang') return new Promise<never>(() => {})
      if (r instanceof Error) throw r
      return { exists: true, versions: [] }
    },
  }
  return s as unknown as SecretStore & { calls: number }
}

const outage = () => new ExternalError('p', 'DOWN', 'provider answered 503')

describe('resilientStore', () => {
  it('retries an external failure with backoff and succeeds', async () => {
    const s = scripted([outage(), 'ok'])
    await expect(resilientStore(s, fast).describe(target)).resolves.toMatchObject({ exists: true })
    expect(s.calls).toBe(2)
  })

  it('never retries a check failure: it is an answer, not an outage', async () => {
    const s = scripted([new CheckFailedError('FOREIGN_PENDING', 'no'), 'ok'])
    await expect(resilientStore(s, fast).describe(target)).rejects.toMatchObject({ code: 'FOREIGN_PENDING' })
    expect(s.calls).toBe(1)
  })

  it('opens the circuit after consecutive outages and then fails fast without calling', async () => {
    const s = scripted([outage()])
    const r = resilientStore(s, fast)
    await expect(r.describe(target)).rejects.toMatchObject({ kind: 'external' })
    const callsBefore = s.calls
    await expect(r.describe(target)).rejects.toMatchObject({ code: 'PROVIDER_CIRCUIT_OPEN' })
    expect(s.calls).toBe(callsBefore)
  })

  it('turns a call that hangs into a timeout naming the provider', async () => {
    const s = scripted(['hang'])
    await expect(resilientStore(s, { ...fast, attempts: 1 }).describe(target)).rejects.toMatchObject({
      code: 'PROVIDER_TIMEOUT',
      message: expect.stringContaining('Provider p'),
    })
  })

  it('runs many calls at once without Node warning of an abort-listener leak', async () => {
    const warnings: string[] = []
    const onWarning = (w: Error) => warnings.push(w.name)
    process.on('warning', onWarning)
    try {
      const slow = {
        name: 'p',
        describe: () => new Promise((r) => setTimeout(() => r({ exists: true, versions: [] }), 20)),
      } as unknown as SecretStore
      const store = resilientStore(slow, fast)
      await Promise.all(Array.from({ length: 30 }, () => store.describe(target)))
      await new Promise((r) => setTimeout(r, 20)) // warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings).not.toContain('MaxListenersExceededWarning')
  })
})
