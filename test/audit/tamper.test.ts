/**
 * Every tampering case the ledger must catch, each on a real git repo with real SSH-signed
 * commits, each asserting a message that names the entry.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { batchPath } from '../../src/audit/entry.js'
import type { VerifyLedgerResult } from '../../src/audit/verify.js'
import { ALLOWED_SIGNERS } from '../harness/git.js'
import { AUDIT, EXECUTOR, keySigner, ledgerFixture, type LedgerFixture } from './ledger-fixture.js'
import { sampleEvent } from './events.js'

let lf: LedgerFixture | undefined
afterEach(() => lf?.cleanup())

/** Three entries in three signed audit commits, pushed. */
async function threeEntries(opts: Parameters<typeof ledgerFixture>[0] = {}): Promise<LedgerFixture> {
  lf = ledgerFixture(opts)
  for (let i = 0; i < 3; i++) await lf.append(1)
  const v = await lf.verify()
  expect(v.problems).toEqual([])
  expect(v).toMatchObject({ ok: true, entries: 3, auditCommits: 3 })
  return lf
}

function firstProblem(v: VerifyLedgerResult) {
  expect(v.ok).toBe(false)
  return v.problems[0]!
}

/** The file of entry `seq` when each append added one entry. */
const p = (seq: number) => batchPath(AUDIT, seq, seq)
describe('audit verify detects tampering', () => {
  it('catches one byte changed in an old entry', async () => {
    const { exec, verify } = await threeEntries()
    const text = exec.read(p(2))
    exec.write(p(2), text.replace('rotated, verified', 'rotated; verified'))
    exec.commitAll('fix typo in audit entry')
    const v = await verify()
    const first = firstProblem(v)
    expect(first).toMatchObject({ sequence: 2, code: 'ENTRY_HASH_MISMATCH' })
    expect(first.message).toContain(`entry 2 (${p(2)} line 1) content does not match its hash`)
    expect(v.problems.map((x) => x.code)).toContain('ENTRY_MODIFIED')
  })

  it('catches an entry deleted', async () => {
    const { exec, verify } = await threeEntries()
    exec.git('rm', '-q', p(2))
    exec.commitAll('drop an entry')
    const v = await verify()
    expect(firstProblem(v)).toMatchObject({ sequence: 2, code: 'ENTRY_MISSING' })
    expect(v.problems[0]!.message).toBe('entry 2 is missing: the chain jumps to entry 3')
    expect(v.problems.find((x) => x.code === 'ENTRY_DELETED')?.message).toMatch(
      /^entry 2 .* was deleted by commit [0-9a-f]{12}/,
    )
  })

  it('catches two entries reordered', async () => {
    const { exec, verify } = await threeEntries()
    const two = exec.read(p(2))
    const three = exec.read(p(3))
    exec.write(p(2), three)
    exec.write(p(3), two)
    exec.commitAll('reorder')
    const v = await verify()
    expect(firstProblem(v)).toMatchObject({ sequence: 2, code: 'ENTRY_MISPLACED' })
    expect(v.problems[0]!.message).toBe(
      `entry 2 (${p(2)} line 1) holds entry 3: entries were moved or reordered`,
    )
  })

  it('catches two entries reordered inside one file', async () => {
    const { exec, append, verify } = await threeEntries()
    await append(2)
    const path = batchPath(AUDIT, 4, 5)
    const [four, five] = exec.read(path).split('\n')
    exec.write(path, `${five}\n${four}\n`)
    exec.commitAll('reorder lines')
    const v = await verify()
    expect(firstProblem(v)).toMatchObject({ sequence: 4, code: 'ENTRY_MISPLACED' })
    expect(v.problems[0]!.message).toBe(
      `entry 4 (${path} line 1) holds entry 5: entries were moved or reordered`,
    )
  })

  it('catches an entry deleted from inside a file', async () => {
    const { exec, append, verify } = await threeEntries()
    await append(3)
    const path = batchPath(AUDIT, 4, 6)
    const lines = exec.read(path).split('\n')
    exec.write(path, [lines[0], lines[2], ''].join('\n'))
    exec.commitAll('drop a line')
    const v = await verify()
    expect(firstProblem(v)).toMatchObject({ sequence: 4, code: 'FILE_MALFORMED' })
    expect(v.problems[0]!.message).toBe(
      `entries 4..6 (${path}) should be 3 line(s), each ending in a newline, but the file holds 2`,
    )
    expect(v.problems.find((x) => x.sequence === 5)?.message).toBe(
      `entry 5 (${path} line 2) holds entry 6: entries were moved or reordered`,
    )
  })

  it('catches an entry forged and signed by an unknown key', async () => {
    const { fx, append, verify } = await threeEntries()
    const mallory = fx.key('mallory')
    // Mallory appends with her own key, trusting it herself; the repo's allowed_signers does not.
    await append([sampleEvent(99)], {
      signer: keySigner(mallory),
      signersText: `${EXECUTOR} ${mallory.publicLine}\n`,
    })
    const v = await verify()
    expect(firstProblem(v)).toMatchObject({ sequence: 4, code: 'SIGNER_UNKNOWN' })
    expect(v.problems[0]!.message).toMatch(
      /^entry 4 \(.*\) is signed by a key the allowed signers do not accept: key SHA256:\S+ is not in the allowed signers/,
    )
  })

  it('catches the tail truncated', async () => {
    const { exec, verify } = await threeEntries()
    exec.git('rm', '-q', p(3))
    exec.commitAll('truncate')
    const v = await verify()
    expect(firstProblem(v)).toMatchObject({ sequence: 3 })
    const truncated = v.problems.find((x) => x.code === 'LEDGER_TRUNCATED')!
    expect(truncated.message).toMatch(
      /^entry 3 \(audit\/entries\/0000000\/0000000003-0000000003\.jsonl line 1, no longer in the tree\) is gone: the newest signed audit commit [0-9a-f]{12} ends the ledger at entry 3, but it now ends at entry 2/,
    )
  })

  it('catches history rewritten and force-pushed to drop an entry', async () => {
    const { fx, exec, verify } = await threeEntries()
    // An insider with a trusted git key rebases entry 2's commit away and force-pushes.
    const [c3, c2] = exec.git('log', '--format=%H', '-2').split('\n')
    exec.git('rebase', '-q', '--onto', `${c2}^`, c2!, 'main')
    expect(exec.git('log', '--format=%H', '-1')).not.toBe(c3)
    exec.git('push', '-q', '--force', 'origin', 'HEAD:main')
    const auditor = fx.clone('auditor')
    const v = await verify(auditor)
    expect(firstProblem(v)).toMatchObject({ sequence: 2, code: 'ENTRY_MISSING' })
    expect(v.problems[0]!.message).toMatch(/^entry 2 is missing: the chain jumps to entry 3/)
  })

  it('catches a force-push that drops the newest audit commit, in a clone that verified it before', async () => {
    const { fx, exec, verify } = await threeEntries()
    const auditor = fx.clone('auditor')
    expect((await verify(auditor, { checkpoint: true })).ok).toBe(true)
    exec.git('reset', '-q', '--hard', 'HEAD~1')
    exec.git('push', '-q', '--force', 'origin', 'HEAD:main')
    auditor.git('fetch', '-q', 'origin')
    auditor.git('reset', '-q', '--hard', 'origin/main')
    const v = await verify(auditor, { checkpoint: true })
    expect(firstProblem(v)).toMatchObject({ sequence: 3, code: 'HISTORY_REWRITTEN' })
    expect(v.problems[0]!.message).toMatch(
      /^entry 3 was verified in this clone on .* but is no longer in the ledger: history was rewritten/,
    )
  })

  it('catches an audit commit without a signature', async () => {
    const { exec, append, verify } = await threeEntries()
    await append(1)
    exec.git('commit', '-q', '--amend', '--no-edit', '--no-gpg-sign')
    const v = await verify()
    expect(firstProblem(v)).toMatchObject({ sequence: 4, code: 'COMMIT_UNSIGNED' })
    expect(v.problems[0]!.message).toMatch(
      /^entry 4 \(.*\) were added by commit [0-9a-f]{12}, which is not signed/,
    )
  })

  it('catches an audit commit signed by a key the allowed signers do not trust for git', async () => {
    const { fx, exec, append, verify } = await threeEntries()
    const stranger = fx.key('stranger')
    exec.git('config', 'user.signingkey', stranger.privatePath)
    await append(1)
    const v = await verify()
    expect(firstProblem(v)).toMatchObject({ sequence: 4, code: 'COMMIT_SIGNATURE_INVALID' })
    expect(v.problems[0]!.message).toMatch(
      /^entry 4 \(.*\) were added by commit [0-9a-f]{12}, whose signature is not valid: key SHA256:\S+ is not in the allowed signers/,
    )
  })

  it('catches entries added by a plain commit rather than an audit commit', async () => {
    const { exec, verify } = await threeEntries()
    exec.write(p(4), exec.read(p(3)))
    exec.commitAll('copy an entry')
    const v = await verify()
    expect(
      v.problems.some(
        (x) => x.sequence === 4 && x.code === 'COMMIT_NOT_AUDIT' && x.message.startsWith('entry 4 ('),
      ),
    ).toBe(true)
  })

  it('refuses uncommitted edits of the ledger in the working tree', async () => {
    const { exec, verify } = await threeEntries()
    exec.write(p(1), exec.read(p(1)).replace('rotate', 'rotatE'))
    const v = await verify()
    expect(firstProblem(v)).toMatchObject({ sequence: 1, code: 'UNCOMMITTED_CHANGE' })
  })
})

describe('key rotation with validity windows', () => {
  const ROTATION = new Date('2025-06-01T00:00:00Z')
  const before = new Date('2025-05-20T12:00:00Z')
  const after = new Date('2025-06-10T12:00:00Z')

  async function rotated() {
    let keys:
      | { old: ReturnType<LedgerFixture['fx']['key']>; next: ReturnType<LedgerFixture['fx']['key']> }
      | undefined
    lf = ledgerFixture({
      auditKey: (fx) => {
        keys = { old: fx.key('audit-2024'), next: fx.key('audit-2025') }
        return keys.old
      },
      signersLines: (exec) => [
        `${EXECUTOR} namespaces="git" ${exec.key.publicLine}`,
        `${EXECUTOR} namespaces="nhi-recover-audit",valid-before="20250601000000Z" ${keys!.old.publicLine}`,
        `${EXECUTOR} namespaces="nhi-recover-audit",valid-after="20250601000000Z" ${keys!.next.publicLine}`,
      ],
    })
    await lf.append(1, { now: before })
    await lf.append(1, { now: after, signer: keySigner(keys!.next) })
    return { lf, keys: keys! }
  }

  it('accepts entries each signed inside its key window across a rotation', async () => {
    const { lf } = await rotated()
    expect(ROTATION < after).toBe(true)
    const v = await lf.verify()
    expect(v.problems).toEqual([])
    expect(v.entries).toBe(2)
  })

  it('refuses to append with a key outside its window', async () => {
    const { lf, keys } = await rotated()
    await expect(lf.append(1, { now: after, signer: keySigner(keys.old) })).rejects.toThrowError(
      /may not sign audit entries now: key SHA256:\S+ was valid only until 2025-06-01T00:00:00Z/,
    )
  })

  it('catches an entry signed with the retired key after the rotation', async () => {
    const { lf, keys } = await rotated()
    // Someone still holding the old key signs a new entry, trusting the key without its window.
    const lax = lf.signersText.replace(/,valid-before="[^"]+"/, '')
    await lf.append(1, { now: after, signer: keySigner(keys.old), signersText: lax })
    const v = await lf.verify()
    expect(firstProblem(v)).toMatchObject({ sequence: 3, code: 'SIGNER_OUTSIDE_VALIDITY' })
    expect(v.problems[0]!.message).toMatch(
      /^entry 3 \(.*\) is signed by a key the allowed signers do not accept: key SHA256:\S+ was valid only until 2025-06-01T00:00:00Z; signed at 2025-06-10T12:00:00Z/,
    )
  })

  it('never backdates an entry: a retired key cannot sign "before" the rotation once newer entries exist', async () => {
    const { lf, keys } = await rotated()
    const lax = lf.signersText.replace(/,valid-before="[^"]+"/, '')
    const r = await lf.append(1, { now: before, signer: keySigner(keys.old), signersText: lax })
    // The ledger moves the time up to its tail, where the old key is no longer valid.
    expect(r.entries[0]!.time).toBe(after.toISOString())
    const v = await lf.verify()
    expect(firstProblem(v)).toMatchObject({ sequence: 3, code: 'SIGNER_OUTSIDE_VALIDITY' })
  })
})

describe('allowed_signers file', () => {
  it('is read from the repo path given', async () => {
    lf = ledgerFixture()
    expect(lf.exec.read(ALLOWED_SIGNERS)).toBe(lf.signersText)
  })
})
