/**
 * Where an execute run spends its time: wall time inside provider calls, the approval gate,
 * the ledger and the locks, summed per kind. Calls that run concurrently each add their own
 * time, so a sum can exceed the run's total at --concurrency above 1.
 */
import type { ApprovalGate, Ledger, Locks } from './ports.js'
import type { SecretStore } from './secret-store.js'

export interface ExecuteTiming {
  /** Wall time of the whole run, from loading the config to the audit commit and lock release. */
  totalMs: number
  providerMs: number
  gateMs: number
  ledgerMs: number
  locksMs: number
}

type Kind = Exclude<keyof ExecuteTiming, 'totalMs'>

/** A stopwatch per kind of outside call, and wrappers that feed it. */
export function executeTimer() {
  const start = performance.now()
  const sums: Record<Kind, number> = { providerMs: 0, gateMs: 0, ledgerMs: 0, locksMs: 0 }
  const time = async <T>(kind: Kind, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now()
    try {
      return await fn()
    } finally {
      sums[kind] += performance.now() - t0
    }
  }
  const store = (s: SecretStore): SecretStore => ({
    name: s.name,
    describe: (t) => time('providerMs', () => s.describe(t)),
    prepare: (t, r) => time('providerMs', () => s.prepare(t, r)),
    verify: (t, r) => time('providerMs', () => s.verify(t, r)),
    read: (t, v) => time('providerMs', () => s.read(t, v)),
    promote: (t, r) => time('providerMs', () => s.promote(t, r)),
    discard: (t, r) => time('providerMs', () => s.discard(t, r)),
    rollback: (t, r) => time('providerMs', () => s.rollback(t, r)),
    retire: (t, r) => time('providerMs', () => s.retire(t, r)),
    ...(s.revoke ? { revoke: (t, r) => time('providerMs', () => s.revoke!(t, r)) } : {}),
  })
  return {
    store,
    gate: (g: ApprovalGate): ApprovalGate => ({
      evaluate: (x) => time('gateMs', () => g.evaluate(x)),
      ...(g.prepare ? { prepare: (xs) => time('gateMs', () => g.prepare!(xs)) } : {}),
    }),
    ledger: (l: Ledger): Ledger => ({
      records: () => time('ledgerMs', () => l.records()),
      append: (d) => time('ledgerMs', () => l.append(d)),
    }),
    locks: (l: Locks): Locks => ({
      acquire: (ids) => time('locksMs', () => l.acquire(ids)),
      release: (leases) => time('locksMs', () => l.release(leases)),
    }),
    /** The sums so far, rounded to 0.1 ms, with the wall time since the timer started. */
    read: (): ExecuteTiming => {
      const r = (ms: number) => Math.round(ms * 10) / 10
      return {
        totalMs: r(performance.now() - start),
        providerMs: r(sums.providerMs),
        gateMs: r(sums.gateMs),
        ledgerMs: r(sums.ledgerMs),
        locksMs: r(sums.locksMs),
      }
    },
  }
}
