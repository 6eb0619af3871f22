/** A recovery repo with an audit ledger: bare remote, executor clone, allowed_signers committed. */
import { readdirSync } from 'node:fs'
import { join } from 'node:path'
import { sshKeySigner } from '../../providers/signers/ssh.js'
import { appendEntries, type AppendResult } from '../../src/audit/append.js'
import { rangeFromPath, type AuditEntry, type AuditEvent } from '../../src/audit/entry.js'
import type { AuditSigner } from '../../src/audit/signer.js'
import { verifyLedger, type VerifyLedgerResult } from '../../src/audit/verify.js'
import { parseAllowedSigners } from '../../src/crypto/allowed-signers.js'
import { Secret } from '../../src/secret.js'
import { ALLOWED_SIGNERS, createGitFixture, type Clone, type GitFixture } from '../harness/git.js'
import type { TestKey } from '../harness/ssh.js'
import { sampleEvent } from './events.js'

export const EXECUTOR = 'nhi-recover-executor'
export const AUDIT = 'audit'

export interface LedgerFixture {
  fx: GitFixture
  exec: Clone
  signersText: string
  signer: AuditSigner
  append(
    events: AuditEvent[] | number,
    opts?: { clone?: Clone; signer?: AuditSigner; now?: Date; signersText?: string },
  ): Promise<AppendResult>
  verify(clone?: Clone, opts?: { checkpoint?: boolean; workers?: number }): Promise<VerifyLedgerResult>
  cleanup(): void
}

export function keySigner(key: TestKey, principal = EXECUTOR): AuditSigner {
  return sshKeySigner({ principal, privateKey: new Secret(key.privatePem), source: key.privatePath })
}

let counter = 0

/**
 * The executor clone signs commits with its own key (namespace git) and audit entries with
 * `auditKey` (default: the same key). `signersLines` replaces the default allowed_signers.
 */
export function ledgerFixture(
  opts: { signersLines?: (exec: Clone) => string[]; auditKey?: (fx: GitFixture) => TestKey } = {},
): LedgerFixture {
  const fx = createGitFixture()
  const exec = fx.clone('executor', { principal: EXECUTOR })
  const auditKey = opts.auditKey?.(fx) ?? exec.key
  const lines = opts.signersLines?.(exec) ?? [
    `${EXECUTOR} namespaces="nhi-recover-audit,git" ${exec.key.publicLine}`,
  ]
  const signersText = lines.join('\n') + '\n'
  exec.write(ALLOWED_SIGNERS, signersText)
  exec.commitAll('trust the executor key')
  exec.git('push', '-q', 'origin', 'HEAD:main')
  const signer = keySigner(auditKey)
  return {
    fx,
    exec,
    signersText,
    signer,
    append(events, o = {}) {
      const list =
        typeof events === 'number' ? Array.from({ length: events }, () => sampleEvent(++counter)) : events
      return appendEntries({
        repoRoot: (o.clone ?? exec).dir,
        auditPath: AUDIT,
        events: list,
        signer: o.signer ?? signer,
        allowedSigners: parseAllowedSigners(o.signersText ?? signersText),
        ...(o.now ? { now: () => o.now! } : {}),
      })
    },
    verify(clone = exec, o = {}) {
      return verifyLedger({
        repoRoot: clone.dir,
        auditPath: AUDIT,
        allowedSigners: { text: signersText, file: ALLOWED_SIGNERS },
        checkpoint: o.checkpoint ?? false,
        ...(o.workers !== undefined ? { workers: o.workers } : {}),
      })
    },
    cleanup: () => fx.cleanup(),
  }
}

/** The file and 1-based line of entry `seq` in a clone's working tree, with the line's text. */
export function findEntry(clone: Clone, seq: number): { path: string; line: number; text: string } {
  const root = join(clone.dir, AUDIT, 'entries')
  for (const dir of readdirSync(root).sort()) {
    for (const name of readdirSync(join(root, dir))) {
      const range = rangeFromPath(`${dir}/${name}`)
      if (range && range.first <= seq && seq <= range.last) {
        const path = `${AUDIT}/entries/${dir}/${name}`
        const lines = clone.read(path).split('\n')
        return { path, line: seq - range.first + 1, text: lines[seq - range.first]! }
      }
    }
  }
  throw new Error(`entry ${seq} not found in ${clone.dir}`)
}

/** The parsed entry `seq` from a clone's working tree. */
export function readEntry(clone: Clone, seq: number): AuditEntry {
  return JSON.parse(findEntry(clone, seq).text)
}
