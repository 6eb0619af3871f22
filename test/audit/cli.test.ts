/** The audit commands as a user runs them: the built CLI, a real clone, real signatures. */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { batchPath } from '../../src/audit/entry.js'
import { CSV_COLUMNS } from '../../src/audit/service.js'
import { envelope, runCli } from '../helpers/cli.js'
import { AUDIT, ledgerFixture, type LedgerFixture } from './ledger-fixture.js'
import { sampleEvent } from './events.js'

let lf: LedgerFixture
beforeAll(async () => {
  lf = ledgerFixture()
  await lf.append([sampleEvent(1), sampleEvent(2)])
  await lf.append([
    sampleEvent(3, { outcome: { status: 'rolled-back', reason: 'verification failed: =HYPERLINK("x")' } }),
  ])
})
afterAll(() => lf?.cleanup())

describe('nhi-recover audit verify', () => {
  it('verifies a good ledger from the clone alone', async () => {
    const r = await runCli(['audit', 'verify', '--no-checkpoint'], { cwd: lf.exec.dir })
    expect(r.stderr).toBe('')
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toMatch(/^Audit ledger verified: 3 entries in 2 signed audit commit\(s\), tail entry 3 /)
    const j = envelope<{ entries: number; ok: boolean }>(
      await runCli(['audit', 'verify', '--json', '--no-checkpoint'], { cwd: lf.exec.dir }),
    )
    expect(j).toMatchObject({
      ok: true,
      exitCode: 0,
      command: 'audit:verify',
      result: { ok: true, entries: 3 },
    })
  })

  it('exits 1 naming the first bad entry and why, in words and in --json', async () => {
    const tampered = lf.fx.clone('tampered')
    const file = batchPath(AUDIT, 1, 2)
    tampered.write(file, tampered.read(file).replace('"provider":"local"', '"provider":"locaI"'))
    tampered.commitAll('edit')
    const r = await runCli(['audit', 'verify', '--no-checkpoint'], { cwd: tampered.dir })
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(
      /^Error: The audit ledger does not verify: entry 2 \(audit\/entries\/0000000\/0000000001-0000000002\.jsonl line 2\) content does not match its hash/,
    )
    expect(r.stderr).toMatch(/\nNext: Do not trust the ledger past this point/)
    expect(r.stderr).not.toMatch(/\n\s+at /) // no stack trace
    expect(r.stdout).toContain(
      'entry 2 (audit/entries/0000000/0000000001-0000000002.jsonl line 2) was modified by commit',
    )
    const j = envelope<{ problems: { sequence: number; code: string }[] }>(
      await runCli(['audit', 'verify', '--json', '--no-checkpoint'], { cwd: tampered.dir }),
    )
    expect(j).toMatchObject({
      ok: false,
      exitCode: 1,
      error: { kind: 'check-failed', code: 'AUDIT_TAMPERED' },
    })
    expect(j.result!.problems[0]).toMatchObject({ sequence: 2, code: 'ENTRY_HASH_MISMATCH' })
  })

  it('is a usage error outside a git clone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nhi-not-git-'))
    try {
      const r = await runCli(['audit', 'verify'], { cwd: dir })
      expect(r.exitCode).toBe(2)
      expect(r.stderr).toMatch(/is not a git clone of a recovery repo/)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('is a usage error without allowed signers to trust', async () => {
    const r = await runCli(['audit', 'verify', '--allowed-signers', 'nope'], { cwd: lf.exec.dir })
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toMatch(/No allowed_signers file at nope/)
  })
})

describe('nhi-recover audit log', () => {
  it('shows a table, filtered by identity', async () => {
    const r = await runCli(['audit', 'log', '--identity', sampleEvent(1).request.identity], {
      cwd: lf.exec.dir,
    })
    expect(r.exitCode).toBe(0)
    expect(r.stdout).toMatch(/^SEQ +TIME +REQUEST +IDENTITY +PROVIDER +ACTION +OUTCOME +VERSION\n/)
    expect(r.stdout).toContain(sampleEvent(1).request.id)
    expect(r.stdout).not.toContain(sampleEvent(2).request.id)
    expect(r.stdout).toMatch(/\n1 entry$/)
  })

  it('gives --json and filters by request, provider and date', async () => {
    const byRequest = envelope<{ count: number; entries: { sequence: number }[] }>(
      await runCli(['audit', 'log', '--json', '--request', sampleEvent(3).request.id], { cwd: lf.exec.dir }),
    )
    expect(byRequest.result).toMatchObject({ count: 1, entries: [{ sequence: 3 }] })
    const byProvider = envelope<{ count: number }>(
      await runCli(['audit', 'log', '--json', '--provider', 'bao'], { cwd: lf.exec.dir }),
    )
    expect(byProvider.result!.count).toBe(2)
    const future = envelope<{ count: number }>(
      await runCli(['audit', 'log', '--json', '--since', '2999-01-01'], { cwd: lf.exec.dir }),
    )
    expect(future.result!.count).toBe(0)
    const past = envelope<{ count: number }>(
      await runCli(['audit', 'log', '--json', '--until', '2000-01-01T00:00:00Z'], { cwd: lf.exec.dir }),
    )
    expect(past.result!.count).toBe(0)
  })

  it('refuses a date it cannot read', async () => {
    const r = await runCli(['audit', 'log', '--since', 'yesterday'], { cwd: lf.exec.dir })
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toMatch(/--since must be a date/)
  })
})

describe('nhi-recover audit export', () => {
  it('exports JSON lines exactly as the entries are stored', async () => {
    const r = await runCli(['audit', 'export', '--format', 'jsonl'], { cwd: lf.exec.dir })
    expect(r.exitCode).toBe(0)
    const stored = lf.exec.read(batchPath(AUDIT, 1, 2)) + lf.exec.read(batchPath(AUDIT, 3, 3))
    expect(r.stdout + '\n').toBe(stored)
  })

  it('exports CSV with a header, quoting, and no spreadsheet formulas', async () => {
    const r = await runCli(['audit', 'export', '--format', 'csv', '--output', 'out.csv', '--json'], {
      cwd: lf.exec.dir,
    })
    expect(envelope(r).result).toMatchObject({ format: 'csv', count: 3, output: 'out.csv' })
    const lines = readFileSync(join(lf.exec.dir, 'out.csv'), 'utf8').trimEnd().split('\n')
    expect(lines[0]).toBe(CSV_COLUMNS.join(','))
    expect(lines).toHaveLength(4)
    expect(lines[3]).toContain(`"verification failed: =HYPERLINK(""x"")"`)
    expect(lines[3]).toContain(',rolled-back,')
  })

  it('needs --output with --json', async () => {
    const r = await runCli(['audit', 'export', '--format', 'jsonl', '--json'], { cwd: lf.exec.dir })
    expect(r.exitCode).toBe(2)
    expect(envelope(r).error?.message).toMatch(/needs --output FILE/)
  })
})

describe('a ledger large enough for worker threads', () => {
  it('verifies 2,500 entries with the built CLI in parallel and still names a bad entry', async () => {
    const big = ledgerFixture()
    try {
      await big.append(2500)
      const ok = envelope<{ entries: number; verifier: { workers: number; backend: string } }>(
        await runCli(['audit', 'verify', '--json', '--no-checkpoint'], {
          cwd: big.exec.dir,
          timeoutMs: 60_000,
        }),
      )
      expect(ok.result).toMatchObject({ entries: 2500 })
      expect(ok.result!.verifier.workers).toBeGreaterThan(0)
      expect(ok.result!.verifier.backend).toBe('libsodium')
      const p = batchPath(AUDIT, 1, 2500)
      const lines = big.exec.read(p).split('\n')
      lines[1776] = lines[1776]!.replace('"succeeded"', '"failed"')
      big.exec.write(p, lines.join('\n'))
      big.exec.commitAll('flip an outcome')
      const bad = envelope<{ problems: { sequence: number; code: string }[] }>(
        await runCli(['audit', 'verify', '--json', '--no-checkpoint'], {
          cwd: big.exec.dir,
          timeoutMs: 60_000,
        }),
      )
      expect(bad.result!.problems[0]).toMatchObject({ sequence: 1777, code: 'ENTRY_HASH_MISMATCH' })
    } finally {
      big.cleanup()
    }
  }, 120_000)
})
