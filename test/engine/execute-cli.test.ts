/**
 * The executor as CI runs it: the built CLI as a real process, on a real recovery repo with a
 * bare remote, SSH-signed approvals and commits, and the local provider. Crash tests kill it
 * with SIGKILL at each step boundary and run it again.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { demoStore, prepareDemo, type PreparedDemo } from '../../src/demo/demo.js'
import { CRASH_POINTS } from '../../src/engine/test-hooks.js'
import { stages } from '../../src/engine/secret-store.js'
import { PROJECT_ROOT, envelope, runCli, type CliRun } from '../helpers/cli.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function prepared(): Promise<PreparedDemo> {
  const dir = mkdtempSync(join(tmpdir(), 'nhi-exec-cli-'))
  dirs.push(dir)
  return prepareDemo({ dir: join(dir, 'd'), packageRoot: PROJECT_ROOT, version: '0.0.0-test', log: () => {} })
}

const target = { provider: 'local', mechanism: 'local', path: 'demo/api-key' } as const

function execute(d: PreparedDemo, args: string[] = [], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(['execute', '--lock-lease', '1s', ...args], {
    cwd: d.repo,
    env: { NHI_RECOVER_TEST_MODE: '1', ...env },
    timeoutMs: 60_000,
  })
}

/** Exactly one rotation happened: one version made by the request, current, and the old one retired. */
async function expectOneRotation(d: PreparedDemo): Promise<string> {
  const state = await (await demoStore(d)).describe(target)
  const ours = state.versions.filter((v) => v.requestId === d.requestId)
  expect(ours, JSON.stringify(state.versions)).toHaveLength(1)
  expect(state.versions).toHaveLength(2)
  expect(state.versions.filter((v) => v.stages.includes('current'))).toEqual([
    expect.objectContaining({ id: ours[0]!.id }),
  ])
  expect(state.versions.filter((v) => v.stages.includes('pending'))).toEqual([])
  return ours[0]!.id
}

async function expectLedgerVerifies(d: PreparedDemo): Promise<void> {
  const v = await runCli(['audit', 'verify', '--json'], { cwd: d.repo })
  expect(v.exitCode, v.stdout + v.stderr).toBe(0)
  type Entry = { request: { id: string }; action: string; outcome: { status: string } }
  const log = envelope<Entry[] | { entries: Entry[] }>(
    await runCli(['audit', 'log', '--json'], { cwd: d.repo }),
  )
  const entries = Array.isArray(log.result) ? log.result : (log.result?.entries ?? [])
  const mine = entries.filter((e) => e.request.id === d.requestId && e.outcome.status === 'succeeded')
  // One rotation, and one retirement of the old credential (retainPrevious is 0s in the demo).
  expect(mine.map((e) => e.action).sort(), JSON.stringify(entries)).toEqual(['retire', 'rotate'])
}

describe('execute (built CLI, real git, local provider)', () => {
  it('rotates an approved request, commits one signed audit entry, and does nothing on a second run', async () => {
    const d = await prepared()
    const first = await execute(d, ['--json'])
    expect(first.exitCode, first.stderr).toBe(0)
    const env = envelope<{
      requests: Array<{ requestId: string; outcome: string; versionBefore: string }>
      audit: { commit: string }
      timing: Record<'totalMs' | 'providerMs' | 'gateMs' | 'ledgerMs' | 'locksMs', number>
    }>(first)
    expect(env.result?.requests).toEqual([
      expect.objectContaining({
        requestId: d.requestId,
        outcome: 'succeeded',
        versionBefore: d.versionBefore,
      }),
    ])
    expect(
      execFileSync('git', ['verify-commit', env.result!.audit.commit], { cwd: d.repo, stdio: 'pipe' }),
    ).toBeDefined()
    await expectOneRotation(d)
    // The run says where its time went. Ledger and locks run one at a time; the gate and the
    // provider run up to --concurrency (default 8) at once, so their sums stay within 8× the run.
    const t = env.result!.timing
    for (const kind of ['providerMs', 'gateMs', 'ledgerMs', 'locksMs'] as const)
      expect(t[kind], kind).toBeGreaterThan(0)
    expect(t.ledgerMs + t.locksMs).toBeLessThanOrEqual(t.totalMs)
    expect(t.providerMs).toBeLessThanOrEqual(t.totalMs * 8)
    expect(t.gateMs).toBeLessThanOrEqual(t.totalMs * 8)
    const second = await execute(d, ['--json'])
    expect(second.exitCode).toBe(0)
    expect(envelope<{ requests: Array<{ outcome: string }> }>(second).result?.requests[0]?.outcome).toBe(
      'skipped',
    )
    await expectOneRotation(d)
    await expectLedgerVerifies(d)
  })

  it.each(CRASH_POINTS)(
    'killed with SIGKILL %s, a re-run finishes the same rotation exactly once',
    async (point) => {
      const d = await prepared()
      const crashed = await execute(d, [], { NHI_RECOVER_TEST_CRASH_AT: point })
      expect(crashed.exitCode, `${point}: ${crashed.stderr}`).toBe(-1)
      // The dead executor's 1 s lease must pass before its locks can be taken over.
      await new Promise((r) => setTimeout(r, 1200))
      const again = await execute(d)
      expect(again.exitCode, again.stdout + again.stderr).toBe(0)
      await expectOneRotation(d)
      await expectLedgerVerifies(d)
    },
  )

  it("takes over a dead executor's expired lock and says so", async () => {
    const d = await prepared()
    await execute(d, [], { NHI_RECOVER_TEST_CRASH_AT: 'after-lock' })
    await new Promise((r) => setTimeout(r, 1200))
    const again = await execute(d)
    expect(again.exitCode).toBe(0)
    expect(again.stdout).toMatch(/Took over the lock of .* whose lease expired at/)
    expect(again.stdout).toMatch(/^Time: [\d.]+ s; inside provider calls [\d.]+ s, approval gate /m)
  })

  it('does not take over a live lock: a run during the lease leaves the request alone', async () => {
    const d = await prepared()
    await runCli(['execute', '--lock-lease', '10m'], {
      cwd: d.repo,
      env: { NHI_RECOVER_TEST_MODE: '1', NHI_RECOVER_TEST_CRASH_AT: 'after-lock' },
    })
    const during = await execute(d, ['--json'])
    expect(during.exitCode).toBe(0)
    expect(
      envelope<{ requests: Array<{ outcome: string; reason: string }> }>(during).result?.requests[0],
    ).toMatchObject({
      outcome: 'held',
      reason: expect.stringContaining('holds this request until'),
    })
    const state = await (await demoStore(d)).describe(target)
    expect(state.versions).toHaveLength(1)
  })

  it('two executors racing on the same request give exactly one rotation', async () => {
    const d = await prepared()
    const runs = await Promise.all([0, 1].map(() => execute(d, ['--json'])))
    for (const r of runs) expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    const outcomes = runs
      .map((r) => envelope<{ requests: Array<{ outcome: string }> }>(r).result?.requests[0]?.outcome)
      .sort()
    expect(outcomes.filter((o) => o === 'succeeded')).toHaveLength(1)
    await expectOneRotation(d)
    await expectLedgerVerifies(d)
  })

  it('treats an empty GITHUB_ACTOR as unset instead of failing on a malformed audit entry', async () => {
    const d = await prepared()
    const r = await execute(d, ['--json'], { GITHUB_ACTOR: '' })
    expect(r.exitCode, r.stdout + r.stderr).toBe(0)
    expect(envelope<{ requests: Array<{ outcome: string }> }>(r).result?.requests[0]?.outcome).toBe(
      'succeeded',
    )
  })

  it('refuses the crash hook outside test mode, before anything runs', async () => {
    const d = await prepared()
    const r = await runCli(['execute'], { cwd: d.repo, env: { NHI_RECOVER_TEST_CRASH_AT: 'after-prepare' } })
    expect(r.exitCode).toBe(2)
    expect(r.stderr).toContain('refused outside test mode')
    expect((await (await demoStore(d)).describe(target)).versions).toHaveLength(1)
  })

  it('--dry-run lists the changes it would make and changes nothing', async () => {
    const d = await prepared()
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { cwd: d.repo, encoding: 'utf8' })
    const r = await execute(d, ['--dry-run'])
    expect(r.exitCode, r.stderr).toBe(0)
    expect(r.stdout).toContain('nothing was changed')
    expect(r.stdout).toMatch(/would stage a new version/)
    expect(execFileSync('git', ['rev-parse', 'HEAD'], { cwd: d.repo, encoding: 'utf8' })).toBe(head)
    expect(execFileSync('git', ['status', '--porcelain'], { cwd: d.repo, encoding: 'utf8' })).toBe('')
    expect((await (await demoStore(d)).describe(target)).versions).toHaveLength(1)
  })

  it('never shows a credential: no value appears in stdout, stderr, --json, the ledger or git history', async () => {
    const d = await prepared()
    const store = await demoStore(d)
    const oldValue = (await store.read(target, d.versionBefore)).reveal()
    const outputs = [await execute(d), await execute(d, ['--json'])]
    const current = stages(await store.describe(target)).current!
    // The old version was retired (retainPrevious 0s), so only the new value can still be read.
    const newValue = (await store.read(target, current.id)).reveal()
    const history = execFileSync(
      'sh',
      ['-c', 'git rev-list --all --objects | cut -d" " -f1 | git cat-file --batch'],
      {
        cwd: d.repo,
        maxBuffer: 64 * 1024 * 1024,
      },
    ).toString('latin1')
    const remoteHistory = execFileSync(
      'sh',
      ['-c', 'git rev-list --all --objects | cut -d" " -f1 | git cat-file --batch'],
      {
        cwd: d.remote,
        maxBuffer: 64 * 1024 * 1024,
      },
    ).toString('latin1')
    const log = await runCli(['audit', 'log', '--json'], { cwd: d.repo })
    for (const value of [oldValue, newValue]) {
      expect(value.length).toBeGreaterThanOrEqual(20)
      for (const o of [...outputs, log]) {
        expect(o.stdout.includes(value)).toBe(false)
        expect(o.stderr.includes(value)).toBe(false)
      }
      expect(history.includes(value)).toBe(false)
      expect(remoteHistory.includes(value)).toBe(false)
    }
  })
})
