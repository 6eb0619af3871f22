/**
 * The engine's view of the audit ledger in git: what already happened to each request, and
 * one signed commit per run for what happened now (src/audit does the chaining and signing).
 */
import { appendEntries } from '../audit/append.js'
import type { AuditEntry, AuditEvent } from '../audit/entry.js'
import { listEntryFiles, readEntries } from '../audit/read.js'
import type { AuditSigner } from '../audit/signer.js'
import type { AllowedSigner } from '../crypto/allowed-signers.js'
import { git, resolveCommit, runGit } from '../git/git.js'
import type { AuditDraft, Ledger, LedgerRecord } from './ports.js'

export interface GitLedgerOptions {
  repoRoot: string
  auditPath: string
  configSha256: string
  executor: { runId: string; actor: string }
  signer: () => Promise<AuditSigner>
  allowedSigners: () => AllowedSigner[]
  remote?: string | false
}

export class GitLedger implements Ledger {
  constructor(private readonly o: GitLedgerOptions) {}

  /**
   * Every entry of the local branch and, when there is a remote, of the remote branch too:
   * another executor's entries reach the remote before this clone has pulled them.
   */
  async records(): Promise<LedgerRecord[]> {
    const { entries } = await readLedgerEntries(this.o)
    return entries.map(toRecord)
  }

  async append(drafts: AuditDraft[]): Promise<{ commit?: string; entries: number }> {
    if (drafts.length === 0) return { entries: 0 }
    const events: AuditEvent[] = drafts.map((d) => ({
      request: { id: d.requestId, identity: d.identity, specPath: d.specPath, specSha256: d.specSha256 },
      action: d.action,
      provider: d.provider,
      target: d.target,
      credential: { versionBefore: d.versionBefore ?? null, versionAfter: d.versionAfter ?? null },
      outcome: { status: d.outcome, reason: d.reason },
      approvals: d.approvals,
      policy: { tier: d.tier ?? null, configSha256: this.o.configSha256 },
      executor: this.o.executor,
    }))
    const r = await appendEntries({
      repoRoot: this.o.repoRoot,
      auditPath: this.o.auditPath,
      events,
      signer: await this.o.signer(),
      allowedSigners: this.o.allowedSigners(),
      ...(this.o.remote !== undefined ? { remote: this.o.remote } : {}),
    })
    return { commit: r.commit, entries: r.entries.length }
  }
}

export interface LedgerEntries {
  /** Entries of the local branch and the remote branch, without repeats, oldest first. */
  entries: AuditEntry[]
  /** Whether the remote branch was read: "unreachable" means only the local branch was. */
  remote: 'read' | 'none' | 'unreachable'
}

/** Reads the ledger of HEAD and of the same branch on the remote (fetched), merged by entry hash. */
export async function readLedgerEntries(o: {
  repoRoot: string
  auditPath: string
  remote?: string | false
}): Promise<LedgerEntries> {
  const tips = [await resolveCommit(o.repoRoot, 'HEAD')]
  let remote: LedgerEntries['remote'] = 'none'
  if (o.remote) {
    const branch = await git(o.repoRoot, ['rev-parse', '--abbrev-ref', 'HEAD'])
    const fetched = await runGit(o.repoRoot, ['fetch', '--quiet', '--no-tags', o.remote, branch], {
      allowFail: true,
    })
    remote = fetched.code === 0 ? 'read' : 'unreachable'
    if (fetched.code === 0) tips.push(await resolveCommit(o.repoRoot, 'FETCH_HEAD'))
  }
  const seen = new Set<string>()
  const entries: AuditEntry[] = []
  for (const tip of new Set(tips)) {
    if (!tip) continue
    const { files } = await listEntryFiles(o.repoRoot, o.auditPath, tip)
    for await (const e of readEntries(o.repoRoot, files)) {
      if (seen.has(e.hash)) continue
      seen.add(e.hash)
      entries.push(e)
    }
  }
  return { entries: entries.sort((a, b) => a.time.localeCompare(b.time)), remote }
}

function toRecord(e: AuditEntry): LedgerRecord {
  return {
    requestId: e.request.id,
    outcome: e.outcome.status,
    action: e.action,
    provider: e.provider,
    target: e.target,
    ...(e.credential.versionBefore ? { versionBefore: e.credential.versionBefore } : {}),
    ...(e.credential.versionAfter ? { versionAfter: e.credential.versionAfter } : {}),
    time: e.time,
  }
}
