/**
 * The commands docs/audit-format.md gives for checking one entry with plain OpenSSH, run as
 * written (only SEQ changed) against real ledgers: ssh-keygen -Y verify, jq and sha256sum.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { PROJECT_ROOT } from '../helpers/cli.js'
import { EXECUTOR, keySigner, ledgerFixture, readEntry, type LedgerFixture } from './ledger-fixture.js'

const doc = readFileSync(join(PROJECT_ROOT, 'docs', 'audit-format.md'), 'utf8')
const block = /<!-- verify-one-entry:start -->\s*```sh\n([\s\S]*?)```\s*<!-- verify-one-entry:end -->/.exec(
  doc,
)?.[1]

function runDocCommands(dir: string, seq: number) {
  expect(block, 'docs/audit-format.md has the verify-one-entry block').toBeTruthy()
  expect(block).toContain('SEQ=42\n')
  const script = block!.replace('SEQ=42\n', `SEQ=${seq}\n`)
  const r = spawnSync('bash', ['-euo', 'pipefail', '-c', script], { cwd: dir, encoding: 'utf8' })
  const stored = /stored: +([0-9a-f]+)/.exec(r.stdout)?.[1]
  const recomputed = /recomputed: +([0-9a-f]+)/.exec(r.stdout)?.[1]
  return { ...r, stored, recomputed }
}

const hasJq = spawnSync('jq', ['--version']).status === 0

let lf: LedgerFixture | undefined
afterEach(() => lf?.cleanup())

describe.skipIf(!hasJq)('checking a single entry with the documented ssh-keygen commands', () => {
  it('accepts an entry: good signature, and the recomputed hash equals the stored one', async () => {
    lf = ledgerFixture()
    await lf.append(3)
    const r = runDocCommands(lf.exec.dir, 2)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout + r.stderr).toContain(
      `Good "nhi-recover-audit" signature for ${EXECUTOR} with ED25519 key`,
    )
    expect(r.stored).toBe(readEntry(lf.exec, 2).hash)
    expect(r.recomputed).toBe(r.stored)
  })

  it('refuses an entry whose hash was changed, and shows a changed field in the recomputed hash', async () => {
    lf = ledgerFixture()
    await lf.append(2)
    const file = execFileSync('git', ['ls-files', 'audit/entries'], {
      cwd: lf.exec.dir,
      encoding: 'utf8',
    }).trim()
    const text = lf.exec.read(file)
    const e = readEntry(lf.exec, 1)
    lf.exec.write(
      file,
      text.replace(
        e.hash,
        e.hash.replace(/^./, (c) => (c === '0' ? '1' : '0')),
      ),
    )
    const forged = runDocCommands(lf.exec.dir, 1)
    expect(forged.status).not.toBe(0)
    expect(forged.stderr).toMatch(/Signature verification failed|incorrect signature/i)

    const lines = text.split('\n')
    lines[1] = lines[1]!.replace('"action":"rotate"', '"action":"revoke"')
    lf.exec.write(file, lines.join('\n'))
    const edited = runDocCommands(lf.exec.dir, 2)
    expect(edited.status, edited.stderr).toBe(0) // the signature over the stored hash is still good…
    expect(edited.recomputed).not.toBe(edited.stored) // …but the hash no longer matches the content
  })

  it('checks an old-key entry at its own time after a rotation', async () => {
    let old: ReturnType<LedgerFixture['fx']['key']> | undefined
    lf = ledgerFixture({
      auditKey: (fx) => (old = fx.key('audit-2024')),
      signersLines: (exec) => [
        `${EXECUTOR} namespaces="git" ${exec.key.publicLine}`,
        `${EXECUTOR} namespaces="nhi-recover-audit",valid-before="20250601000000Z" ${old!.publicLine}`,
      ],
    })
    await lf.append(1, { now: new Date('2025-05-20T12:00:00Z'), signer: keySigner(old!) })
    const r = runDocCommands(lf.exec.dir, 1)
    expect(r.status, r.stderr).toBe(0)
    expect(r.recomputed).toBe(r.stored)
  })
})
