/**
 * The executor as CI runs it against AWS: the built CLI as a real process, on a real recovery
 * repo (bare remote, SSH-signed approvals and audit commits), and moto's real server. The CLI
 * gets its AWS settings only from env, as in CI. Crash tests kill it with SIGKILL at each step
 * boundary and run it again; the AWS state is then read back from moto with the plain SDK.
 */
import { execFileSync } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, relative } from 'node:path'
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager'
import { ListUserTagsCommand, type IAMClient } from '@aws-sdk/client-iam'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { DEMO_PEOPLE, prepareDemo, type DemoScenario, type PreparedDemo } from '../../src/demo/demo.js'
import { CRASH_POINTS } from '../../src/engine/test-hooks.js'
import { readRemoteLocks } from '../../src/engine/git-locks.js'
import { createNewSpec } from '../../src/new/new-spec.js'
import { approve } from '../../src/approvals/approve.js'
import { git } from '../../src/git/git.js'
import { auditLog } from '../../src/audit/service.js'
import { MOTO_ENV, startMoto, useMotoEnv, type MotoServer } from '../harness/moto.js'
import { PROJECT_ROOT, envelope, runCli, type CliRun } from '../helpers/cli.js'
import {
  canary,
  createKey,
  createSecret,
  createUser,
  keysOf,
  labelsOf,
  putVersion,
  rawClients,
  valueAt,
  type Labels,
} from '../providers/aws/fixtures.js'

const SM_SECRET = 'prod/reporting/api-key'
const IAM_USER = 'ci-deployer'
const IAM_SECRET = 'prod/ci/deployer-key'
const REQUEST_LABEL = 'nhi-recover-request:'

let moto: MotoServer
let sm: SecretsManagerClient
let iam: IAMClient

beforeAll(async () => {
  // The test process reads moto with the plain SDK; the CLI gets the same settings through env.
  useMotoEnv()
  moto = await startMoto()
  ;({ sm, iam } = rawClients(moto))
})
afterAll(async () => moto?.stop())
beforeEach(async () => moto.reset())

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

type Mechanism = 'secrets-manager' | 'iam-access-key'

/** What a scenario seeded in moto before the request: the secret's version, and the IAM key. */
interface Seeded {
  versionBefore: string
  oldValue: string
  oldKeyId?: string
}

interface Prepared extends PreparedDemo {
  mechanism: Mechanism
  secret: string
  seeded: Seeded
}

const PROVIDERS_YAML = `  aws-sm:
    kind: aws-secrets-manager
  aws-iam:
    kind: aws-iam
`

function scenario(mechanism: Mechanism, extra: DemoScenario['answers'], out: Partial<Seeded>): DemoScenario {
  if (mechanism === 'secrets-manager') {
    return {
      providersYaml: PROVIDERS_YAML,
      answers: {
        identity: 'reporting-api-key',
        type: 'api-key',
        provider: 'aws-sm',
        mechanism,
        path: '',
        secret: SM_SECRET,
        ...extra,
      },
      seed: async () => {
        const id = (await createSecret(sm, SM_SECRET, canary()))!
        Object.assign(out, { versionBefore: id, oldValue: await valueAt(sm, SM_SECRET, 'AWSCURRENT', id) })
        return id
      },
    }
  }
  return {
    providersYaml: PROVIDERS_YAML,
    answers: {
      identity: IAM_USER,
      type: 'iam-user',
      provider: 'aws-iam',
      mechanism,
      path: '',
      user: IAM_USER,
      secret: IAM_SECRET,
      ...extra,
    },
    seed: async () => {
      await createUser(iam, IAM_USER)
      const k0 = await createKey(iam, IAM_USER)
      const pair = JSON.stringify({ AccessKeyId: k0.id, SecretAccessKey: k0.secret })
      const id = (await createSecret(sm, IAM_SECRET, pair))!
      Object.assign(out, { versionBefore: id, oldValue: pair, oldKeyId: k0.id })
      return id
    },
  }
}

// One prepared repo per mechanism and answers, kept until the file ends; each test gets a copy.
const templates = new Map<string, Promise<Prepared>>()
const templateDirs: string[] = []
afterAll(() => {
  for (const d of templateDirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A recovery repo from prepareDemo with one merged, approved request against moto, not executed yet. */
async function freshlyPrepared(mechanism: Mechanism, extra: DemoScenario['answers']): Promise<Prepared> {
  const dir = mkdtempSync(join(tmpdir(), 'nhi-exec-aws-'))
  templateDirs.push(dir)
  const seeded: Partial<Seeded> = {}
  const d = await prepareDemo({
    dir: join(dir, 'd'),
    packageRoot: PROJECT_ROOT,
    version: '0.0.0-test',
    log: () => {},
    scenario: scenario(mechanism, extra, seeded),
  })
  const secret = mechanism === 'secrets-manager' ? SM_SECRET : IAM_SECRET
  return { ...d, mechanism, secret, seeded: seeded as Seeded }
}

/**
 * A fresh copy (clone, bare remote, keys) of a repo prepared once for these answers, with the
 * AWS state seeded again in the reset moto. The copy's committed config and git config still
 * name the template's key files, which are the same keys.
 */
async function prepared(mechanism: Mechanism, extra: DemoScenario['answers'] = {}): Promise<Prepared> {
  const key = `${mechanism} ${JSON.stringify(extra)}`
  let template = templates.get(key)
  if (!template) {
    template = freshlyPrepared(mechanism, extra)
    templates.set(key, template)
  }
  const t = await template
  await moto.reset()
  const copy = join(mkdtempSync(join(tmpdir(), 'nhi-exec-aws-')), 'd')
  dirs.push(dirname(copy))
  cpSync(t.dir, copy, { recursive: true })
  const at = (p: string) => join(copy, relative(t.dir, p))
  const d = {
    ...t,
    dir: copy,
    repo: at(t.repo),
    remote: at(t.remote),
    keys: at(t.keys),
    storeKeyFile: at(t.storeKeyFile),
  }
  await git(d.repo, ['remote', 'set-url', 'origin', d.remote])
  const seeded: Partial<Seeded> = {}
  await scenario(mechanism, {}, seeded).seed()
  return { ...d, seeded: seeded as Seeded }
}

/** The CLI's whole AWS configuration: dummy credentials, region and endpoint, all from env. */
const awsEnv = () => ({ ...MOTO_ENV, AWS_ENDPOINT_URL: moto.endpoint })

function cli(d: PreparedDemo, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(args, {
    cwd: d.repo,
    env: { NHI_RECOVER_TEST_MODE: '1', ...awsEnv(), ...env },
    timeoutMs: 60_000,
  })
}

const execute = (d: PreparedDemo, args: string[] = [], env: Record<string, string> = {}) =>
  cli(d, ['execute', '--lock-lease', '1s', ...args], env)

/**
 * Waits until the dead executor's locks (1 s lease) have expired, so that the re-run takes
 * them over: no longer than the lease that is left, as the lock table on the remote say.
 */
async function leasesExpired(d: PreparedDemo): Promise<void> {
  const locks = await readRemoteLocks(d.repo, 'origin', new Date())
  expect(locks.length).toBeGreaterThan(0)
  const wait = Math.max(...locks.map((l) => Date.parse(l.expires))) - Date.now() + 50
  if (wait > 0) await new Promise((r) => setTimeout(r, wait))
}

interface ExecReport {
  requestId: string
  outcome: string
  reason: string
  provider: string
  target: string
  versionBefore?: string
  versionAfter?: string
}

/**
 * Exactly one rotation, read from moto: one version carries the request's label and holds
 * AWSCURRENT alone; nothing is AWSPENDING; the old version was retired (no labels left).
 * For IAM, the user has exactly the new key, active, and no key creation is marked in progress.
 */
async function expectOneRotation(d: Prepared): Promise<string> {
  const labels = await labelsOf(sm, d.secret)
  const dump = JSON.stringify(labels)
  const ours = Object.keys(labels).filter((v) => labels[v]!.includes(REQUEST_LABEL + d.requestId))
  expect(ours, dump).toHaveLength(1)
  const current = ours[0]!
  expect(holders(labels, 'AWSCURRENT'), dump).toEqual([current])
  expect(holders(labels, 'AWSPENDING'), dump).toEqual([])
  expect(Object.keys(labels).sort(), dump).toEqual([current, d.seeded.versionBefore].sort())
  // retainPrevious 0s: the old version lost every label (AWS deletes it in its own time).
  expect(labels[d.seeded.versionBefore], dump).toEqual([])
  if (d.mechanism === 'iam-access-key') {
    const pair = JSON.parse((await valueAt(sm, d.secret, 'AWSCURRENT'))!) as { AccessKeyId: string }
    expect(pair.AccessKeyId).not.toBe(d.seeded.oldKeyId)
    expect(await keysOf(iam, IAM_USER)).toEqual([{ id: pair.AccessKeyId, status: 'Active' }])
    const tags = await iam.send(new ListUserTagsCommand({ UserName: IAM_USER }))
    expect(tags.Tags ?? []).toEqual([])
  }
  return current
}

function holders(labels: Labels, label: string): string[] {
  return Object.keys(labels).filter((v) => labels[v]!.includes(label))
}

interface Entry {
  request: { id: string }
  action: string
  provider: string
  target: string
  credential: { versionBefore: string | null; versionAfter: string | null }
  outcome: { status: string; reason: string }
}

/** `audit verify` passes; returns the request's entries. */
async function verifiedEntries(d: PreparedDemo): Promise<Entry[]> {
  const v = await cli(d, ['audit', 'verify', '--json'])
  expect(v.exitCode, v.stdout + v.stderr).toBe(0)
  // The entries through the service `audit log` prints (in process: one CLI start less per test).
  const log = await auditLog({ cwd: d.repo, query: { request: d.requestId } })
  return log.entries as Entry[]
}

/** The ledger verifies and holds exactly one succeeded rotation (or revoke) and one retirement. */
async function expectLedger(d: Prepared, action: 'rotate' | 'revoke', versionAfter: string): Promise<void> {
  const entries = (await verifiedEntries(d)).filter((e) => e.outcome.status === 'succeeded')
  const provider = d.mechanism === 'secrets-manager' ? 'aws-sm' : 'aws-iam'
  const target = d.mechanism === 'secrets-manager' ? `aws-sm:${SM_SECRET}` : `aws-iam:user/${IAM_USER}`
  expect(entries, JSON.stringify(entries)).toEqual([
    expect.objectContaining({
      action,
      provider,
      target,
      credential: { versionBefore: d.seeded.versionBefore, versionAfter },
    }),
    expect.objectContaining({
      action: 'retire',
      provider,
      target,
      credential: { versionBefore: d.seeded.versionBefore, versionAfter: null },
    }),
  ])
}

/** Every byte reachable in a repo's object store: commits, trees and blobs of all refs. */
function gitObjects(repo: string): string {
  return execFileSync('sh', ['-c', 'git rev-list --all --objects | cut -d" " -f1 | git cat-file --batch'], {
    cwd: repo,
    maxBuffer: 64 * 1024 * 1024,
  }).toString('latin1')
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name)
    return statSync(p).isDirectory() ? filesUnder(p) : [readFileSync(p, 'latin1')]
  })
}

/** No secret value in any output, in the ledger files, or in the history of the clone and the remote. */
function expectNoValue(d: PreparedDemo, outputs: CliRun[], values: string[]): void {
  const ledger = filesUnder(join(d.repo, 'audit')).join('\n')
  const texts = [
    ...outputs.flatMap((o) => [o.stdout, o.stderr]),
    ledger,
    gitObjects(d.repo),
    gitObjects(d.remote),
  ]
  // The scan reads the real ledger: it names the request and its version ids, never a value.
  for (const t of [ledger, texts.at(-1)!]) expect(t).toContain(d.requestId)
  for (const value of values) {
    expect(value.length).toBeGreaterThanOrEqual(20)
    for (const t of texts)
      expect(t.includes(value), `a secret value leaked into: ${t.slice(0, 200)}`).toBe(false)
  }
}

/** The old value (seeded) and every value moto holds for the secret now, each never shown anywhere. */
async function expectNoValueShown(d: Prepared, outputs: CliRun[]): Promise<void> {
  const labels = await labelsOf(sm, d.secret)
  const values = [d.seeded.oldValue]
  for (const [id, stages] of Object.entries(labels)) {
    if (stages.length > 0) values.push((await valueAt(sm, d.secret, stages[0]!, id))!)
  }
  expect(values.length).toBeGreaterThanOrEqual(2)
  expectNoValue(d, outputs, values.flatMap(secretParts))
}

/** The values to hunt for: whole secret strings and, for key pairs, each half's secret. */
function secretParts(value: string): string[] {
  try {
    const pair = JSON.parse(value) as { SecretAccessKey?: string }
    if (pair.SecretAccessKey) return [value, pair.SecretAccessKey]
  } catch {
    // not JSON: a plain secret string
  }
  return [value]
}

describe.each(['secrets-manager', 'iam-access-key'] as const)(
  'execute %s (built CLI, real git, moto)',
  (mechanism) => {
    it('rotates end to end, audits provider, target and version ids, and never shows a value', async () => {
      const d = await prepared(mechanism)
      const first = await execute(d, ['--json'])
      expect(first.exitCode, first.stdout + first.stderr).toBe(0)
      const report = envelope<{ requests: ExecReport[]; audit: { commit: string } }>(first).result!
      const current = await expectOneRotation(d)
      expect(report.requests).toEqual([
        expect.objectContaining({
          requestId: d.requestId,
          outcome: 'succeeded',
          versionBefore: d.seeded.versionBefore,
          versionAfter: current,
        }),
      ])
      execFileSync('git', ['verify-commit', report.audit.commit], { cwd: d.repo, stdio: 'pipe' })

      const second = await execute(d)
      expect(second.exitCode, second.stdout + second.stderr).toBe(0)
      expect(await expectOneRotation(d)).toBe(current)
      await expectLedger(d, 'rotate', current)

      await expectNoValueShown(d, [first, second, await cli(d, ['audit', 'log', '--json'])])
    })

    it.each(CRASH_POINTS)(
      'killed with SIGKILL %s, a re-run finishes the same rotation exactly once',
      async (point) => {
        const d = await prepared(mechanism)
        const crashed = await execute(d, [], { NHI_RECOVER_TEST_CRASH_AT: point })
        expect(crashed.exitCode, `${point}: ${crashed.stdout}${crashed.stderr}`).toBe(-1)
        await leasesExpired(d)
        const again = await execute(d)
        expect(again.exitCode, again.stdout + again.stderr).toBe(0)
        await expectLedger(d, 'rotate', await expectOneRotation(d))
        await expectNoValueShown(d, [crashed, again])
      },
    )

    it('two executors racing on the same request give exactly one rotation', async () => {
      const d = await prepared(mechanism)
      // A lease longer than a run, as in production: with the crash tests' 1 s lease, a slow run
      // on a loaded machine outlives its lease and the other executor rightly takes it over.
      const runs = await Promise.all([0, 1].map(() => cli(d, ['execute', '--lock-lease', '5m', '--json'])))
      for (const r of runs) expect(r.exitCode, r.stdout + r.stderr).toBe(0)
      const outcomes = runs.map((r) => envelope<{ requests: ExecReport[] }>(r).result?.requests[0]?.outcome)
      // The loser found the request locked (held) or, once the winner finished, done (skipped).
      expect(outcomes.sort(), JSON.stringify(outcomes)).toEqual([
        expect.stringMatching(/^(held|skipped)$/),
        'succeeded',
      ])
      await expectLedger(d, 'rotate', await expectOneRotation(d))
    })
  },
)

describe('execute against a foreign AWSPENDING (built CLI, real git, moto)', () => {
  it('refuses, changes nothing, and audits the failure', async () => {
    // Given another rotation (a Lambda, a person) left its own version pending
    const d = await prepared('secrets-manager')
    const foreignValue = canary()
    const foreign = await putVersion(sm, SM_SECRET, foreignValue, ['AWSPENDING'])
    const before = await labelsOf(sm, SM_SECRET)

    const run = await execute(d, ['--json'])

    expect(run.exitCode, run.stdout + run.stderr).toBe(1)
    expect(envelope<{ requests: ExecReport[] }>(run).result?.requests).toEqual([
      expect.objectContaining({
        requestId: d.requestId,
        outcome: 'failed',
        reason: expect.stringContaining('FOREIGN_PENDING'),
      }),
    ])
    expect(await labelsOf(sm, SM_SECRET)).toEqual(before)
    expect(holders(before, 'AWSPENDING')).toEqual([foreign])
    const entries = await verifiedEntries(d)
    expect(entries.map((e) => [e.action, e.outcome.status])).toEqual([['rotate', 'failed']])
    expectNoValue(d, [run], [d.seeded.oldValue, foreignValue])
  })
})

describe('execute iam-access-key with action revoke (built CLI, real git, moto)', () => {
  it('deactivates the compromised key before any other write, then rotates and audits the revoke', async () => {
    const d = await prepared('iam-access-key', { action: 'revoke' })
    await moto.startRecording()
    const run = await execute(d, ['--json'])
    const recorded = await moto.stopRecording()
    expect(run.exitCode, run.stdout + run.stderr).toBe(0)

    // Reads may come first (the key id is read from the current version); the first write is the deactivation.
    const writes = recorded.filter((r) => !/\.(Get|List|Describe)[A-Za-z]*$/.test(r.operation))
    expect(writes.length, recorded.map((r) => r.operation).join(', ')).toBeGreaterThan(3)
    const first = new URLSearchParams(writes[0]!.body)
    expect(writes[0]!.operation).toBe('iam.UpdateAccessKey')
    expect(Object.fromEntries(first)).toMatchObject({
      AccessKeyId: d.seeded.oldKeyId,
      Status: 'Inactive',
      UserName: IAM_USER,
    })
    const ops = writes.map((w) => w.operation)
    expect(ops.indexOf('iam.CreateAccessKey')).toBeGreaterThan(0)
    expect(ops.indexOf('secretsmanager.PutSecretValue')).toBeGreaterThan(0)

    const current = await expectOneRotation(d)
    expect(envelope<{ requests: ExecReport[] }>(run).result?.requests).toEqual([
      expect.objectContaining({ requestId: d.requestId, outcome: 'succeeded', versionAfter: current }),
    ])
    await expectLedger(d, 'revoke', current)
    const entries = await verifiedEntries(d)
    expect(entries.find((e) => e.action === 'retire')?.outcome.reason).toMatch(/revoked/)
    await expectNoValueShown(d, [run])
  })

  it('killed with SIGKILL after the revoke staged its new key, a re-run keeps the old key dead and finishes once', async () => {
    const d = await prepared('iam-access-key', { action: 'revoke' })
    const crashed = await execute(d, [], { NHI_RECOVER_TEST_CRASH_AT: 'after-prepare' })
    expect(crashed.exitCode, crashed.stdout + crashed.stderr).toBe(-1)
    const keys = await keysOf(iam, IAM_USER)
    expect(keys.find((k) => k.id === d.seeded.oldKeyId)?.status).toBe('Inactive')
    await leasesExpired(d)
    const again = await execute(d)
    expect(again.exitCode, again.stdout + again.stderr).toBe(0)
    await expectLedger(d, 'revoke', await expectOneRotation(d))
  })
})

const as = (who: string) => ({
  GIT_AUTHOR_NAME: who,
  GIT_AUTHOR_EMAIL: `${who}@demo.invalid`,
  GIT_COMMITTER_NAME: who,
  GIT_COMMITTER_EMAIL: `${who}@demo.invalid`,
})

/**
 * Files a second request the way people do: a branch, the spec from `new`, two signed
 * approvals, a merge into main, a push. Returns the new request's id.
 */
async function mergeApprovedRequest(d: Prepared, answers: DemoScenario['answers']): Promise<string> {
  const branch = `recover/${answers.action ?? 'request'}-${d.requestId}`
  await git(d.repo, ['checkout', '-q', '-b', branch])
  const created = await createNewSpec({
    cwd: d.repo,
    answers: {
      ...scenario(d.mechanism, {}, {}).answers,
      owner: 'platform',
      risk: 'low',
      reason: 'The rotation broke the reporting job.',
      ticket: 'DEMO-2',
      requester: DEMO_PEOPLE.requester,
      requesterKind: 'human',
      ...answers,
    },
    now: new Date(),
    packageRoot: PROJECT_ROOT,
    gitIdentity: () => ({ name: DEMO_PEOPLE.requester }),
  })
  const specPath = join(d.repo, created.file)
  await git(d.repo, ['add', '--', specPath])
  await git(d.repo, ['commit', '-q', '--no-gpg-sign', '-m', `Request ${created.id}`], {
    env: as(DEMO_PEOPLE.requester),
  })
  for (const reviewer of DEMO_PEOPLE.reviewers) {
    await approve({
      cwd: d.repo,
      path: specPath,
      keyFile: join(d.keys, reviewer),
      principal: reviewer,
      now: new Date(),
    })
  }
  await git(d.repo, ['push', '-q', 'origin', branch])
  await git(d.repo, ['checkout', '-q', 'main'])
  await git(d.repo, ['merge', '-q', '--no-ff', '--no-gpg-sign', '-m', `Merge ${created.id}`, branch], {
    env: as(DEMO_PEOPLE.requester),
  })
  await git(d.repo, ['push', '-q', 'origin', 'main'])
  return created.id
}

/** A succeeded rotation that keeps the previous version for a day, and a merged, approved rollback spec for it. */
async function rotatedWithRollbackMerged(): Promise<{ d: Prepared; rotated: string; rollbackId: string }> {
  const d = await prepared('secrets-manager', { retainPrevious: '24h' })
  const rotate = await execute(d)
  expect(rotate.exitCode, rotate.stdout + rotate.stderr).toBe(0)
  const before = await labelsOf(sm, SM_SECRET)
  const rotated = holders(before, 'AWSCURRENT')[0]!
  expect(rotated).not.toBe(d.seeded.versionBefore)
  expect(holders(before, 'AWSPREVIOUS')).toEqual([d.seeded.versionBefore])
  const rollbackId = await mergeApprovedRequest(d, { action: 'rollback', rollbackOf: d.requestId })
  return { d, rotated, rollbackId }
}

/** The old version is current again with its old value, nothing is pending, and one rollback is audited. */
async function expectRolledBackOnce(d: Prepared, rotated: string, rollbackId: string): Promise<Labels> {
  const after = await labelsOf(sm, SM_SECRET)
  expect(holders(after, 'AWSCURRENT'), JSON.stringify(after)).toEqual([d.seeded.versionBefore])
  expect(holders(after, 'AWSPENDING')).toEqual([])
  expect(after[rotated]).not.toContain('AWSCURRENT')
  expect(await valueAt(sm, SM_SECRET, 'AWSCURRENT')).toBe(d.seeded.oldValue)
  const entries = (await verifiedEntries({ ...d, requestId: rollbackId })).filter(
    (e) => e.outcome.status === 'succeeded',
  )
  expect(entries).toEqual([
    expect.objectContaining({
      action: 'rollback',
      provider: 'aws-sm',
      target: `aws-sm:${SM_SECRET}`,
      credential: { versionBefore: rotated, versionAfter: d.seeded.versionBefore },
    }),
  ])
  return after
}

describe('rollback secrets-manager (built CLI, real git, moto)', () => {
  it('restores the previous version through a merged, approved rollback spec, once', async () => {
    // Given a rotation and a merged, approved rollback spec for it
    const { d, rotated, rollbackId } = await rotatedWithRollbackMerged()

    // When rollback runs
    const rb = await cli(d, ['rollback', d.requestId, '--json'])
    expect(rb.exitCode, rb.stdout + rb.stderr).toBe(0)

    // Then the old version is current again, and the rollback is audited
    expect(envelope<{ requests: ExecReport[] }>(rb).result?.requests).toEqual([
      expect.objectContaining({
        requestId: rollbackId,
        outcome: 'succeeded',
        versionBefore: rotated,
        versionAfter: d.seeded.versionBefore,
      }),
    ])
    const after = await expectRolledBackOnce(d, rotated, rollbackId)

    // And a second rollback run finds it done in the ledger and rolls back nothing
    const again = await cli(d, ['rollback', d.requestId, '--json'])
    expect(envelope<{ requests: ExecReport[] }>(again).result?.requests).toEqual([
      expect.objectContaining({
        requestId: rollbackId,
        outcome: 'skipped',
        reason: expect.stringMatching(/^already succeeded/),
      }),
    ])
    expect(await labelsOf(sm, SM_SECRET)).toEqual(after)
    await expectRolledBackOnce(d, rotated, rollbackId)
    await expectNoValueShown(d, [rb, again])
  })

  it('killed with SIGKILL after the restore, a re-run finishes the same rollback and does not flip back', async () => {
    const { d, rotated, rollbackId } = await rotatedWithRollbackMerged()
    // execute runs merged rollback specs too; its short lease lets the re-run take over.
    const crashed = await execute(d, [], { NHI_RECOVER_TEST_CRASH_AT: 'after-promote' })
    expect(crashed.exitCode, crashed.stdout + crashed.stderr).toBe(-1)
    expect(holders(await labelsOf(sm, SM_SECRET), 'AWSCURRENT')).toEqual([d.seeded.versionBefore])
    await leasesExpired(d)
    const again = await cli(d, ['rollback', d.requestId, '--json'])
    expect(again.exitCode, again.stdout + again.stderr).toBe(0)
    expect(envelope<{ requests: ExecReport[] }>(again).result?.requests).toEqual([
      expect.objectContaining({ requestId: rollbackId, outcome: 'succeeded' }),
    ])
    await expectRolledBackOnce(d, rotated, rollbackId)
    await expectNoValueShown(d, [crashed, again])
  })
})
