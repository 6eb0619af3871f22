/**
 * approvals check, plan and approve as a user (or a GitHub Actions job) runs them: the built
 * CLI as a real process, a real clone, the local GitHub server, real SSH keys. The token and a
 * stored credential are canaries that must never appear in any output.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { envelope, runCli, type CliRun } from '../helpers/cli.js'
import { sshKeygen } from '../harness/ssh.js'
import { startGitHubServer, type GitHubServer } from '../github-server/server.js'
import { recoveryRepo, seedGitHub, specYaml, TOKEN, SIGNERS, type RecoveryRepo } from './harness.js'
import { PLAN_MARKER, STATUS_CONTEXT } from '../../src/approvals/plan.js'
import type { GateResult } from '../../src/approvals/gate.js'
import { LocalSecretStore } from '../../providers/secret-stores/local.js'
import { Secret } from '../../src/secret.js'

const STORED_VALUE = 'CANARY-stored-credential-value-7f3a9c'
const LOCAL_KEY = randomBytes(32).toString('base64')

let gh: GitHubServer
let r: RecoveryRepo
let n = 500
const outputs: CliRun[] = []

beforeAll(async () => {
  gh = await startGitHubServer({ token: TOKEN })
  seedGitHub(gh)
  r = recoveryRepo(gh)
})
afterAll(async () => {
  r?.cleanup()
  await gh.close()
  // The token and the stored value never appear in anything the CLI printed.
  for (const o of outputs) {
    expect(o.stdout + o.stderr).not.toContain(TOKEN)
    expect(o.stdout + o.stderr).not.toContain(STORED_VALUE)
  }
})
afterEach(() => {
  gh.clearFaults()
  expect(gh.problems).toEqual([])
})

const env = (extra: Record<string, string> = {}) => ({
  GITHUB_TOKEN: TOKEN,
  GITHUB_REPOSITORY: 'acme/recovery',
  NHI_RECOVER_GITHUB_RETRIES: '1',
  NHI_RECOVER_GITHUB_RETRY_BASE_MS: '5',
  NHI_RECOVER_LOCAL_KEY: LOCAL_KEY,
  GITHUB_EVENT_PATH: '',
  // The tests' GitHub is the local server, whatever GitHub runs this suite.
  GITHUB_API_URL: '',
  ...extra,
})

async function cli(args: string[], cwd: string, extra: Record<string, string> = {}): Promise<CliRun> {
  const o = await runCli(args, { cwd, env: env(extra), timeoutMs: 60_000 })
  outputs.push(o)
  return o
}

/** alice opens a PR adding one spec; a fresh CI clone is returned to run the CLI in. */
function givenPr(risk = 'low') {
  const num = ++n
  const id = `rr-cli-${num}`
  const alice = r.person('alice')
  alice.git('fetch', '-q', 'origin', 'main')
  alice.git('checkout', '-q', '-b', id, 'origin/main')
  alice.write(`recovery-specs/${id}.yaml`, specYaml({ id, requester: 'erin', risk }))
  const head = alice.commitAll(`Request ${id}`)
  r.openPr(num, alice)
  const ci = r.fixture.clone(`ci-cli-${num}`, { key: r.admin.key })
  return { num, id, head, ci }
}

describe('nhi-recover approvals check (built CLI)', () => {
  it('exits 0 with the approvals that counted when the PR is approved', async () => {
    const { num, id, head, ci } = givenPr()
    r.review(num, 'bob', 'APPROVED', head)
    const run = await cli(['approvals', 'check', '--pr', String(num)], ci.dir)
    expect(run.stderr).toBe('')
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toContain(`APPROVED ${id} (recovery-specs/${id}.yaml), tier low`)
    expect(run.stdout).toContain('  counted: bob')
    const j = envelope<GateResult>(await cli(['approvals', 'check', '--pr', String(num), '--json'], ci.dir))
    expect(j).toMatchObject({ ok: true, exitCode: 0, command: 'approvals:check', result: { allowed: true } })
  })

  it('exits 1 and lists what is missing in words when blocked', async () => {
    const { num, id, head, ci } = givenPr('high')
    r.review(num, 'bob', 'APPROVED', head)
    const run = await cli(['approvals', 'check', '--pr', String(num)], ci.dir)
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain(`BLOCKED  ${id}`)
    expect(run.stdout).toContain('  - needs 1 more approval')
    expect(run.stdout).toContain('  - needs 1 more approval from team security')
    expect(run.stderr).toMatch(
      new RegExp(`^Error: blocked: ${id} needs 1 more approval; needs 1 more approval from team security`),
    )
    expect(run.stderr).toMatch(/\nNext: Get the approvals listed above/)
    const j = envelope<GateResult>(await cli(['approvals', 'check', '--pr', String(num), '--json'], ci.dir))
    expect(j).toMatchObject({
      ok: false,
      exitCode: 1,
      error: { kind: 'check-failed', code: 'APPROVALS_MISSING' },
    })
    expect(j.result!.subjects[0]!.reasons).toEqual([
      'needs 1 more approval',
      'needs 1 more approval from team security',
      'bob is not in team security',
    ])
  })

  it('exits 3, blocked, when GitHub answers 5xx', async () => {
    const { num, ci } = givenPr()
    gh.fail(/\/commits$/, 503)
    const run = await cli(['approvals', 'check', '--pr', String(num), '--json'], ci.dir)
    const j = envelope(run)
    expect(j).toMatchObject({
      ok: false,
      exitCode: 3,
      error: {
        kind: 'external',
        code: 'GITHUB_UNAVAILABLE',
        message: `Blocked: GitHub (${gh.url}) answered HTTP 503 while reading the commits of pull request #${num} (after 1 retries). Approvals cannot be checked, so none count.`,
        next: 'Nothing was approved or changed. Re-run the check when GitHub is reachable.',
      },
      result: { allowed: false },
    })
    expect(run.exitCode).toBe(3)
  })

  it('runs inside GitHub Actions from GITHUB_TOKEN, GITHUB_REPOSITORY and GITHUB_EVENT_PATH alone', async () => {
    const { num, head, ci } = givenPr()
    r.review(num, 'bob', 'APPROVED', head)
    const dir = mkdtempSync(join(tmpdir(), 'nhi-event-'))
    const event = join(dir, 'event.json')
    writeFileSync(
      event,
      JSON.stringify({
        action: 'submitted',
        pull_request: { number: num, base: { sha: ci.git('rev-parse', 'origin/main') }, head: { sha: head } },
      }),
    )
    const run = await cli(['approvals', 'check'], ci.dir, {
      GITHUB_ACTIONS: 'true',
      GITHUB_EVENT_PATH: event,
      GITHUB_SHA: head,
    })
    expect(run.stderr).toBe('')
    expect(run.stdout).toContain(`Approvals for pull request #${num}`)
    expect(run.exitCode).toBe(0)
  })

  it('checks a commit after merge from a terminal (--commit)', async () => {
    const { num, id, head } = givenPr()
    r.review(num, 'bob', 'APPROVED', head)
    r.admin.git('fetch', '-q', 'origin', id)
    r.admin.git('merge', '-q', '--no-ff', '-m', `Merge #${num}`, `origin/${id}`)
    r.admin.git('push', '-q', 'origin', 'HEAD:main')
    gh.state.merge(num, r.admin.head())
    const ci = r.fixture.clone(`ci-merge-${num}`, { key: r.admin.key })
    const run = await cli(['approvals', 'check', '--commit', 'HEAD', '--json'], ci.dir)
    expect(envelope<GateResult>(run)).toMatchObject({
      ok: true,
      result: { allowed: true, pr: { number: num } },
    })
  })
})

describe('nhi-recover plan (built CLI)', () => {
  it('keeps one sticky comment up to date and sets the nhi-recover/approvals status', async () => {
    const { num, id, head, ci } = givenPr()
    // The target already exists in the local store: plan shows its version id, never its value.
    const store = new LocalSecretStore({
      name: 'local',
      dir: join(ci.dir, '.nhi-recover/local-store'),
      key: Buffer.from(LOCAL_KEY, 'base64'),
    })
    const v1 = await store.put(`payments/${id}`, new Secret(STORED_VALUE))

    const first = await cli(['plan', '--pr', String(num)], ci.dir)
    expect(first.stderr).toBe('')
    expect(first.exitCode).toBe(0)
    expect(first.stdout).toMatch(/Plan comment created: http/)
    expect(first.stdout).toContain(
      `Status ${STATUS_CONTEXT}: failure (Blocked: 1 of 1 needs approvals. needs 1 more approval)`,
    )
    let comments = gh.state.commentsOn(num)
    expect(comments).toHaveLength(1)
    expect(comments[0]!.body.startsWith(PLAN_MARKER)).toBe(true)
    expect(comments[0]!.body).toContain(
      `| \`${id}\` | payments-key (api-key) | local: local \`payments/${id}\` | rotate | low | current \`${v1.id}\` | none | needs 1 more approval |`,
    )
    expect(gh.state.statusesFor(head).map((s) => [s.context, s.state])).toEqual([[STATUS_CONTEXT, 'failure']])

    // bob approves; plan runs again and updates the same comment.
    r.review(num, 'bob', 'APPROVED', head)
    const second = await cli(['plan', '--pr', String(num)], ci.dir)
    expect(second.stdout).toMatch(/Plan comment updated: http/)
    comments = gh.state.commentsOn(num)
    expect(comments).toHaveLength(1)
    expect(comments[0]!.body).toContain('| bob | ✅ nothing |')
    expect(gh.state.statusesFor(head).map((s) => s.state)).toEqual(['failure', 'success'])

    // Nothing changed: the comment stays as it is.
    const third = await cli(['plan', '--pr', String(num), '--json'], ci.dir)
    expect(envelope(third)).toMatchObject({
      ok: true,
      result: { comment: { action: 'unchanged' }, status: { state: 'success' } },
    })
    expect(gh.state.commentsOn(num)).toHaveLength(1)
  })

  it('says when a target cannot be read, and publishes anyway', async () => {
    const { num, id, ci } = givenPr()
    const run = await cli(['plan', '--pr', String(num)], ci.dir, { NHI_RECOVER_LOCAL_KEY: '' })
    expect(run.exitCode).toBe(0)
    const body = gh.state.commentsOn(num)[0]!.body
    expect(body).toMatch(new RegExp(`\\| \`${id}\` \\|.*\\| not read: [^|]+\\|`))
  })
})

describe('nhi-recover approve (built CLI)', () => {
  it('signs a statement that ssh-keygen -Y verify accepts, commits it beside the spec, and it counts', async () => {
    const { num, id } = givenPr('critical')
    const carol = r.person('carol')
    carol.git('fetch', '-q', 'origin', id)
    carol.git('checkout', '-q', '-b', id, `origin/${id}`)
    const run = await cli(
      ['approve', `recovery-specs/${id}.yaml`, '--key', r.keys.carol!.privatePath],
      carol.dir,
    )
    expect(run.stderr).toBe('')
    expect(run.exitCode).toBe(0)
    expect(run.stdout).toMatch(
      new RegExp(
        `^Signed an approval of ${id} \\(recovery-specs/${id}.yaml, sha256 [0-9a-f]{12}…\\) as carol with key SHA256:`,
      ),
    )
    const file = `recovery-specs/${id}.approvals/carol.json`
    expect(carol.git('log', '-1', '--format=%s', '--', file)).toBe(`Approve ${id} as carol`)

    // The signature is plain SSHSIG: OpenSSH verifies it against the repo's allowed_signers.
    const { statement, signature } = JSON.parse(carol.read(file)) as {
      statement: Record<string, string>
      signature: string
    }
    const dir = mkdtempSync(join(tmpdir(), 'nhi-sig-'))
    writeFileSync(join(dir, 'sig'), signature)
    const sorted = JSON.stringify(
      Object.fromEntries(Object.entries(statement).sort(([a], [b]) => (a < b ? -1 : 1))),
    )
    const v = sshKeygen(
      [
        '-Y',
        'verify',
        '-f',
        join(carol.dir, SIGNERS),
        '-I',
        'carol',
        '-n',
        'nhi-recover-approval',
        '-s',
        join(dir, 'sig'),
      ],
      sorted,
    )
    expect(v.stdout + v.stderr).toContain('Good "nhi-recover-approval" signature for carol')
    expect(v.status).toBe(0)

    // With a second signature and two reviews at the new head, the critical request is approved.
    r.openPr(num, carol)
    const bob = r.person('bob')
    bob.git('fetch', '-q', 'origin', id)
    bob.git('checkout', '-q', '-b', id, `origin/${id}`)
    await cli(
      ['approve', `recovery-specs/${id}.yaml`, '--key', r.keys.bob!.privatePath, '--principal', 'bob'],
      bob.dir,
    )
    const last = r.openPr(num, bob)
    r.review(num, 'bob', 'APPROVED', last)
    r.review(num, 'carol', 'APPROVED', last)
    const ci = r.fixture.clone(`ci-approve-${num}`, { key: r.admin.key })
    const check = envelope<GateResult>(
      await cli(['approvals', 'check', '--pr', String(num), '--json'], ci.dir),
    )
    expect(check.result!.subjects[0]!.reasons).toEqual([])
    expect(check.ok).toBe(true)
  })

  it('refuses to approve a spec with uncommitted changes', async () => {
    const { id } = givenPr()
    const alice = r.person('alice')
    alice.write(
      `recovery-specs/${id}.yaml`,
      specYaml({ id, requester: 'erin', reason: 'Edited, not committed.' }),
    )
    const run = await cli(
      ['approve', `recovery-specs/${id}.yaml`, '--key', r.keys.bob!.privatePath],
      alice.dir,
    )
    expect(run.exitCode).toBe(2)
    expect(run.stderr).toBe(
      `Error: recovery-specs/${id}.yaml differs from its committed version, so there is no fixed content to approve.\nNext: Commit (or discard) the changes to the spec first; an approval is for one exact committed version.`,
    )
    alice.git('checkout', '-q', '--', `recovery-specs/${id}.yaml`)
  })
})
