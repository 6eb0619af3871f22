/**
 * `nhi-recover plan --pr N`: what the pull request would do and what it still needs. It runs
 * the approval gate, reads each target's current version ids (never a value), keeps one
 * sticky comment on the PR up to date and sets the commit status nhi-recover/approvals.
 */
import type { RecoveryRequest, RepoConfig } from '../spec/schema.js'
import { isNhiError } from '../errors.js'
import type { Forge, ForgeFactory } from './forge.js'
import { checkApprovals, loadConfigAt, type GateResult, type SubjectResult } from './gate.js'

export const PLAN_MARKER = '<!-- nhi-recover:plan -->'
export const STATUS_CONTEXT = 'nhi-recover/approvals'

/** Version ids of a target as a provider reports them; never a value. */
export type TargetVersions =
  | { read: true; exists: boolean; current?: string; previous?: string; pending?: string; versions: number }
  | { read: false; why: string }

/** Reads a target's version ids; implemented over the secret store adapters. */
export type TargetStateReader = (spec: RecoveryRequest, config: RepoConfig) => Promise<TargetVersions>

export interface PlanOptions {
  cwd: string
  pr: number
  base?: string
  now: Date
  forgeFactory: ForgeFactory
  readState: TargetStateReader
  executors?: string[]
}

export interface PlanResult {
  gate: GateResult
  targets: Record<string, TargetVersions>
  comment: { id: number; url: string; action: 'created' | 'updated' | 'unchanged' }
  status: { state: 'success' | 'failure'; context: string; description: string }
  markdown: string
}

/** Runs the plan for one pull request and publishes it. */
export async function planPullRequest(opts: PlanOptions): Promise<PlanResult> {
  let forge: Forge | undefined
  const forgeFactory: ForgeFactory = async (s) => (forge = await opts.forgeFactory(s))
  const gate = await checkApprovals({
    cwd: opts.cwd,
    pr: opts.pr,
    ...(opts.base ? { base: opts.base } : {}),
    now: opts.now,
    forgeFactory,
    ...(opts.executors ? { executors: opts.executors } : {}),
  })
  const config = await loadConfigAt(opts.cwd, gate.base)
  const targets: Record<string, TargetVersions> = {}
  for (const s of gate.subjects) {
    if (!s.spec) continue
    try {
      targets[s.subject.path] = await opts.readState(s.spec, config)
    } catch (err) {
      targets[s.subject.path] = {
        read: false,
        why: isNhiError(err) ? err.message : 'the provider could not be read',
      }
    }
  }
  const markdown = renderPlanMarkdown(gate, targets)
  const comment = await forge!.upsertComment(opts.pr, PLAN_MARKER, markdown)
  const state = gate.allowed ? 'success' : 'failure'
  const description = statusDescription(gate)
  await forge!.setStatus(gate.head, { state, context: STATUS_CONTEXT, description, targetUrl: comment.url })
  return { gate, targets, comment, status: { state, context: STATUS_CONTEXT, description }, markdown }
}

/** At most 140 characters, as GitHub allows. */
export function statusDescription(gate: GateResult): string {
  const n = gate.subjects.length
  const blocked = gate.subjects.filter((s) => !s.allowed).length
  const text =
    n === 0
      ? 'Nothing to approve'
      : blocked === 0
        ? `Approved: ${n} item${n === 1 ? '' : 's'} ready to execute after merge`
        : `Blocked: ${blocked} of ${n} need${blocked === 1 ? 's' : ''} approvals. ${gate.subjects.find((s) => !s.allowed)!.reasons[0] ?? ''}`
  return text.length > 140 ? text.slice(0, 139) + '…' : text
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ')

function versionsCell(v: TargetVersions | undefined): string {
  if (!v) return '—'
  if (!v.read) return `not read: ${v.why}`
  if (!v.exists) return 'no secret yet'
  return [`current \`${v.current ?? 'none'}\``, ...(v.pending ? [`pending \`${v.pending}\``] : [])].join(', ')
}

function approvalsCell(s: SubjectResult): string {
  const counted = s.approvals.filter((a) => a.counted)
  if (counted.length === 0) return 'none'
  return counted
    .map(
      (a) =>
        `${a.approver}${a.backend === 'ssh' ? ' (signed)' : ''}${a.teams.length ? ` [${a.teams.join(', ')}]` : ''}`,
    )
    .join(', ')
}

function missingCell(s: SubjectResult): string {
  if (s.allowed) return '✅ nothing'
  return s.reasons
    .filter((r) => r.startsWith('needs ') || !s.reasons.some((x) => x.startsWith('needs ')))
    .join('; ')
}

/** The sticky comment: one table row per subject, then every reason in full. */
export function renderPlanMarkdown(gate: GateResult, targets: Record<string, TargetVersions>): string {
  const lines = [PLAN_MARKER, '### nhi-recover plan', '']
  if (gate.subjects.length === 0) {
    lines.push('This pull request changes no recovery request and no policy file: nothing to approve.')
  } else {
    lines.push(
      gate.allowed
        ? '**Approved.** Everything below may execute once this pull request merges.'
        : '**Blocked.** Some items below still need approvals.',
      '',
      '| request | identity | target | action | tier | current version | approvals that count | missing |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    )
    for (const s of gate.subjects) {
      const r = s.request
      lines.push(
        '| ' +
          [
            `\`${s.subject.id}\``,
            r ? `${r.identity} (${r.type})` : 'policy',
            r ? `${r.provider}: ${r.mechanism} \`${r.target}\`` : `\`${s.subject.path}\``,
            r ? r.action : 'edit',
            s.tier.risk ?? '—',
            r ? versionsCell(targets[s.subject.path]) : '—',
            approvalsCell(s),
            missingCell(s),
          ]
            .map(cell)
            .join(' | ') +
          ' |',
      )
    }
    for (const s of gate.subjects) {
      if (s.allowed && s.tier.because.length < 2) continue
      lines.push(
        '',
        `<details><summary><code>${s.subject.id}</code>: ${s.allowed ? 'approved' : 'blocked'}</summary>`,
        '',
      )
      if (s.tier.because.length) lines.push(`Tier ${s.tier.risk ?? '—'}: ${s.tier.because.join('; ')}.`, '')
      for (const reason of s.reasons) lines.push(`- ${reason}`)
      lines.push('', '</details>')
    }
  }
  lines.push(
    '',
    `<sub>For ${gate.head.slice(0, 7)}; the policy in force is the base branch's (${gate.base.slice(0, 7)}). Updated by \`nhi-recover plan\`.</sub>`,
    '',
  )
  return lines.join('\n')
}
