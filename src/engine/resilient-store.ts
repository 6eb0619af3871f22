/**
 * Wraps a provider's store in its own cockatiel policy: per-call timeout, retries with
 * exponential backoff for external failures only, and a circuit breaker, so one provider's
 * outage fails its own requests fast and never stalls the others. Every store call is
 * idempotent per request id, which is what makes retrying it safe.
 */
import {
  circuitBreaker,
  ConsecutiveBreaker,
  ExponentialBackoff,
  handleWhen,
  retry,
  timeout,
  TimeoutStrategy,
  wrap,
  BrokenCircuitError,
  TaskCancelledError,
} from 'cockatiel'
import { ExternalError, isNhiError } from '../errors.js'
import type { SecretStore } from './secret-store.js'

export interface ResilienceOptions {
  timeoutMs: number
  attempts: number
  breakAfter: number
  halfOpenAfterMs: number
  initialDelayMs: number
}

export const DEFAULT_RESILIENCE: ResilienceOptions = {
  timeoutMs: 30_000,
  attempts: 3,
  breakAfter: 5,
  halfOpenAfterMs: 30_000,
  initialDelayMs: 200,
}

const isExternal = (err: Error) => isNhiError(err) && err.kind === 'external'

export function resilientStore(
  store: SecretStore,
  opts: ResilienceOptions = DEFAULT_RESILIENCE,
): SecretStore {
  const policy = wrap(
    retry(handleWhen(isExternal), {
      maxAttempts: opts.attempts - 1,
      backoff: new ExponentialBackoff({ initialDelay: opts.initialDelayMs, maxDelay: 5_000 }),
    }),
    circuitBreaker(handleWhen(isExternal), {
      halfOpenAfter: opts.halfOpenAfterMs,
      breaker: new ConsecutiveBreaker(opts.breakAfter),
    }),
    timeout(opts.timeoutMs, TimeoutStrategy.Aggressive),
  )
  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      // A signal of its own per call: without one, cockatiel hangs every call's listener on one
      // shared signal, and Node warns of a listener leak once more than 10 calls run at once.
      return await policy.execute(fn, new AbortController().signal)
    } catch (err) {
      if (err instanceof BrokenCircuitError) {
        throw new ExternalError(
          store.name,
          'PROVIDER_CIRCUIT_OPEN',
          `Provider ${store.name} failed ${opts.breakAfter} times in a row; not calling it for ${opts.halfOpenAfterMs / 1000} s.`,
          {
            next: `Check that ${store.name} is reachable, then run execute again.`,
          },
        )
      }
      if (err instanceof TaskCancelledError) {
        throw new ExternalError(
          store.name,
          'PROVIDER_TIMEOUT',
          `Provider ${store.name} did not answer ${what} within ${opts.timeoutMs / 1000} s.`,
          {
            next: `Check that ${store.name} is reachable, then run execute again; the request resumes where it stopped.`,
          },
        )
      }
      throw err
    }
  }
  return {
    name: store.name,
    describe: (t) => call('describe', () => store.describe(t)),
    prepare: (t, r) => call('prepare', () => store.prepare(t, r)),
    verify: (t, r) => call('verify', () => store.verify(t, r)),
    read: (t, v) => call('read', () => store.read(t, v)),
    promote: (t, r) => call('promote', () => store.promote(t, r)),
    discard: (t, r) => call('discard', () => store.discard(t, r)),
    rollback: (t, r) => call('rollback', () => store.rollback(t, r)),
    retire: (t, r) => call('retire', () => store.retire(t, r)),
    ...(store.revoke ? { revoke: (t, r) => call('revoke', () => store.revoke!(t, r)) } : {}),
  }
}
