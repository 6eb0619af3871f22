/**
 * `nhi-recover status` as a user runs it: the built CLI as a real process on a repo built by
 * the demo routine, before and after `execute`. Without a terminal it prints a plain table
 * and loads no ink; it never prints a credential.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { demoStore, prepareDemo, type PreparedDemo } from '../../src/demo/demo.js'
import { stages } from '../../src/engine/secret-store.js'
import { requestStatus, type StatusResult } from '../../src/engine/status.js'
import { renderStatusDashboard } from '../../src/ui/status-dashboard.js'
import { BIN, PROJECT_ROOT, envelope, runCli } from '../helpers/cli.js'

const target = { provider: 'local', mechanism: 'local', path: 'demo/api-key' } as const
const INK = /node_modules\/(ink|react|react-reconciler)\//

let root: string
let d: PreparedDemo
/** Every credential value the demo identity ever had, read from the local store. */
const canaries: string[] = []
/** Every output of status in this file, scanned for those values at the end. */
const outputs: string[] = []

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'nhi-status-cli-'))
  d = await prepareDemo({
    dir: join(root, 'd'),
    packageRoot: PROJECT_ROOT,
    version: '0.0.0-test',
    log: () => {},
  })
  canaries.push((await (await demoStore(d)).read(target, d.versionBefore)).reveal())
})
afterAll(() => rmSync(root, { recursive: true, force: true }))

async function status(args: string[] = []) {
  const r = await runCli(['status', ...args], { cwd: d.repo })
  outputs.push(r.stdout, r.stderr)
  return r
}

describe('status (built CLI)', () => {
  it('prints a plain table without a terminal, and loads neither ink nor React', async () => {
    const file = join(root, 'modules.txt')
    const r = await execa(
      'node',
      ['--require', join(PROJECT_ROOT, 'test/helpers/trace-modules.cjs'), BIN, 'status'],
      { cwd: d.repo, env: { NHI_TRACE_FILE: file, NO_COLOR: '1' }, reject: false, stdin: 'ignore' },
    )
    outputs.push(String(r.stdout), String(r.stderr))
    expect(r.exitCode, String(r.stderr)).toBe(0)
    const modules = readFileSync(file, 'utf8').split('\n').filter(Boolean)
    expect(modules.some((m) => m.includes('dist/commands/status.js'))).toBe(true)
    expect(modules.filter((m) => INK.test(m))).toEqual([])
    expect(String(r.stdout).split('\n')).toEqual([
      expect.stringMatching(/^Requests at [0-9a-f]{12} \(main\): 1 approved$/),
      '',
      expect.stringMatching(/^REQUEST +IDENTITY +STATE +DETAIL$/),
      expect.stringMatching(
        new RegExp(
          `^${d.requestId} +demo-api-key +approved +tier low approvals complete; the next execute runs it$`,
        ),
      ),
      '',
      'Last rotation of each identity:',
      '  none recorded in the audit ledger',
    ])
  })

  it('gives one JSON envelope before and after execute, with the last rotation of the identity', async () => {
    const before = envelope<StatusResult>(await status(['--json']))
    expect(before).toMatchObject({ ok: true, exitCode: 0, command: 'status' })
    expect(before.result?.requests).toEqual([
      expect.objectContaining({ requestId: d.requestId, state: 'approved', identity: 'demo-api-key' }),
    ])

    const run = await runCli(['execute', '--json'], { cwd: d.repo, timeoutMs: 60_000 })
    expect(run.exitCode, run.stderr).toBe(0)
    const current = stages(await (await demoStore(d)).describe(target)).current!
    canaries.push((await (await demoStore(d)).read(target, current.id)).reveal())

    const after = envelope<StatusResult>(await status(['--json']))
    expect(after.ok).toBe(true)
    expect(after.result?.requests).toEqual([
      expect.objectContaining({ requestId: d.requestId, state: 'done' }),
    ])
    expect(after.result?.lastRotations).toEqual([
      expect.objectContaining({
        identity: 'demo-api-key',
        requestId: d.requestId,
        versionBefore: d.versionBefore,
        versionAfter: current.id,
      }),
    ])
    const table = await status()
    expect(table.stdout).toMatch(
      new RegExp(`demo-api-key +\\S+ +${d.requestId} +rotate +${d.versionBefore} → ${current.id}`),
    )
  })

  it('exits 2 with the next step outside a recovery repo', async () => {
    const r = await runCli(['status'], { cwd: root })
    outputs.push(r.stdout, r.stderr)
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toMatch(/No nhi-recover\.yaml found/)
    expect(r.stderr).toMatch(/^Next: /m)
  })

  it('never prints a credential value: table, JSON or dashboard', async () => {
    // The dashboard is what a terminal gets; render it from the same service result.
    outputs.push(
      renderStatusDashboard(await requestStatus({ cwd: d.repo, now: new Date() }), { columns: 120 }),
    )
    expect(canaries).toHaveLength(2)
    expect(outputs.length).toBeGreaterThanOrEqual(8)
    for (const value of canaries) {
      expect(value.length).toBeGreaterThanOrEqual(20)
      for (const out of outputs) expect(out.includes(value), 'a credential value was printed').toBe(false)
    }
  })
})
