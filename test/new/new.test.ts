import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { envelope, PROJECT_ROOT, runCli, type CliRun } from '../helpers/cli.js'
import { tempRepo } from '../helpers/temp-repo.js'
import { initRepo } from '../../src/init/scaffold.js'
import type { Problem } from '../../src/spec/problems.js'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A freshly init'd recovery repo, as a user would have after `nhi-recover init`. */
function initRepoDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nhi-new-'))
  dirs.push(dir)
  initRepo({ dir, force: false, version: '0.1.0', securityTeam: '@acme/security' })
  return dir
}

/** No global or system git identity leaks into the test. */
const NO_GIT_IDENTITY = { GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1' }

const LOCAL_FLAGS = [
  '--identity',
  'payments-api-key',
  '--type',
  'api-key',
  '--owner',
  'team-payments',
  '--risk',
  'low',
  '--provider',
  'local',
  '--mechanism',
  'local',
  '--path',
  'payments/api-key',
  '--action',
  'rotate',
  '--reason',
  'The key was printed in a build log.',
  '--ticket',
  'SEC-42',
  '--requester',
  'alice',
  '--requester-kind',
  'human',
]

/** LOCAL_FLAGS with some values replaced. */
function withFlags(overrides: Record<string, string>): string[] {
  const out = [...LOCAL_FLAGS]
  for (const [flag, value] of Object.entries(overrides)) {
    const i = out.indexOf(flag)
    if (i === -1) out.push(flag, value)
    else out[i + 1] = value
  }
  return out
}

const specFiles = (dir: string) => readdirSync(join(dir, 'recovery-specs')).filter((f) => f.endsWith('.yaml'))

function newCli(dir: string, args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCli(['new', ...args], { cwd: dir, env: { ...NO_GIT_IDENTITY, ...env } })
}

describe('nhi-recover new with flags', () => {
  it('writes a spec that validate accepts, in a freshly init-ed repo', async () => {
    // Given a repo scaffolded by init
    const dir = initRepoDir()
    // When new runs with every flag
    const run = await newCli(dir, LOCAL_FLAGS)
    // Then it writes exactly one spec with a generated id, and validate accepts the repo
    expect(run.exitCode, run.stdout + run.stderr).toBe(0)
    const [file] = specFiles(dir)
    expect(file).toMatch(/^rr-payments-api-key-\d{8}-[0-9a-f]{4}\.yaml$/)
    expect(run.stdout).toContain(`Created recovery-specs/${file}`)
    const text = readFileSync(join(dir, 'recovery-specs', file!), 'utf8')
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=schema/recovery-request.v1.json')
    expect(text).toContain(`id: ${file!.replace(/\.yaml$/, '')}\n`)
    const validate = await runCli(['validate'], { cwd: dir })
    expect(validate.exitCode, validate.stdout).toBe(0)
    expect(validate.stdout).toContain('1 spec valid')
  })

  it('fills created and expires from --expires-in and reports in one --json envelope', async () => {
    const dir = initRepoDir()
    const before = Date.now()
    const run = await newCli(dir, [...withFlags({ '--expires-in': '36h' }), '--json'])
    expect(run.exitCode, run.stdout).toBe(0)
    const env = envelope<{
      file: string
      id: string
      requester: string
      expires: string
      schemaInRepo: boolean
    }>(run)
    expect(env).toMatchObject({ ok: true, exitCode: 0, command: 'new' })
    expect(env.result?.requester).toBe('alice')
    expect(env.result?.schemaInRepo).toBe(true)
    const text = readFileSync(join(dir, env.result!.file), 'utf8')
    const created = Date.parse(/^created: (.+)$/m.exec(text)![1]!)
    const expires = Date.parse(/^expires: (.+)$/m.exec(text)![1]!)
    expect(created).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000)
    expect(expires - created).toBe(36 * 3600 * 1000)
  })

  it('takes the requester from git config when --requester is absent', async () => {
    // Given a git repo whose user.email is set
    const dir = initRepoDir()
    execFileSync('git', ['init', '-q', dir])
    execFileSync('git', ['config', 'user.email', 'carol@example.com'], { cwd: dir })
    execFileSync('git', ['config', 'user.name', 'Carol Example'], { cwd: dir })
    const args = LOCAL_FLAGS.slice(0, LOCAL_FLAGS.indexOf('--requester'))
    // When new runs without --requester and --requester-kind
    const run = await newCli(dir, [...args, '--json'])
    // Then the requester is the git identity, a person
    expect(run.exitCode, run.stdout).toBe(0)
    const text = readFileSync(join(dir, envelope<{ file: string }>(run).result!.file), 'utf8')
    expect(text).toContain('requester:\n  name: carol@example.com\n  kind: human\n')
  })

  it('refuses an inline secret in --reason without ever echoing it', async () => {
    // Given a reason that carries a (canary) GitHub token
    const dir = initRepoDir()
    const alnum = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789'
    const canary = 'ghp_' + [...randomBytes(36)].map((b) => alnum[b % alnum.length]).join('')
    const reason = `Leaked token ${canary} in a log`
    // When new runs, with and without --json
    const human = await newCli(dir, withFlags({ '--reason': reason }))
    const json = await newCli(dir, [...withFlags({ '--reason': reason }), '--json'])
    // Then both fail the check, name the field and position, and the value appears nowhere
    expect(human.exitCode).toBe(1)
    expect(json.exitCode).toBe(1)
    for (const run of [human, json]) {
      expect(run.stdout + run.stderr).not.toContain(canary)
      expect(run.stdout + run.stderr).not.toContain(canary.slice(4, 20))
      // Nothing even tried to print it (the scrubber would have left [REDACTED])
      expect(run.stdout + run.stderr).not.toContain('[REDACTED]')
    }
    expect(human.stdout).toMatch(
      /^recovery-specs\/rr-payments-api-key-\d{8}-[0-9a-f]{4}\.yaml:8:9: reason: looks like a GitHub token/m,
    )
    const env = envelope<{ file: string; problems: Problem[] }>(json)
    expect(env.error?.code).toBe('SPEC_INVALID')
    expect(env.result?.problems.map((p) => [p.code, p.path])).toEqual([['INLINE_SECRET', 'reason']])
    expect(specFiles(dir)).toEqual([])
  })

  it('refuses an unknown provider with exit 1, naming the problem and writing nothing', async () => {
    const dir = initRepoDir()
    const run = await newCli(dir, withFlags({ '--provider': 'vault-prod' }))
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toMatch(
      /^recovery-specs\/rr-payments-api-key-\d{8}-[0-9a-f]{4}\.yaml:\d+:\d+: target\.provider: names provider "vault-prod", .*\(defined: local\) \[UNKNOWN_PROVIDER\]$/m,
    )
    expect(run.stderr).toMatch(
      /^Error: 1 problem\(s\) in the new request; nothing was written to recovery-specs\//m,
    )
    expect(run.stderr).toMatch(/^Next: /m)
    expect(specFiles(dir)).toEqual([])
  })

  it('refuses a traversing --path and writes nothing anywhere', async () => {
    const dir = initRepoDir()
    const run = await newCli(dir, [...withFlags({ '--path': '../x' }), '--json'])
    expect(run.exitCode).toBe(1)
    const env = envelope<{ problems: Problem[] }>(run)
    expect(env.result?.problems.map((p) => [p.code, p.path])).toEqual([['INVALID_FORMAT', 'target.path']])
    expect(specFiles(dir)).toEqual([])
    expect(readdirSync(dir).sort()).toEqual([
      '.github',
      '.nhi-recover',
      'audit',
      'nhi-recover.yaml',
      'recovery-specs',
    ])
  })

  it('refuses an --id that is not a safe id, before it can become a path', async () => {
    const dir = initRepoDir()
    const run = await newCli(dir, [...withFlags({ '--id': '../../evil' }), '--json'])
    expect(run.exitCode).toBe(2)
    expect(envelope(run).error?.code).toBe('INVALID_FLAGS')
    expect(envelope(run).error?.message).toContain('--id: must be 3–80 characters')
    expect(existsSync(join(dir, '..', 'evil.yaml'))).toBe(false)
    expect(specFiles(dir)).toEqual([])
  })

  it('refuses an --id that another spec in the repo already uses', async () => {
    // Given a spec in a subfolder with the id rr-taken-id
    const dir = initRepoDir()
    const existing = join(dir, 'recovery-specs/2026/old.yaml')
    execFileSync('mkdir', ['-p', dirname(existing)])
    writeFileSync(existing, 'apiVersion: nhi-recover/v1\nkind: RecoveryRequest\nid: rr-taken-id\n')
    // When new asks for the same id
    const run = await newCli(dir, withFlags({ '--id': 'rr-taken-id' }))
    // Then it names the other file and writes nothing
    expect(run.exitCode).toBe(1)
    expect(run.stdout).toContain(
      'recovery-specs/rr-taken-id.yaml:4:5: id: "rr-taken-id" is also the id of recovery-specs/2026/old.yaml; every request needs its own id [DUPLICATE_ID]',
    )
    expect(specFiles(dir)).toEqual([])
  })

  it('never overwrites an existing file, even one that holds another id', async () => {
    const dir = initRepoDir()
    const target = join(dir, 'recovery-specs/rr-free-id.yaml')
    writeFileSync(target, 'not a spec\n')
    const run = await newCli(dir, [...withFlags({ '--id': 'rr-free-id' }), '--json'])
    expect(run.exitCode).toBe(1)
    expect(envelope<{ problems: Problem[] }>(run).result?.problems.map((p) => p.code)).toEqual([
      'FILE_EXISTS',
    ])
    expect(readFileSync(target, 'utf8')).toBe('not a spec\n')
  })

  it('refuses a target flag that does not apply to the mechanism', async () => {
    const dir = initRepoDir()
    const run = await newCli(dir, withFlags({ '--role': 'admin' }))
    expect(run.exitCode).toBe(2)
    expect(run.stderr).toContain('--role: does not apply to mechanism local')
    expect(specFiles(dir)).toEqual([])
  })
})

describe('nhi-recover new without a terminal', () => {
  it('never prompts: missing flags are a usage error that lists exactly those flags', async () => {
    const dir = initRepoDir()
    const run = await newCli(dir, [
      '--identity',
      'payments-api-key',
      '--mechanism',
      'kv-v2',
      '--reason',
      'x y',
    ])
    expect(run.exitCode).toBe(2)
    expect(run.stderr).toContain(
      'Error: Missing required flag(s): --type, --owner, --risk, --provider, --path, --action, --ticket, --requester, --requester-kind.',
    )
    expect(run.stderr).toMatch(/^Next: Pass --type, /m)
    expect(specFiles(dir)).toEqual([])
  })

  it('asks for --rollback-of only with --action rollback, and says so in --json', async () => {
    const dir = initRepoDir()
    const args = LOCAL_FLAGS.filter((a) => a !== '--action' && a !== 'rotate')
    const run = await newCli(dir, [...args, '--action', 'rollback', '--json'])
    expect(run.exitCode).toBe(2)
    expect(envelope(run).error).toMatchObject({
      code: 'MISSING_FLAGS',
      message: 'Missing required flag(s): --rollback-of.',
    })
  })
})

describe('the $schema line', () => {
  it('points at the schema shipped with the package when the repo has none, and says so', async () => {
    // Given a repo with a config but no recovery-specs/schema/
    const repo = tempRepo()
    dirs.push(repo.root)
    // When new writes a spec
    const run = await newCli(repo.root, [...LOCAL_FLAGS, '--json'])
    expect(run.exitCode, run.stdout).toBe(0)
    const env = envelope<{ file: string; schema: string; schemaInRepo: boolean }>(run)
    // Then the reference resolves, from the file, to the package's own copy
    expect(env.result?.schemaInRepo).toBe(false)
    const abs = join(repo.root, env.result!.file)
    expect(resolve(dirname(abs), env.result!.schema)).toBe(
      join(PROJECT_ROOT, 'recovery-specs/schema/recovery-request.v1.json'),
    )
    expect(readFileSync(abs, 'utf8').split('\n')[0]).toBe(
      `# yaml-language-server: $schema=${env.result!.schema}`,
    )
    const human = await newCli(repo.root, withFlags({ '--identity': 'other-key' }))
    expect(human.stdout).toContain('Note: the repo has no recovery-specs/schema/')
  })
})
