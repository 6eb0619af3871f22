/**
 * `nhi-recover demo DIR`, the README's first Quick start command, through the built CLI: every
 * step in plain words, keys named by principal, a ledger that verifies, and "go on by hand"
 * commands that work as printed.
 */
import { execaCommand } from 'execa'
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { envelope, runCli } from '../helpers/cli.js'

describe('nhi-recover demo (built CLI)', () => {
  const root = mkdtempSync(join(tmpdir(), 'nhi-demo-cli-'))
  afterAll(() => rmSync(root, { recursive: true, force: true }))

  it('runs the whole routine offline and leaves a repo a person can go on with', async () => {
    const dir = join(root, 'demo')
    const run = await runCli(['demo', dir], { timeoutMs: 60_000 })
    expect(run.exitCode, run.stdout + run.stderr).toBe(0)
    const steps = run.stdout.split('\n').filter((l) => /^\d\. /.test(l))
    expect(steps.map((l) => l.split(':')[0])).toEqual([
      '1. Keys',
      '2. Repo',
      '3. Provider',
      '4. Request',
      '5. Review',
      '6. Merge',
      '7. Execute',
      '8. Verify',
    ])
    expect(run.stdout).toMatch(/rotated demo-api-key from version 1 to 2/)

    // Keys under DIR/keys/, each file named by its principal, private keys readable by the owner only.
    const keys = readdirSync(join(dir, 'keys'))
    for (const who of ['alice', 'bob', 'carol', 'nhi-recover-executor']) {
      expect(keys).toContain(who)
      expect(keys).toContain(`${who}.pub`)
      expect(statSync(join(dir, 'keys', who)).mode & 0o077).toBe(0)
    }

    // The "go on by hand" commands, run exactly as printed.
    const lines = run.stdout.split('\n')
    const at = lines.indexOf('Go on by hand:')
    expect(at).toBeGreaterThan(0)
    const cd = lines[at + 1]!.trim()
    expect(cd).toBe(`cd ${join(dir, 'repo')}`)
    const verifyCmd = lines
      .slice(at + 2)
      .find((l) => l.trim().endsWith(' audit verify'))!
      .trim()
    const byHand = await execaCommand(`${verifyCmd} --json`, {
      cwd: join(dir, 'repo'),
      reject: false,
      env: { CI: 'true', NO_COLOR: '1' },
    })
    expect(byHand.exitCode, String(byHand.stderr)).toBe(0)
    expect(envelope({ exitCode: 0, stdout: String(byHand.stdout), stderr: '' })).toMatchObject({
      ok: true,
      result: expect.objectContaining({ entries: 2 }),
    })
  }, 90_000)
})
