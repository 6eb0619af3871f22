/**
 * `nhi-recover demo`: the whole routine, offline, on the embedded local provider. It builds a
 * recovery repo with a bare "remote", real SSH keys for each person, files a request, approves
 * it twice with signed approvals, merges it, executes it and verifies the audit ledger. Every
 * step goes through the same services the commands use, and leaves files a person can inspect.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { CheckFailedError, UserError } from '../errors.js'
import { git } from '../git/git.js'
import { initRepo } from '../init/scaffold.js'
import { createNewSpec } from '../new/new-spec.js'
import { approve } from '../approvals/approve.js'
import type { Answers } from '../new/fields.js'
import { runExecute, type RunExecuteResult } from '../engine/run-execute.js'
import { auditVerify } from '../audit/service.js'
import { generateSecret } from '../engine/generate.js'
import { stages } from '../engine/secret-store.js'

export const DEMO_PEOPLE = {
  requester: 'alice',
  reviewers: ['bob', 'carol'],
  executor: 'nhi-recover-executor',
} as const

/**
 * A different provider for the same routine, for integration tests against real servers:
 * extra providers for nhi-recover.yaml, the request's answers, and how to create the
 * credential that exists before the request (returns its version id).
 */
export interface DemoScenario {
  providersYaml: string
  answers: Partial<Answers>
  seed: () => Promise<string>
}

export interface DemoOptions {
  scenario?: DemoScenario
  dir: string
  packageRoot: string
  version: string
  log: (line: string) => void
  now?: () => Date
}

export interface DemoResult {
  dir: string
  repo: string
  remote: string
  keys: string
  requestId: string
  specPath: string
  versionBefore: string
  versionAfter: string
  auditCommit: string
  ledgerEntries: number
}

export interface PreparedDemo {
  dir: string
  repo: string
  remote: string
  keys: string
  storeKeyFile: string
  requestId: string
  specPath: string
  versionBefore: string
}

/** Steps 1 to 6: keys, repo, provider, request, two signed approvals, merge. Nothing executed yet. */
export async function prepareDemo(opts: DemoOptions): Promise<PreparedDemo> {
  const now = opts.now ?? (() => new Date())
  const dir = resolve(opts.dir)
  if (existsSync(dir) && readdirSync(dir).length > 0) {
    throw new UserError(
      'DEMO_DIR_NOT_EMPTY',
      `${opts.dir} is not empty; the demo builds its repo in an empty directory.`,
      {
        next: 'Pass a new directory: nhi-recover demo ./nhi-demo',
      },
    )
  }
  const say = opts.log
  const keys = join(dir, 'keys')
  const remote = join(dir, 'remote.git')
  const repo = join(dir, 'repo')
  mkdirSync(keys, { recursive: true, mode: 0o700 })

  say(`1. Keys: generating SSH keys for the requester, two reviewers and the executor in ${keys}/`)
  const people = [DEMO_PEOPLE.requester, ...DEMO_PEOPLE.reviewers, DEMO_PEOPLE.executor]
  for (const who of people) {
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', who, '-f', join(keys, who)], {
      stdio: 'ignore',
    })
  }
  const storeKey = join(keys, 'local-store.key')
  writeFileSync(storeKey, randomBytes(32).toString('base64') + '\n', { mode: 0o600 })
  chmodSync(storeKey, 0o600)
  const pub = (who: string) =>
    readFileSync(join(keys, `${who}.pub`), 'utf8')
      .trim()
      .split(' ')
      .slice(0, 2)
      .join(' ')

  say(`2. Repo: a bare "remote" at ${remote} and a clone at ${repo}, scaffolded by init`)
  await git(dir, ['init', '-q', '--bare', '-b', 'main', remote])
  await git(dir, ['clone', '-q', remote, repo])
  initRepo({ dir: repo, force: true, version: opts.version, securityTeam: '@demo/security' })
  writeFileSync(
    join(repo, 'nhi-recover.yaml'),
    demoConfig(storeKey, join(keys, DEMO_PEOPLE.executor), opts.scenario?.providersYaml ?? ''),
  )
  writeFileSync(
    join(repo, '.nhi-recover', 'allowed_signers'),
    [
      '# Reviewers may sign approvals; the executor signs audit entries and audit commits.',
      ...DEMO_PEOPLE.reviewers.map((r) => `${r} namespaces="nhi-recover-approval" ${pub(r)}`),
      `${DEMO_PEOPLE.executor} namespaces="nhi-recover-audit,git" ${pub(DEMO_PEOPLE.executor)}`,
      '',
    ].join('\n'),
  )
  const as = (who: string) => ({
    GIT_AUTHOR_NAME: who,
    GIT_AUTHOR_EMAIL: `${who}@demo.invalid`,
    GIT_COMMITTER_NAME: who,
    GIT_COMMITTER_EMAIL: `${who}@demo.invalid`,
  })
  await git(repo, ['config', 'user.name', DEMO_PEOPLE.executor])
  await git(repo, ['config', 'user.email', `${DEMO_PEOPLE.executor}@demo.invalid`])
  await git(repo, ['config', 'gpg.format', 'ssh'])
  await git(repo, ['config', 'user.signingkey', join(keys, DEMO_PEOPLE.executor)])
  await git(repo, ['config', 'gpg.ssh.allowedSignersFile', join(repo, '.nhi-recover', 'allowed_signers')])
  await git(repo, ['add', '-A'])
  await git(repo, ['commit', '-q', '--no-gpg-sign', '-m', 'Set up the recovery repo'], {
    env: as(DEMO_PEOPLE.requester),
  })
  await git(repo, ['push', '-q', 'origin', 'main'])

  say('3. Provider: the local store (encrypted at rest) holds the credential of demo-api-key')
  const seeded = opts.scenario
    ? { id: await opts.scenario.seed() }
    : await (
        await demoStore({ repo, storeKeyFile: storeKey })
      ).put('demo/api-key', generateSecret(40, 'alphanumeric'))
  say(`   its current version is ${seeded.id}; the value itself is never shown`)

  say(`4. Request: ${DEMO_PEOPLE.requester} files a recovery request on a branch (nhi-recover new)`)
  await git(repo, ['checkout', '-q', '-b', 'recover/demo-api-key'])
  const created = await createNewSpec({
    cwd: repo,
    answers: {
      identity: 'demo-api-key',
      type: 'api-key',
      owner: 'platform',
      risk: 'low',
      provider: 'local',
      mechanism: 'local',
      path: 'demo/api-key',
      action: 'rotate',
      reason: 'The demo key was pasted into a chat channel.',
      ticket: 'DEMO-1',
      requester: DEMO_PEOPLE.requester,
      requesterKind: 'human',
      retainPrevious: '0s',
      ...opts.scenario?.answers,
    },
    now: now(),
    packageRoot: opts.packageRoot,
    gitIdentity: () => ({ name: DEMO_PEOPLE.requester }),
  })
  const specPath = join(repo, created.file)
  await git(repo, ['add', '--', specPath])
  await git(
    repo,
    ['commit', '-q', '--no-gpg-sign', '-m', `Request recovery of demo-api-key (${created.id})`],
    { env: as(DEMO_PEOPLE.requester) },
  )
  say(`   wrote ${created.file} (id ${created.id})`)

  say(
    `5. Review: ${DEMO_PEOPLE.reviewers.join(' and ')} each sign an approval of the exact spec (nhi-recover approve)`,
  )
  for (const reviewer of DEMO_PEOPLE.reviewers) {
    await approve({
      cwd: repo,
      path: specPath,
      keyFile: join(keys, reviewer),
      principal: reviewer,
      now: now(),
    })
  }
  await git(repo, ['push', '-q', 'origin', 'recover/demo-api-key'])

  say('6. Merge: the pull request is merged into main')
  await git(repo, ['checkout', '-q', 'main'])
  await git(
    repo,
    [
      'merge',
      '-q',
      '--no-ff',
      '--no-gpg-sign',
      '-m',
      'Merge recovery request for demo-api-key',
      'recover/demo-api-key',
    ],
    {
      env: as(DEMO_PEOPLE.requester),
    },
  )
  await git(repo, ['push', '-q', 'origin', 'main'])

  return {
    dir,
    repo,
    remote,
    keys,
    storeKeyFile: storeKey,
    requestId: created.id,
    specPath: created.file,
    versionBefore: seeded.id,
  }
}

/** The local store of a prepared demo, for reading version ids (never values). */
export async function demoStore(p: Pick<PreparedDemo, 'repo' | 'storeKeyFile'>) {
  const { LocalSecretStore, loadLocalKey } = await import('../../providers/secret-stores/local.js')
  const config = {
    kind: 'local' as const,
    store: '.nhi-recover/local-store',
    keyEnv: 'NHI_RECOVER_DEMO_UNSET',
    keyFile: p.storeKeyFile,
  }
  return new LocalSecretStore({
    name: 'local',
    dir: join(p.repo, '.nhi-recover', 'local-store'),
    key: loadLocalKey(config, p.repo, {}),
  })
}

export async function runDemo(opts: DemoOptions): Promise<DemoResult> {
  const say = opts.log
  const prepared = await prepareDemo(opts)
  const { dir, repo, remote, keys } = prepared
  const store = await demoStore(prepared)
  const created = { id: prepared.requestId, file: prepared.specPath }
  const seeded = { id: prepared.versionBefore }

  say(
    '7. Execute: the executor re-checks the approvals, rotates with a staged cutover and signs the audit entry',
  )
  const result: RunExecuteResult = await runExecute({
    cwd: repo,
    concurrency: 1,
    dryRun: false,
    env: { ...process.env, NHI_RECOVER_TEST_CRASH_AT: undefined },
    onEvent: (e) => {
      if (e.type === 'step') say(`   ${e.step}: ${e.detail}`)
    },
  })
  const done = result.requests.find((r) => r.requestId === created.id)
  if (done?.outcome !== 'succeeded' || !result.audit.commit) {
    throw new CheckFailedError(
      'DEMO_FAILED',
      `The demo request did not execute: ${done?.reason ?? 'not run'}.`,
      {
        next: `Inspect ${repo} and run "nhi-recover execute" there to see why.`,
      },
    )
  }
  const state = stages(await store.describe({ provider: 'local', mechanism: 'local', path: 'demo/api-key' }))

  say(
    '8. Verify: the whole audit ledger checks out offline, from the clone and the public keys (nhi-recover audit verify)',
  )
  const verified = await auditVerify({ cwd: repo })
  if (!verified.ok) {
    throw new UserError(
      'DEMO_FAILED',
      `The audit ledger did not verify: ${verified.problems[0]?.message ?? 'unknown problem'}.`,
    )
  }
  say(
    `   ${verified.entries} entr${verified.entries === 1 ? 'y' : 'ies'} verified; chain, signatures and signed commits intact`,
  )

  return {
    dir,
    repo,
    remote,
    keys,
    requestId: created.id,
    specPath: created.file,
    versionBefore: seeded.id,
    versionAfter: state.current?.id ?? '',
    auditCommit: result.audit.commit,
    ledgerEntries: verified.entries,
  }
}

/**
 * The demo's nhi-recover.yaml; the bench builds its repos from it too (with its own key
 * variable, so a key set for the demo never reaches a bench store).
 */
export function demoConfig(
  storeKey: string,
  executorKey: string,
  extraProviders: string,
  keyEnv = 'NHI_RECOVER_LOCAL_KEY',
): string {
  return `# yaml-language-server: $schema=recovery-specs/schema/repo-config.v1.json
# The demo's config: the local provider, and two SSH-signed approvals for the low tier.
apiVersion: nhi-recover/v1
kind: RepoConfig
providers:
  local:
    kind: local
    store: .nhi-recover/local-store
    keyEnv: ${keyEnv}
    keyFile: ${storeKey}
${extraProviders}approvals:
  ssh:
    allowedSigners: .nhi-recover/allowed_signers
policy:
  tiers:
    low:
      approvals: 2
      backends: [ssh]
      signed: true
      maxAge: 1d
audit:
  path: audit
  signer:
    kind: ssh
    keyFile: ${executorKey}
    principal: ${DEMO_PEOPLE.executor}
`
}
