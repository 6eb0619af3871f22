/**
 * The status service on real recovery repos built by the demo routine: real git with a bare
 * remote, SSH-signed approvals, git-ref locks, the local provider and the signed audit ledger.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { demoStore, prepareDemo, type PreparedDemo } from '../../src/demo/demo.js'
import { createNewSpec } from '../../src/new/new-spec.js'
import { git } from '../../src/git/git.js'
import { GitRefLocks } from '../../src/engine/git-locks.js'
import { runExecute } from '../../src/engine/run-execute.js'
import { stages } from '../../src/engine/secret-store.js'
import { requestStatus, type RequestStatus, type StatusResult } from '../../src/engine/status.js'
import { githubForgeFactory } from '../../providers/forge/github.js'
import { PROJECT_ROOT } from '../helpers/cli.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function prepared(): Promise<PreparedDemo> {
  const dir = mkdtempSync(join(tmpdir(), 'nhi-status-'))
  dirs.push(dir)
  return prepareDemo({ dir: join(dir, 'd'), packageRoot: PROJECT_ROOT, version: '0.0.0-test', log: () => {} })
}

const DAY = 86_400_000
const row = (r: StatusResult, id: string): RequestStatus => {
  const found = r.requests.find((q) => q.requestId === id)
  expect(found, `no row for ${id} in ${JSON.stringify(r.requests)}`).toBeDefined()
  return found!
}

/** Commits a new, valid spec straight onto main: merged, but nobody approved it. */
async function commitSpecDirectly(d: PreparedDemo, identity: string): Promise<string> {
  const created = await createNewSpec({
    cwd: d.repo,
    answers: {
      identity,
      type: 'api-key',
      owner: 'platform',
      risk: 'low',
      provider: 'local',
      mechanism: 'local',
      path: `demo/${identity}`,
      action: 'rotate',
      reason: 'Rotated without review, to see status refuse it.',
      ticket: 'DEMO-2',
      requester: 'alice',
      requesterKind: 'human',
    },
    now: new Date(),
    packageRoot: PROJECT_ROOT,
    gitIdentity: () => ({ name: 'alice' }),
  })
  await git(d.repo, ['add', '--', created.file])
  await git(d.repo, ['commit', '-q', '--no-gpg-sign', '-m', `Add ${created.id} without review`])
  await git(d.repo, ['push', '-q', 'origin', 'main'])
  return created.id
}

async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as { port: number }
  await new Promise((r) => server.close(r))
  return port
}

describe('status (real repo, local provider)', () => {
  it('follows a request from approved through executing to done, with the last rotation of its identity', async () => {
    // Given a merged request with two signed approvals, not executed yet
    const d = await prepared()
    const before = await requestStatus({ cwd: d.repo, now: new Date() })
    expect(row(before, d.requestId)).toMatchObject({
      state: 'approved',
      identity: 'demo-api-key',
      target: 'local:demo/api-key',
      detail: 'tier low approvals complete; the next execute runs it',
    })
    expect(before.lastRotations).toEqual([])
    expect(before.warnings).toEqual([])

    // When another executor holds the request's lock on the remote, with a live lease
    const other = new GitRefLocks({ cwd: d.repo, remote: 'origin', holder: 'ci-run-42', leaseMs: 600_000 })
    const held = await other.acquire([d.requestId])
    // Then it is executing, held by that executor
    const during = await requestStatus({ cwd: d.repo, now: new Date() })
    expect(row(during, d.requestId)).toMatchObject({
      state: 'executing',
      detail: expect.stringMatching(/^held by ci-run-42 until \d{4}-/),
      lock: { holder: 'ci-run-42', expired: false },
    })

    // When that executor died and its lease ran out
    await other.release(held.leases)
    const dead = new GitRefLocks({
      cwd: d.repo,
      remote: 'origin',
      holder: 'ci-run-dead',
      leaseMs: 1000,
      now: () => new Date(Date.now() - 3_600_000),
    })
    await dead.acquire([d.requestId])
    // Then it is approved again, and the leftover lock is reported
    const stale = await requestStatus({ cwd: d.repo, now: new Date() })
    expect(row(stale, d.requestId)).toMatchObject({
      state: 'approved',
      lock: { holder: 'ci-run-dead', expired: true },
      detail: expect.stringContaining('a lock of ci-run-dead expired at'),
    })

    // When execute runs it (taking over the dead lock)
    const run = await runExecute({
      cwd: d.repo,
      concurrency: 1,
      dryRun: false,
      env: { ...process.env, NHI_RECOVER_TEST_CRASH_AT: undefined },
    })
    expect(run.requests.map((r) => r.outcome)).toEqual(['succeeded'])
    const current = stages(
      await (await demoStore(d)).describe({ provider: 'local', mechanism: 'local', path: 'demo/api-key' }),
    ).current!

    // Then it is done, its lock is gone, and the ledger names the identity's last rotation
    const after = await requestStatus({ cwd: d.repo, now: new Date() })
    expect(row(after, d.requestId)).toMatchObject({
      state: 'done',
      detail: expect.stringMatching(/^succeeded at \d{4}-.*: rotate completed$/),
      lastEntry: { action: 'rotate', outcome: 'succeeded' },
    })
    expect(row(after, d.requestId).lock).toBeUndefined()
    expect(after.lastRotations).toEqual([
      {
        identity: 'demo-api-key',
        requestId: d.requestId,
        action: 'rotate',
        provider: 'local',
        target: 'local:demo/api-key',
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        versionBefore: d.versionBefore,
        versionAfter: current.id,
      },
    ])
    expect(current.id).not.toBe(d.versionBefore)
  })

  it('shows a spec merged without approvals as awaiting approval, with the gate’s reasons', async () => {
    // Given a spec committed straight onto main next to the approved demo request
    const d = await prepared()
    const id = await commitSpecDirectly(d, 'billing-api-key')
    // When status runs
    const r = await requestStatus({ cwd: d.repo, now: new Date() })
    // Then only the reviewed request is approved; the other waits, and says for what
    expect(row(r, d.requestId).state).toBe('approved')
    expect(row(r, id)).toMatchObject({ state: 'awaiting-approval', identity: 'billing-api-key' })
    expect(row(r, id).detail).toMatch(/approv/i)
  })

  it('shows requests past their expiry as expired, approved or not', async () => {
    // Given an approved request and an unapproved one, both valid for 7 days
    const d = await prepared()
    const id = await commitSpecDirectly(d, 'billing-api-key')
    // When status runs 8 days later
    const r = await requestStatus({ cwd: d.repo, now: new Date(Date.now() + 8 * DAY) })
    // Then both are expired, and say when and what to do
    for (const x of [d.requestId, id]) {
      expect(row(r, x)).toMatchObject({
        state: 'expired',
        detail: expect.stringMatching(/^expired at \d{4}-.*; file a new request$/),
      })
    }
  })

  it('names an invalid committed spec by file:line instead of guessing its state', async () => {
    const d = await prepared()
    writeFileSync(
      join(d.repo, 'recovery-specs', 'broken.yaml'),
      'apiVersion: nhi-recover/v1\nkind: RecoveryRequest\nid: [\n',
    )
    await git(d.repo, ['add', '--', 'recovery-specs/broken.yaml'])
    await git(d.repo, ['commit', '-q', '--no-gpg-sign', '-m', 'A broken spec'])
    const r = await requestStatus({ cwd: d.repo, now: new Date() })
    expect(row(r, 'recovery-specs/broken.yaml')).toMatchObject({
      state: 'invalid',
      detail: expect.stringMatching(/^invalid: recovery-specs\/broken\.yaml:\d+:\d+/),
    })
    expect(row(r, d.requestId).state).toBe('approved')
  })

  it('says what it could not read when the remote is unreachable, and still shows what the clone knows', async () => {
    const d = await prepared()
    await git(d.repo, ['remote', 'set-url', 'origin', join(d.dir, 'gone.git')])
    const r = await requestStatus({ cwd: d.repo, now: new Date() })
    expect(row(r, d.requestId).state).toBe('approved')
    expect(r.warnings).toEqual([
      'could not read the ledger on origin; done, failed and rolled-back come from this clone only',
      expect.stringMatching(/^could not read the request locks on origin \(.*\); executing is not shown$/),
    ])
  })

  it('fails closed when GitHub cannot be asked: approvals unknown with the reason, never approved', async () => {
    // Given the policy switches to GitHub (at an address where nothing answers),
    // and a spec is merged after that switch
    const d = await prepared()
    const config = join(d.repo, 'nhi-recover.yaml')
    const port = await closedPort()
    writeFileSync(
      config,
      readFileSync(config, 'utf8').replace(
        'approvals:\n  ssh:',
        `approvals:\n  github:\n    baseUrl: http://127.0.0.1:${port}\n  ssh:`,
      ),
    )
    await git(d.repo, ['commit', '-q', '--no-gpg-sign', '-am', 'Use GitHub reviews too'])
    const id = await commitSpecDirectly(d, 'billing-api-key')
    const ctx = {
      owner: 'acme',
      repo: 'recovery',
      pr: undefined,
      commit: undefined,
      base: undefined,
      apiUrl: undefined,
      tuning: { retries: 0, timeoutMs: 2000 },
    }

    // When status runs with a GitHub connection that fails
    const down = await requestStatus({
      cwd: d.repo,
      now: new Date(),
      forgeFactory: githubForgeFactory(ctx, { GITHUB_TOKEN: 'ghs_status_test_token_0000000000' }),
    })
    // Then that spec's approvals are unknown, with GitHub's failure as the reason
    expect(row(down, id)).toMatchObject({
      state: 'approvals-unknown',
      detail: expect.stringMatching(/GitHub \(http:\/\/127\.0\.0\.1:\d+\).*Approvals cannot be checked/),
    })
    // and the request merged under the old, SSH-only policy keeps its own answer
    expect(row(down, d.requestId).state).toBe('approved')

    // When status has no GitHub connection at all
    const none = await requestStatus({ cwd: d.repo, now: new Date() })
    // Then it is unknown too, never approved
    expect(row(none, id)).toMatchObject({
      state: 'approvals-unknown',
      detail: expect.stringContaining('no GitHub connection was given'),
    })
  })
})
