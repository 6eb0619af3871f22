/**
 * The executor against a real OpenBao (and PostgreSQL): the built CLI as a real process, on a
 * real recovery repo with a bare remote and SSH-signed approvals, rotating through the vault
 * provider. The executor's token carries exactly the README's policy and reaches the CLI only
 * through the child's environment. Crash tests kill it with SIGKILL at each step boundary and
 * run it again; two executors in two clones race on the same request.
 *
 * retainPrevious is 0s, so every run also retires the old credential at once: the after-retire
 * crash point is reached, and "one rotation" means one new version and the old one retired.
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pLimit from 'p-limit'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { prepareDemo, type PreparedDemo } from '../../src/demo/demo.js'
import { CRASH_POINTS } from '../../src/engine/test-hooks.js'
import { git } from '../../src/git/git.js'
import type { Answers } from '../../src/new/fields.js'
import { PROJECT_ROOT, envelope, runCli, type CliRun } from '../helpers/cli.js'
import { startOpenBao, type OpenBaoServer } from '../harness/openbao.js'
import { startPostgres, type PostgresServer } from '../harness/postgres.js'
import { api, canary, kvLatest, kvMeta } from '../providers/vault/helpers.js'

type Expect = typeof expect

const TOKEN_ENV = 'NHI_TEST_EXECUTOR_BAO_TOKEN'
let server: OpenBaoServer
/** A token with exactly the executor policy of the README, never the root token. */
let executorToken: string
let root: string
let n = 0

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'nhi-exec-vault-'))
  server = await startOpenBao()
  expect((await api(server, 'POST', 'sys/auth/approle', { type: 'approle' })).status).toBe(204)
  const readme = readFileSync(join(PROJECT_ROOT, 'README.md'), 'utf8')
  const hcl = /```hcl\n([\s\S]*?)```/.exec(
    readme.slice(readme.indexOf('## Using a real Vault or OpenBao')),
  )?.[1]
  if (!hcl) throw new Error('README has no hcl policy under "Using a real Vault or OpenBao"')
  expect((await api(server, 'PUT', 'sys/policies/acl/nhi-recover-executor', { policy: hcl })).status).toBe(
    204,
  )
  const token = await api(server, 'POST', 'auth/token/create', {
    policies: ['nhi-recover-executor'],
    no_default_policy: true,
    ttl: '1h',
  })
  executorToken = token.json.auth.client_token
})
afterAll(async () => {
  await server?.stop()
  if (root) rmSync(root, { recursive: true, force: true })
})

const providersYaml = () =>
  [
    '  bao:',
    '    kind: vault',
    `    address: ${server.addr}`,
    '    auth:',
    '      method: token',
    `      tokenEnv: ${TOKEN_ENV}`,
    '',
  ].join('\n')

/** A recovery repo with one merged, twice-approved request against the vault provider. */
function prepared(i: number, answers: Partial<Answers>, seed: () => Promise<string>): Promise<PreparedDemo> {
  return prepareDemo({
    dir: join(root, `case-${i}`),
    packageRoot: PROJECT_ROOT,
    version: '0.0.0-test',
    log: () => {},
    scenario: {
      providersYaml: providersYaml(),
      answers: { provider: 'bao', risk: 'low', retainPrevious: '0s', ...answers },
      seed,
    },
  })
}

function execute(
  cwd: string,
  args: string[] = [],
  opts: { lease?: string; env?: Record<string, string> } = {},
): Promise<CliRun> {
  return runCli(['execute', '--lock-lease', opts.lease ?? '2m', ...args], {
    cwd,
    env: { NHI_RECOVER_TEST_MODE: '1', [TOKEN_ENV]: executorToken, ...opts.env },
    timeoutMs: 60_000,
  })
}

interface Entry {
  request: { id: string }
  action: string
  provider: string
  target: string
  credential: { versionBefore: string | null; versionAfter: string | null }
  outcome: { status: string; reason: string }
}

/** One target with its credential, and a prepared repo whose merged request rotates it. */
interface Case {
  d: PreparedDemo
  /** The target as the audit entry names it. */
  target: string
  oldValue: string
  /** The value a consumer reads from the server now. */
  current(): Promise<string>
  /** Exactly one rotation by the request and a consistent server state; the new version id and value. */
  expectOneRotation(expect: Expect): Promise<{ versionAfter: string; newValue: string }>
}

interface Mechanism {
  name: 'kv-v2' | 'approle-secret-id'
  prepare(): Promise<Case>
}

/** Markers nhi-recover left in custom_metadata, version → parsed marker. */
async function markers(path: string): Promise<Record<string, { request: string; ref?: string }>> {
  const meta = await kvMeta(server, 'secret', path)
  const out: Record<string, { request: string; ref?: string }> = {}
  for (const [k, v] of Object.entries((meta?.custom_metadata ?? {}) as Record<string, string>)) {
    const m = /^nhi-recover\.v(\d+)$/.exec(k)
    if (m) out[m[1]!] = JSON.parse(v)
  }
  return out
}

const kvV2: Mechanism = {
  name: 'kv-v2',
  async prepare() {
    const i = ++n
    const path = `apps/api-key-${i}`
    const oldValue = canary()
    const d = await prepared(
      i,
      { identity: `api-key-${i}`, type: 'api-key', mechanism: 'kv-v2', path },
      async () => {
        const r = await api(server, 'POST', `secret/data/${path}`, {
          data: { value: oldValue, username: 'svc-orders' },
        })
        return String(r.json.data.version)
      },
    )
    return {
      d,
      target: `bao:secret/${path}#value`,
      oldValue,
      current: async () => (await kvLatest(server, 'secret', path)).value!,
      async expectOneRotation(expect) {
        const meta = await kvMeta(server, 'secret', path)
        expect(meta.current_version, JSON.stringify(meta)).toBe(2)
        expect(meta.versions['1'].destroyed, 'the old version is retired').toBe(true)
        expect(meta.versions['2'].destroyed).toBe(false)
        expect(await markers(path)).toEqual({ '2': { request: d.requestId } })
        expect(
          await kvMeta(server, 'secret', `nhi-recover/staging/${path}`),
          'no pending version is left staged',
        ).toBeUndefined()
        const latest = await kvLatest(server, 'secret', path)
        expect(latest.username, 'the other fields of the secret are kept').toBe('svc-orders')
        expect(latest.value).toMatch(/^[A-Za-z0-9]{40}$/)
        return { versionAfter: '2', newValue: latest.value! }
      },
    }
  },
}

async function canLogin(role: string, secretId: string): Promise<boolean> {
  const roleId = (await api(server, 'GET', `auth/approle/role/${role}/role-id`)).json.data.role_id
  const r = await fetch(`${server.addr}/v1/auth/approle/login`, {
    method: 'POST',
    body: JSON.stringify({ role_id: roleId, secret_id: secretId }),
  })
  return r.status === 200
}

const approle: Mechanism = {
  name: 'approle-secret-id',
  async prepare() {
    const i = ++n
    const role = `svc-orders-${i}`
    const deliverTo = `approle/${role}`
    expect(
      (
        await api(server, 'POST', `auth/approle/role/${role}`, {
          token_policies: ['default'],
          token_ttl: '5m',
        })
      ).status,
    ).toBe(204)
    let oldValue = ''
    const d = await prepared(
      i,
      { identity: role, type: 'approle', mechanism: 'approle-secret-id', role, path: deliverTo },
      async () => {
        const issued = (await api(server, 'POST', `auth/approle/role/${role}/secret-id`, {})).json.data
        oldValue = issued.secret_id
        await api(server, 'POST', `secret/data/${deliverTo}`, {
          data: { secret_id: issued.secret_id, secret_id_accessor: issued.secret_id_accessor },
        })
        return issued.secret_id_accessor as string
      },
    )
    return {
      d,
      target: `bao:auth/approle/role/${role}`,
      oldValue,
      current: async () => (await kvLatest(server, 'secret', deliverTo)).secret_id!,
      async expectOneRotation(expect) {
        const list = await api(server, 'GET', `auth/approle/role/${role}/secret-id?list=true`)
        const live: string[] = list.json.data?.keys ?? []
        expect(live, 'exactly one secret-id is left: the delivered one').toHaveLength(1)
        const accessor = live[0]!
        expect(accessor).not.toBe(d.versionBefore)
        const lookup = await api(server, 'POST', `auth/approle/role/${role}/secret-id-accessor/lookup`, {
          secret_id_accessor: accessor,
        })
        expect(lookup.json.data.metadata).toEqual({ nhi_recover_request: d.requestId })
        expect((await kvMeta(server, 'secret', deliverTo)).current_version).toBe(2)
        expect(await markers(deliverTo)).toEqual({ '2': { request: d.requestId, ref: accessor } })
        expect(
          await kvMeta(server, 'secret', `nhi-recover/staging/${deliverTo}`),
          'no pending secret-id is left staged',
        ).toBeUndefined()
        const delivered = await kvLatest(server, 'secret', deliverTo)
        expect(delivered.secret_id_accessor).toBe(accessor)
        expect(await canLogin(role, delivered.secret_id!), 'the delivered secret-id logs in').toBe(true)
        expect(await canLogin(role, oldValue), 'the old secret-id was destroyed').toBe(false)
        return { versionAfter: accessor, newValue: delivered.secret_id! }
      },
    }
  },
}

/**
 * The ledger verifies, and holds for the request exactly one succeeded rotation naming provider,
 * target and version ids, and one succeeded retirement of the old version; never a value.
 */
async function expectLedger(
  expect: Expect,
  c: Pick<Case, 'd' | 'target'>,
  versionAfter: string,
  values: string[],
): Promise<CliRun[]> {
  const cwd = c.d.repo
  const [verify, log] = await Promise.all([
    runCli(['audit', 'verify', '--json'], { cwd }),
    runCli(['audit', 'log', '--json'], { cwd }),
  ])
  expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0)
  const entries = (envelope<{ entries: Entry[] }>(log).result?.entries ?? []).filter(
    (e) => e.request.id === c.d.requestId,
  )
  expect(entries.map((e) => `${e.action}:${e.outcome.status}`).sort(), JSON.stringify(entries)).toEqual([
    'retire:succeeded',
    'rotate:succeeded',
  ])
  expect(entries.find((e) => e.action === 'rotate')).toMatchObject({
    provider: 'bao',
    target: c.target,
    credential: { versionBefore: c.d.versionBefore, versionAfter },
  })
  expect(entries.find((e) => e.action === 'retire')).toMatchObject({
    provider: 'bao',
    target: c.target,
    credential: { versionBefore: c.d.versionBefore, versionAfter: null },
  })
  for (const v of values) expect(log.stdout.includes(v)).toBe(false)
  return [verify, log]
}

/** Every object reachable in a repository, as text, for scanning. */
function history(repo: string): string {
  return execFileSync('sh', ['-c', 'git rev-list --all --objects | cut -d" " -f1 | git cat-file --batch'], {
    cwd: repo,
    maxBuffer: 64 * 1024 * 1024,
  }).toString('latin1')
}

/** Every ledger file in the worktree. */
function ledgerFiles(repo: string): string {
  const dir = join(repo, 'audit')
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((f) => f.isFile())
    .map((f) => readFileSync(join(f.parentPath, f.name), 'latin1'))
    .join('\n')
}

/** No value (nor the executor token) in any output, the ledger files or the git history of clone and remote. */
function expectNoValue(expect: Expect, d: PreparedDemo, runs: CliRun[], values: string[]): void {
  const ledger = ledgerFiles(d.repo)
  expect(ledger, 'the scan reads the ledger of this request').toContain(d.requestId)
  const places: Array<[string, string]> = [
    ...runs.flatMap((r, i): Array<[string, string]> => [
      [`stdout of run ${i}`, r.stdout],
      [`stderr of run ${i}`, r.stderr],
    ]),
    ['the ledger files', ledger],
    ['the git history of the clone', history(d.repo)],
    ['the git history of the remote', history(d.remote)],
  ]
  for (const value of [...values, executorToken]) {
    expect(value.length).toBeGreaterThanOrEqual(20)
    for (const [where, text] of places)
      expect(text.includes(value), `a value appears in ${where}`).toBe(false)
  }
}

/** A second clone of the remote set up like the first: another CI runner. */
async function secondRunner(d: PreparedDemo): Promise<string> {
  const clone = join(d.dir, 'runner-2')
  await git(d.dir, ['clone', '-q', d.remote, clone])
  for (const key of [
    'user.name',
    'user.email',
    'gpg.format',
    'user.signingkey',
    'gpg.ssh.allowedSignersFile',
  ]) {
    await git(clone, ['config', key, await git(d.repo, ['config', '--get', key])])
  }
  return clone
}

// Crash tests run a few at a time: most of each is waiting on processes and the lease.
const crashSlots = pLimit(3)

for (const m of [kvV2, approle]) {
  describe(`execute with ${m.name} on a real OpenBao (built CLI, real git)`, () => {
    it('rotates an approved request end to end, audits it, and does nothing on a second run', async () => {
      const c = await m.prepare()
      const first = await execute(c.d.repo, ['--json'])
      expect(first.exitCode, first.stdout + first.stderr).toBe(0)
      const { versionAfter, newValue } = await c.expectOneRotation(expect)
      expect(envelope<{ requests: unknown[]; retired: unknown[] }>(first).result?.requests).toEqual([
        expect.objectContaining({
          requestId: c.d.requestId,
          provider: 'bao',
          target: c.target,
          outcome: 'succeeded',
          versionBefore: c.d.versionBefore,
          versionAfter,
        }),
      ])
      const second = await execute(c.d.repo, ['--json'])
      expect(second.exitCode, second.stderr).toBe(0)
      expect(envelope<{ requests: Array<{ outcome: string }> }>(second).result?.requests[0]?.outcome).toBe(
        'skipped',
      )
      await c.expectOneRotation(expect)
      await expectLedger(expect, c, versionAfter, [c.oldValue, newValue])
      for (const r of [first, second]) {
        for (const v of [c.oldValue, newValue]) expect((r.stdout + r.stderr).includes(v)).toBe(false)
      }
    })

    it.concurrent.for(CRASH_POINTS)(
      'killed with SIGKILL %s, a re-run finishes the same rotation exactly once',
      { timeout: 120_000 },
      (point, { expect }) =>
        crashSlots(async () => {
          const c = await m.prepare()
          const crashed = await execute(c.d.repo, [], {
            lease: '1s',
            env: { NHI_RECOVER_TEST_CRASH_AT: point },
          })
          expect(crashed.exitCode, `${point}: ${crashed.stdout}${crashed.stderr}`).toBe(-1)
          // The dead executor's 1 s lease must pass before its lock can be taken over.
          await new Promise((r) => setTimeout(r, 1200))
          const again = await execute(c.d.repo)
          expect(again.exitCode, again.stdout + again.stderr).toBe(0)
          const { versionAfter, newValue } = await c.expectOneRotation(expect)
          await expectLedger(expect, c, versionAfter, [c.oldValue, newValue])
        }),
    )

    it('two executors on two runners racing on the same request give exactly one rotation', async () => {
      const c = await m.prepare()
      const other = await secondRunner(c.d)
      const runs = await Promise.all([c.d.repo, other].map((cwd) => execute(cwd, ['--json'])))
      for (const r of runs) expect(r.exitCode, r.stdout + r.stderr).toBe(0)
      const outcomes = runs.map(
        (r) => envelope<{ requests: Array<{ outcome: string }> }>(r).result?.requests[0]?.outcome,
      )
      expect(
        outcomes.filter((o) => o === 'succeeded'),
        JSON.stringify(outcomes),
      ).toHaveLength(1)
      // The other one found the request locked, or already done once it got the lock.
      expect(outcomes.filter((o) => o === 'held' || o === 'skipped')).toHaveLength(1)
      const { versionAfter, newValue } = await c.expectOneRotation(expect)
      await git(c.d.repo, ['pull', '-q', '--ff-only', 'origin', 'main'])
      await expectLedger(expect, c, versionAfter, [c.oldValue, newValue])
    }, 60_000)

    it('never shows a credential: no old or new value appears in stdout, stderr, --json, the ledger or git history', async () => {
      const c = await m.prepare()
      const oldValue = await c.current()
      const runs = [await execute(c.d.repo), await execute(c.d.repo, ['--json'])]
      for (const r of runs) expect(r.exitCode, r.stdout + r.stderr).toBe(0)
      const { versionAfter } = await c.expectOneRotation(expect)
      const newValue = await c.current()
      expect(newValue).not.toBe(oldValue)
      runs.push(...(await expectLedger(expect, c, versionAfter, [])))
      expectNoValue(expect, c.d, runs, [oldValue, newValue])
    }, 60_000)
  })
}

describe('execute with database-static-role on real OpenBao and PostgreSQL (built CLI, real git)', () => {
  let db: PostgresServer

  beforeAll(async () => {
    db = await startPostgres()
    expect((await api(server, 'POST', 'sys/mounts/database', { type: 'database' })).status).toBe(204)
    const cfg = await api(server, 'POST', 'database/config/pg', {
      plugin_name: 'postgresql-database-plugin',
      connection_url: `postgresql://{{username}}:{{password}}@${db.host}:${db.port}/postgres?sslmode=disable`,
      username: db.user,
      password: db.password,
      allowed_roles: '*',
    })
    expect(cfg.status, JSON.stringify(cfg.json)).toBe(204)
  })
  afterAll(async () => db?.stop())

  async function creds(
    role: string,
  ): Promise<{ username: string; password: string; last_vault_rotation: string }> {
    return (await api(server, 'GET', `database/static-creds/${role}`)).json.data
  }

  async function canLogin(user: string, password: string): Promise<boolean> {
    const client = new pg.Client({ host: db.host, port: db.port, user, password, database: 'postgres' })
    try {
      await client.connect()
      return true
    } catch {
      return false
    } finally {
      await client.end().catch(() => undefined)
    }
  }

  /** A PostgreSQL login managed by a new static role, and a request that rotates it. */
  async function prepareDb(login: 'LOGIN' | 'NOLOGIN' = 'LOGIN') {
    const i = ++n
    const role = `orders-db-${i}`
    const username = `svc_orders_${i}`
    const d = await prepared(
      i,
      // The demo's own answers name a local path; a static role has none.
      { identity: role, type: 'database-role', mechanism: 'database-static-role', role, path: '' },
      async () => {
        await db.sql(`CREATE ROLE ${username} ${login} PASSWORD '${canary()}'`)
        const r = await api(server, 'POST', `database/static-roles/${role}`, {
          db_name: 'pg',
          username,
          rotation_period: '24h',
        })
        expect(r.status, JSON.stringify(r.json)).toBe(204)
        return (await creds(role)).last_vault_rotation
      },
    )
    return { d, role, username, target: `bao:database/static-roles/${role}` }
  }

  it('rotates the password with rotate-role, verifies it by a real PostgreSQL login, and audits it', async () => {
    const { d, role, username, target } = await prepareDb()
    const before = await creds(role)
    expect(before.last_vault_rotation).toBe(d.versionBefore)
    expect(await canLogin(username, before.password)).toBe(true)

    const run = await execute(d.repo, ['--json'])
    expect(run.exitCode, run.stdout + run.stderr).toBe(0)
    const after = await creds(role)
    expect(after.last_vault_rotation).not.toBe(before.last_vault_rotation)
    expect(after.password).not.toBe(before.password)
    expect(envelope<{ requests: unknown[] }>(run).result?.requests).toEqual([
      expect.objectContaining({
        requestId: d.requestId,
        target,
        outcome: 'succeeded',
        versionBefore: before.last_vault_rotation,
        versionAfter: after.last_vault_rotation,
      }),
    ])
    expect(await canLogin(username, after.password), 'the new password logs in').toBe(true)
    expect(await canLogin(username, before.password), 'the old password stopped working').toBe(false)

    const again = await execute(d.repo)
    expect(again.exitCode, again.stderr).toBe(0)
    expect((await creds(role)).last_vault_rotation, 'a second run does not rotate again').toBe(
      after.last_vault_rotation,
    )
    const ledger = await expectLedger(expect, { d, target }, after.last_vault_rotation, [])
    expectNoValue(expect, d, [run, again, ...ledger], [before.password, after.password])
  }, 60_000)

  it('does not report success when the PostgreSQL login with the new password fails', async () => {
    // A role that may not log in: rotate-role still sets its password, the verification login fails.
    const { d, role } = await prepareDb('NOLOGIN')
    const run = await execute(d.repo, ['--json'])
    expect(run.exitCode, run.stdout + run.stderr).toBe(1)
    const [report] =
      envelope<{ requests: Array<{ outcome: string; reason: string }> }>(run).result?.requests ?? []
    const loginFailed = /Logging in to PostgreSQL as svc_orders_\d+ with the new password failed/
    // Not "rolled-back": rotate-role replaced the old password, so nothing could be rolled back.
    expect(report?.outcome).toBe('failed')
    expect(report?.reason).toMatch(loginFailed)
    expect(report?.reason).toMatch(/is already in force .*nothing was rolled back/)
    // The failure is audited too.
    const [verify, log] = await Promise.all([
      runCli(['audit', 'verify', '--json'], { cwd: d.repo }),
      runCli(['audit', 'log', '--json'], { cwd: d.repo }),
    ])
    expect(verify.exitCode, verify.stdout + verify.stderr).toBe(0)
    const entries = envelope<{ entries: Entry[] }>(log).result?.entries ?? []
    expect(entries.filter((e) => e.request.id === d.requestId)).toEqual([
      expect.objectContaining({
        action: 'rotate',
        outcome: { status: report?.outcome, reason: expect.stringMatching(loginFailed) },
      }),
    ])
    const after = await creds(role)
    for (const r of [run, log]) expect((r.stdout + r.stderr).includes(after.password)).toBe(false)
  }, 60_000)
  it('killed after rotate-role and before verification, a re-run still verifies by login and does not report success', async () => {
    // rotate-role makes the new password current at prepare, so a re-run finds it current already.
    const { d } = await prepareDb('NOLOGIN')
    const crashed = await execute(d.repo, [], {
      lease: '1s',
      env: { NHI_RECOVER_TEST_CRASH_AT: 'after-prepare' },
    })
    expect(crashed.exitCode, crashed.stdout + crashed.stderr).toBe(-1)
    await new Promise((r) => setTimeout(r, 1200))
    const again = await execute(d.repo, ['--json'])
    expect(again.exitCode, again.stdout + again.stderr).toBe(1)
    const [report] =
      envelope<{ requests: Array<{ outcome: string; reason: string }> }>(again).result?.requests ?? []
    expect(report).toMatchObject({
      outcome: 'failed',
      reason: expect.stringMatching(
        /Logging in to PostgreSQL as svc_orders_\d+ with the new password failed/,
      ),
    })
  }, 60_000)
})
