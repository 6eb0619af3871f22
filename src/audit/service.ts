/**
 * Services behind `nhi-recover audit verify | log | export`: find the repo, its ledger and its
 * trusted keys, then verify, query or export. Commands only parse flags and render.
 */
import { createWriteStream } from 'node:fs'
import { join, resolve } from 'node:path'
import { CheckFailedError, UserError, isNhiError } from '../errors.js'
import { findRepoRoot, loadRepoConfig } from '../config/repo.js'
import { resolveCommit, runGit } from '../git/git.js'
import { canonical, type AuditEntry } from './entry.js'
import { listEntryFiles, readEntries } from './read.js'
import { loadAllowedSigners, verifyLedger, type VerifyLedgerResult } from './verify.js'

export const DEFAULT_ALLOWED_SIGNERS = '.nhi-recover/allowed_signers'

export interface AuditContextOptions {
  cwd: string
  /** --config; without it nhi-recover.yaml at the repo root is used when present. */
  configPath?: string
}

export interface AuditContext {
  repoRoot: string
  auditPath: string
  /** allowed_signers from the config (approvals.ssh.allowedSigners), repo-relative. */
  allowedSigners: string
}

/** The ledger's location from nhi-recover.yaml, or the defaults when the repo has no config. */
export function auditContext(opts: AuditContextOptions): AuditContext {
  try {
    const loaded = loadRepoConfig(opts.cwd, opts.configPath)
    return {
      repoRoot: loaded.repoRoot,
      auditPath: loaded.config.audit.path,
      allowedSigners: loaded.config.approvals.ssh?.allowedSigners ?? DEFAULT_ALLOWED_SIGNERS,
    }
  } catch (err) {
    // A clone with no config can still be verified: it then uses the documented defaults.
    if (!opts.configPath && isNhiError(err) && err.code === 'CONFIG_NOT_FOUND')
      return { repoRoot: findRepoRoot(opts.cwd), auditPath: 'audit', allowedSigners: DEFAULT_ALLOWED_SIGNERS }
    throw err
  }
}

export interface AuditVerifyOptions extends AuditContextOptions {
  /** A trusted copy of the keys; default the repo's allowed_signers. */
  allowedSignersPath?: string
  rev?: string
  checkpoint?: boolean
}

/** Verifies the ledger of the repo at cwd against its allowed_signers (or a trusted copy). */
export async function auditVerify(opts: AuditVerifyOptions): Promise<VerifyLedgerResult> {
  const ctx = auditContext(opts)
  await requireRev(ctx.repoRoot, opts.rev)
  const path = opts.allowedSignersPath
    ? resolve(opts.cwd, opts.allowedSignersPath)
    : join(ctx.repoRoot, ctx.allowedSigners)
  const shown = opts.allowedSignersPath ?? ctx.allowedSigners
  const signers = loadAllowedSigners(path, shown)
  const result = await verifyLedger({
    repoRoot: ctx.repoRoot,
    auditPath: ctx.auditPath,
    allowedSigners: { text: signers.text, file: signers.file },
    ...(opts.rev ? { rev: opts.rev } : {}),
    ...(opts.checkpoint === false ? { checkpoint: false } : {}),
  })
  return result
}

/** The error for a ledger that does not verify: its message names the first bad entry and why. */
export function ledgerTamperedError(result: VerifyLedgerResult): CheckFailedError<VerifyLedgerResult> {
  const first = result.problems[0]!
  const more = result.problemCount > 1 ? ` (${result.problemCount - 1} more problem(s) listed)` : ''
  return new CheckFailedError(
    'AUDIT_TAMPERED',
    `The audit ledger does not verify: ${first.message}${more}.`,
    {
      next: 'Do not trust the ledger past this point. Compare with another clone or the remote, and investigate who made the commits named here.',
      details: result,
    },
  )
}

/** The ledger lives in git: refuse a directory that is not a clone, and a --rev that names nothing. */
async function requireRev(repoRoot: string, rev: string | undefined): Promise<void> {
  const inside = await runGit(repoRoot, ['rev-parse', '--is-inside-work-tree'], { allowFail: true })
  if (inside.code !== 0 || inside.stdout.toString().trim() !== 'true')
    throw new UserError('NOT_A_GIT_REPO', `${repoRoot} is not a git clone of a recovery repo.`, {
      next: 'Run the command inside a clone of the recovery repo, or pass --config pointing into one.',
    })
  if (rev && !(await resolveCommit(repoRoot, rev)))
    throw new UserError('AUDIT_REV_UNKNOWN', `${rev} is not a commit in ${repoRoot}.`, {
      next: 'Pass a branch, tag or commit id that exists in this clone.',
    })
}

export interface LogQuery {
  request?: string
  identity?: string
  provider?: string
  /** Inclusive bounds on the entry time. */
  since?: Date
  until?: Date
}

export interface AuditQueryOptions extends AuditContextOptions {
  query: LogQuery
  rev?: string
}

/** Parses a --since/--until value: a date (YYYY-MM-DD, UTC midnight) or an ISO date-time. */
export function parseWhen(flag: string, text: string): Date {
  const ms = /^\d{4}-\d{2}-\d{2}$/.test(text) ? Date.parse(text + 'T00:00:00Z') : Date.parse(text)
  if (!/^\d{4}-\d{2}-\d{2}/.test(text) || Number.isNaN(ms))
    throw new UserError(
      'USAGE',
      `--${flag} must be a date (2025-06-01) or an ISO date-time, not "${text}".`,
      {
        next: `Pass --${flag} 2025-06-01 or --${flag} 2025-06-01T12:00:00Z.`,
      },
    )
  return new Date(ms)
}

function matches(e: AuditEntry, q: LogQuery): boolean {
  if (q.request && e.request.id !== q.request) return false
  if (q.identity && e.request.identity !== q.identity) return false
  if (q.provider && e.provider !== q.provider) return false
  const t = Date.parse(e.time)
  if (q.since && t < q.since.getTime()) return false
  if (q.until && t > q.until.getTime()) return false
  return true
}

/** Streams the committed entries that match the query, in sequence order. Does not verify. */
export async function* queryLedger(opts: AuditQueryOptions): AsyncGenerator<AuditEntry> {
  const ctx = auditContext(opts)
  await requireRev(ctx.repoRoot, opts.rev)
  const commit = await resolveCommit(ctx.repoRoot, opts.rev ?? 'HEAD')
  if (!commit) return
  const { files } = await listEntryFiles(ctx.repoRoot, ctx.auditPath, commit)
  for await (const e of readEntries(ctx.repoRoot, files)) if (matches(e, opts.query)) yield e
}

export interface AuditLogResult {
  entries: AuditEntry[]
  count: number
}

/** The entries matching the query, for `audit log`. */
export async function auditLog(opts: AuditQueryOptions): Promise<AuditLogResult> {
  const entries: AuditEntry[] = []
  for await (const e of queryLedger(opts)) entries.push(e)
  return { entries, count: entries.length }
}

export const CSV_COLUMNS = [
  'sequence',
  'time',
  'request_id',
  'identity',
  'spec_path',
  'spec_sha256',
  'action',
  'provider',
  'target',
  'version_before',
  'version_after',
  'outcome',
  'reason',
  'approvals',
  'policy_tier',
  'config_sha256',
  'executor_run_id',
  'executor_actor',
  'prev_hash',
  'hash',
  'key_id',
  'principal',
] as const

/** One CSV field: quoted when needed, and never a formula a spreadsheet would run. */
function csvField(value: string | number | null): string {
  let s = value === null ? '' : String(value)
  if (/^[=+\-@\t\r]/.test(s)) s = `'${s}`
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}

/** One CSV row for an entry, in CSV_COLUMNS order. */
export function csvRow(e: AuditEntry): string {
  return [
    e.sequence,
    e.time,
    e.request.id,
    e.request.identity,
    e.request.specPath,
    e.request.specSha256,
    e.action,
    e.provider,
    e.target,
    e.credential.versionBefore,
    e.credential.versionAfter,
    e.outcome.status,
    e.outcome.reason,
    e.approvals.map((a) => `${a.approver}@${a.backend}@${a.at}`).join(';'),
    e.policy.tier,
    e.policy.configSha256,
    e.executor.runId,
    e.executor.actor,
    e.prevHash,
    e.hash,
    e.signature.keyId,
    e.signature.principal,
  ]
    .map(csvField)
    .join(',')
}

export interface AuditExportOptions extends AuditQueryOptions {
  format: 'jsonl' | 'csv'
  /** Writes lines here; default is the `write` callback. */
  output?: string
  write?: (line: string) => void
}

export interface AuditExportResult {
  format: 'jsonl' | 'csv'
  count: number
  output: string | null
}

/** Streams matching entries as JSONL (each the entry's canonical file line) or CSV. */
export async function auditExport(opts: AuditExportOptions): Promise<AuditExportResult> {
  const file = opts.output ? createWriteStream(resolve(opts.cwd, opts.output)) : undefined
  const write = file ? (line: string) => file.write(line + '\n') : (opts.write ?? (() => {}))
  let count = 0
  try {
    if (opts.format === 'csv') write(CSV_COLUMNS.join(','))
    for await (const e of queryLedger(opts)) {
      write(opts.format === 'csv' ? csvRow(e) : canonical(e))
      count++
    }
  } finally {
    if (file)
      await new Promise<void>((res, rej) => file.end((err?: Error | null) => (err ? rej(err) : res())))
  }
  return { format: opts.format, count, output: opts.output ?? null }
}

/** Plain table for `audit log`. */
export function renderLogTable(entries: readonly AuditEntry[]): string {
  if (entries.length === 0) return 'No audit entries match.'
  const rows = entries.map((e) => [
    String(e.sequence),
    e.time.replace(/\.\d{3}Z$/, 'Z'),
    e.request.id,
    e.request.identity,
    e.provider,
    e.action,
    e.outcome.status,
    `${e.credential.versionBefore ?? '-'} -> ${e.credential.versionAfter ?? '-'}`,
  ])
  const head = ['SEQ', 'TIME', 'REQUEST', 'IDENTITY', 'PROVIDER', 'ACTION', 'OUTCOME', 'VERSION']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()
  return [
    line(head),
    ...rows.map(line),
    '',
    `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}`,
  ].join('\n')
}

/** Plain report for `audit verify`. */
export function renderVerifyReport(r: VerifyLedgerResult): string {
  if (r.ok)
    return [
      `Audit ledger verified: ${r.entries} entr${r.entries === 1 ? 'y' : 'ies'} in ${r.auditCommits} signed audit commit(s)` +
        (r.tail ? `, tail entry ${r.tail.sequence} (${r.tail.hash.slice(0, 16)}…)` : '') +
        '.',
      `Checked every hash, signature and signer window, the chain, the commit signatures and the history, in ${r.elapsedMs} ms.`,
    ].join('\n')
  return r.problems.map((p) => `  - ${p.message}`).join('\n')
}
