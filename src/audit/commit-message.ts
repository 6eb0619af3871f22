/** The structured message of an audit commit: a subject for people, trailers for the verifier. */
import type { AuditEntry } from './entry.js'

export const AUDIT_COMMIT_MARKER = 'Nhi-Recover-Audit: v1'

export interface AuditCommitInfo {
  first: number
  last: number
  /** Hash of entry `last`: the tail the commit vouches for. */
  tailHash: string
}

/** The message for a commit that adds `entries` (consecutive, ascending). */
export function auditCommitMessage(entries: readonly AuditEntry[]): string {
  const first = entries[0]!
  const last = entries[entries.length - 1]!
  const requests = [...new Set(entries.map((e) => e.request.id))]
  const shown = requests.slice(0, 5).join(', ') + (requests.length > 5 ? `, … (${requests.length})` : '')
  const range =
    first.sequence === last.sequence
      ? `entry ${first.sequence}`
      : `entries ${first.sequence}..${last.sequence}`
  return [
    `audit: ${range} (${shown})`,
    '',
    AUDIT_COMMIT_MARKER,
    `Audit-First: ${first.sequence}`,
    `Audit-Last: ${last.sequence}`,
    `Audit-Tail-Hash: ${last.hash}`,
    '',
  ].join('\n')
}

/** The trailers of an audit commit, or undefined when the message is not one. */
export function parseAuditCommitMessage(message: string): AuditCommitInfo | undefined {
  const lines = message.split('\n')
  if (!lines.includes(AUDIT_COMMIT_MARKER)) return undefined
  const get = (name: string) => {
    const hits = lines.filter((l) => l.startsWith(name + ': '))
    return hits.length === 1 ? hits[0]!.slice(name.length + 2) : undefined
  }
  const first = Number(get('Audit-First'))
  const last = Number(get('Audit-Last'))
  const tailHash = get('Audit-Tail-Hash')
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first < 1 || last < first)
    return undefined
  if (!tailHash || !/^[0-9a-f]{64}$/.test(tailHash)) return undefined
  return { first, last, tailHash }
}
