/** Appending to the ledger on real git repos: races, retries, carried-over commits, refusals, canaries. */
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { batchPath } from '../../src/audit/entry.js'
import { isNhiError } from '../../src/errors.js'
import { Secret } from '../../src/secret.js'
import { AUDIT, findEntry, ledgerFixture, readEntry, type LedgerFixture } from './ledger-fixture.js'
import { sampleEvent } from './events.js'

let lf: LedgerFixture | undefined
afterEach(() => lf?.cleanup())

describe('appending to the ledger', () => {
  it('writes one file of canonical entries, named by its range and sharded by thousands, in one signed commit', async () => {
    lf = ledgerFixture()
    const r = await lf.append(3)
    expect(r).toMatchObject({ pushed: true, attempts: 1, carried: 0 })
    expect(r.entries.map((e) => e.sequence)).toEqual([1, 2, 3])
    expect(r.entries[0]!.prevHash).toBeNull()
    expect(r.entries[1]!.prevHash).toBe(r.entries[0]!.hash)
    expect(lf.exec.git('log', '-1', '--format=%G? %s')).toMatch(/^G audit: entries 1\.\.3 /)
    expect(lf.exec.git('show', '--name-only', '--format=', 'HEAD')).toBe(
      'audit/entries/0000000/0000000001-0000000003.jsonl',
    )
    expect(batchPath(AUDIT, 1000, 1500)).toBe('audit/entries/0000001/0000001000-0000001500.jsonl')
    const lines = lf.exec.read(batchPath(AUDIT, 1, 3)).split('\n')
    expect(lines).toHaveLength(4)
    expect(lines[3]).toBe('')
    expect(JSON.stringify(JSON.parse(lines[1]!))).toBe(lines[1]) // compact; keys sorted is checked by verify
    expect(lf.fx.remote).toBeTruthy()
    expect(lf.exec.git('rev-parse', 'origin/main')).toBe(r.commit)
  })

  it('loses a push race, fetches, re-chains onto the winner and pushes', async () => {
    lf = ledgerFixture()
    const other = lf.fx.clone('executor-2', { key: lf.exec.key })
    await lf.append(1)
    other.git('pull', '-q', 'origin', 'main')
    const winner = sampleEvent(500)
    const loser = sampleEvent(501)
    // Just before our push, the other executor appends and pushes first.
    const { appendEntries } = await import('../../src/audit/append.js')
    const { parseAllowedSigners } = await import('../../src/crypto/allowed-signers.js')
    const signers = parseAllowedSigners(lf.signersText)
    const result = await appendEntries({
      repoRoot: lf.exec.dir,
      auditPath: AUDIT,
      events: [loser],
      signer: lf.signer,
      allowedSigners: signers,
      beforePush: async (attempt) => {
        if (attempt === 1)
          await appendEntries({
            repoRoot: other.dir,
            auditPath: AUDIT,
            events: [winner],
            signer: lf!.signer,
            allowedSigners: signers,
          })
      },
    })
    expect(result.attempts).toBe(2)
    expect(result.entries).toHaveLength(1)
    const auditor = lf.fx.clone('auditor')
    const v = await lf.verify(auditor)
    expect(v.problems).toEqual([])
    expect(v.entries).toBe(3)
    const ids = [2, 3].map((n) => readEntry(auditor, n).request.id)
    expect(ids).toEqual([winner.request.id, loser.request.id])
  })

  it('lets two executors append at the same time without losing or duplicating an entry', async () => {
    lf = ledgerFixture()
    const a = lf.exec
    const b = lf.fx.clone('executor-b', { key: lf.exec.key })
    const events = (base: number) => [sampleEvent(base), sampleEvent(base + 1)]
    for (let round = 0; round < 3; round++) {
      await Promise.all([
        lf.append(events(100 + round * 10), { clone: a }),
        lf.append(events(200 + round * 10), { clone: b }),
      ])
    }
    const auditor = lf.fx.clone('auditor')
    const v = await lf.verify(auditor)
    expect(v.problems).toEqual([])
    expect(v.entries).toBe(12)
    const ids = Array.from({ length: 12 }, (_, i) => readEntry(auditor, i + 1).request.id)
    expect(new Set(ids).size).toBe(12)
  })

  it('keeps an audit commit that could not be pushed and carries it into the next run', async () => {
    lf = ledgerFixture()
    await lf.append(1)
    // The remote declines every push for a while (say, a maintenance hook).
    const hook = join(lf.fx.remote, 'hooks', 'pre-receive')
    writeFileSync(hook, '#!/bin/sh\necho "maintenance" >&2\nexit 1\n', { mode: 0o755 })
    const err = await lf.append([sampleEvent(7)]).catch((e) => e)
    expect(isNhiError(err) && err.kind).toBe('external')
    expect(lf.exec.git('log', '-1', '--format=%s')).toMatch(/^audit: entry 2 /)
    rmSync(hook)
    const r = await lf.append([sampleEvent(8)])
    expect(r).toMatchObject({ carried: 1, pushed: true })
    expect(r.entries.map((e) => e.request.id)).toEqual([sampleEvent(7).request.id, sampleEvent(8).request.id])
    expect((await lf.verify(lf.fx.clone('auditor'))).problems).toEqual([])
  })

  it('refuses to write over uncommitted changes in the audit directory', async () => {
    lf = ledgerFixture()
    await lf.append(1)
    lf.exec.write(findEntry(lf.exec, 1).path, 'edited\n')
    await expect(lf.append(1)).rejects.toThrowError(/audit\/ has uncommitted changes/)
  })

  it('refuses to reset unpushed work that is not an audit commit', async () => {
    lf = ledgerFixture()
    lf.exec.write('recovery-specs/rr-x.yaml', 'x: 1\n')
    lf.exec.commitAll('a spec')
    await expect(lf.append(1)).rejects.toThrowError(
      /unpushed commit [0-9a-f]{12} that is not an audit commit/,
    )
    expect(lf.exec.git('log', '-1', '--format=%s')).toBe('a spec')
  })

  it('refuses to commit unsigned and leaves nothing behind', async () => {
    lf = ledgerFixture()
    lf.exec.git('config', '--unset', 'user.signingkey')
    lf.exec.git('config', 'gpg.ssh.program', 'false')
    await expect(lf.append(1)).rejects.toThrowError(/Could not make the signed audit commit/)
    expect(lf.exec.git('status', '--porcelain')).toBe('')
    expect(lf.exec.git('log', '-1', '--format=%s')).toBe('trust the executor key')
  })
})

describe('no secret value ever reaches the ledger', () => {
  const CANARY = 'canary-Zq8vN3xR7tLp2WmK5yHs'

  it('refuses an event that carries a live secret, withholds a secret-looking reason, and leaves no trace in git', async () => {
    lf = ledgerFixture()
    const secret = new Secret(CANARY)
    const leakyVersion = sampleEvent(1, { credential: { versionBefore: '1', versionAfter: secret.reveal() } })
    await expect(lf.append([leakyVersion])).rejects.toThrowError(/holds a secret value; it was not written/)
    const leakyReason = sampleEvent(2, {
      outcome: { status: 'failed', reason: `login failed with ${secret.reveal()}` },
    })
    await expect(lf.append([leakyReason])).rejects.toThrowError(/holds a secret value/)
    const tokenReason = sampleEvent(3, {
      outcome: { status: 'failed', reason: 'bad token ghp_abcdefghijklmnopqrstuvwxyz0123456789' },
    })
    const r = await lf.append([tokenReason, sampleEvent(4)])
    expect(r.entries[0]!.outcome.reason).toBe('[reason withheld: it looked like it contained a GitHub token]')

    const everything = [
      lf.exec.git('log', '-p', '--all', '--format=%H%n%B'),
      ...walk(lf.exec.dir).map((f) => readFileSync(f, 'utf8')),
    ].join('\n')
    expect(everything).not.toContain(CANARY)
    expect(everything).not.toContain('ghp_abcdefghijklmnopqrstuvwxyz0123456789')
    secret.dispose()
  })
})

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    if (name === 'objects') return [] // packed and compressed; covered by git log -p
    return statSync(p).isDirectory() ? walk(p) : [p]
  })
}

describe('verifying edge cases', () => {
  it('verifies an empty ledger as zero entries', async () => {
    lf = ledgerFixture()
    const v = await lf.verify()
    expect(v).toMatchObject({ ok: true, entries: 0, auditCommits: 0, tail: null })
  })

  it('verifies an older commit without mistaking it for a rewrite of what the clone verified last', async () => {
    lf = ledgerFixture()
    await lf.append(1)
    await lf.append(1)
    const { verifyLedger } = await import('../../src/audit/verify.js')
    const opts = {
      repoRoot: lf.exec.dir,
      auditPath: AUDIT,
      allowedSigners: { text: lf.signersText, file: 'x' },
    }
    expect((await verifyLedger(opts)).ok).toBe(true) // records the checkpoint at entry 2
    const older = await verifyLedger({ ...opts, rev: 'HEAD~1' })
    expect(older.problems).toEqual([])
    expect(older.entries).toBe(1)
  })

  it('refuses a shallow clone, which cannot show that history was not rewritten', async () => {
    lf = ledgerFixture()
    await lf.append(1)
    await lf.append(1)
    const shallow = join(lf.fx.root, 'shallow')
    lf.exec.git('clone', '-q', '--depth', '1', `file://${lf.fx.remote}`, shallow)
    const { verifyLedger } = await import('../../src/audit/verify.js')
    await expect(
      verifyLedger({
        repoRoot: shallow,
        auditPath: AUDIT,
        allowedSigners: { text: lf.signersText, file: 'x' },
      }),
    ).rejects.toThrowError(/This clone is shallow.*/)
  })
})
