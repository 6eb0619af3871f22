/**
 * Decides, purely from the specs, the ledger and the clock, what an execute run does: which
 * requests run, which are skipped and why, and which previous credentials are due to retire.
 * The ledger is the source of truth for what already ran.
 */
import type { ExecutableSpec, LedgerRecord } from './ports.js'

export type Skip = { spec: ExecutableSpec; reason: string; audit: boolean }

export interface Retirement {
  /** The request whose rotation left the version behind. */
  record: LedgerRecord
  versionId: string
}

export interface ExecutionPlan {
  run: ExecutableSpec[]
  skip: Skip[]
  retire: Retirement[]
}

/** Outcomes after which a request never runs again; failed and refused ones are retried. */
const TERMINAL = new Set(['succeeded', 'rolled-back'])

export function planExecution(specs: ExecutableSpec[], records: LedgerRecord[], now: Date): ExecutionPlan {
  const byRequest = new Map<string, LedgerRecord[]>()
  for (const r of records) byRequest.set(r.requestId, [...(byRequest.get(r.requestId) ?? []), r])

  const plan: ExecutionPlan = { run: [], skip: [], retire: [] }
  for (const x of specs) {
    const history = (byRequest.get(x.spec.id) ?? []).filter((r) => r.action !== 'retire')
    const done = history.find((r) => TERMINAL.has(r.outcome))
    if (done) {
      plan.skip.push({ spec: x, reason: `already ${done.outcome} at ${done.time}`, audit: false })
      continue
    }
    if (Date.parse(x.spec.expires) <= now.getTime()) {
      const reason = `request expired at ${x.spec.expires}; file a new request`
      const last = history.at(-1)
      // Audit the refusal once, not on every run that sees the expired spec.
      plan.skip.push({
        spec: x,
        reason,
        audit: !(last?.outcome === 'refused' && last.time >= x.spec.expires),
      })
      continue
    }
    plan.run.push(x)
  }

  const retired = new Set(
    records
      .filter((r) => r.action === 'retire' && r.outcome === 'succeeded')
      .map((r) => key(r.target, r.versionBefore)),
  )
  const restored = new Set(
    records
      .filter((r) => r.action === 'rollback' && r.outcome === 'succeeded')
      .map((r) => key(r.target, r.versionAfter)),
  )
  for (const r of records) {
    if (r.action === 'retire' || r.action === 'rollback' || r.outcome !== 'succeeded') continue
    if (!r.versionBefore || !r.retireAfter || Date.parse(r.retireAfter) > now.getTime()) continue
    const k = key(r.target, r.versionBefore)
    if (retired.has(k) || restored.has(k)) continue
    plan.retire.push({ record: r, versionId: r.versionBefore })
  }
  return plan
}

const key = (target: string, version: string | undefined) => `${target}\0${version ?? ''}`
