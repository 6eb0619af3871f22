import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { execFileSync } from 'node:child_process'
import { join, relative } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { envelope, runCli } from '../helpers/cli.js'
import { schemaFiles } from '../../src/spec/schema-files.js'
import { RepoConfig } from '../../src/spec/schema.js'

const dirs: string[] = []
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'nhi-init-'))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** Every file below dir with its content: a snapshot to prove "nothing changed". */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, e.name)
      if (e.isDirectory()) walk(full)
      else out[relative(dir, full)] = e.isSymbolicLink() ? '(symlink)' : readFileSync(full, 'utf8')
    }
  }
  walk(dir)
  return out
}

const EXPECTED_FILES = [
  '.github/CODEOWNERS.suggested',
  '.github/workflows/nhi-recover-execute.yml',
  '.github/workflows/nhi-recover-pr.yml',
  '.nhi-recover/.gitignore',
  '.nhi-recover/allowed_signers',
  'audit/.gitkeep',
  'nhi-recover.yaml',
  'recovery-specs/README.md',
  'recovery-specs/schema/recovery-request.v1.json',
  'recovery-specs/schema/repo-config.v1.json',
]

describe('nhi-recover init', () => {
  it('scaffolds an empty directory with a config that validate accepts', async () => {
    // Given an empty directory
    const dir = tempDir()
    // When init runs in it
    const run = await runCli(['init'], { cwd: dir })
    // Then it lists what it created, and every file is there
    expect(run.exitCode, run.stderr).toBe(0)
    expect(Object.keys(tree(dir)).sort()).toEqual(EXPECTED_FILES)
    for (const f of EXPECTED_FILES) expect(run.stdout).toContain(`created      ${f}`)
    expect(run.stdout).toContain('Next:')
    // And the commented config parses under the RepoConfig schema, and validate runs on the repo
    expect(RepoConfig.safeParse(parse(readFileSync(join(dir, 'nhi-recover.yaml'), 'utf8'))).success).toBe(
      true,
    )
    const validate = await runCli(['validate'], { cwd: dir })
    expect(validate.exitCode, validate.stdout + validate.stderr).toBe(0)
  })

  it('creates DIR when it does not exist and reports in one --json envelope', async () => {
    const parent = tempDir()
    const run = await runCli(['init', 'recovery', '--json', '--security-team', '@acme/appsec'], {
      cwd: parent,
    })
    expect(run.exitCode, run.stderr).toBe(0)
    const env = envelope<{ dir: string; created: string[]; overwritten: string[]; gitRepo: boolean }>(run)
    expect(env.ok).toBe(true)
    expect(env.command).toBe('init')
    expect(env.result?.created.sort()).toEqual(EXPECTED_FILES)
    expect(env.result?.overwritten).toEqual([])
    expect(env.result?.gitRepo).toBe(false)
    const codeowners = readFileSync(join(parent, 'recovery', '.github/CODEOWNERS.suggested'), 'utf8')
    expect(codeowners).toMatch(/^\/recovery-specs\/ @acme\/appsec$/m)
    expect(codeowners).toMatch(/^\/nhi-recover\.yaml @acme\/appsec$/m)
    // The policy tiers name the same team
    const config = RepoConfig.parse(parse(readFileSync(join(parent, 'recovery', 'nhi-recover.yaml'), 'utf8')))
    expect(config.policy.tiers.low?.teams).toEqual([{ team: 'appsec', min: 1 }])
  })

  it('refuses to overwrite an existing file and then writes nothing at all', async () => {
    // Given a directory where one of the files init writes already exists
    const dir = tempDir()
    mkdirSync(join(dir, '.github/workflows'), { recursive: true })
    writeFileSync(join(dir, '.github/workflows/nhi-recover-pr.yml'), 'mine\n')
    writeFileSync(join(dir, 'nhi-recover.yaml'), 'also mine\n')
    const before = tree(dir)
    // When init runs without --force
    const run = await runCli(['init'], { cwd: dir })
    // Then it is a usage error naming both files, and the directory is byte-for-byte unchanged
    expect(run.exitCode).toBe(2)
    expect(run.stderr).toContain('Refusing to overwrite 2 existing file(s)')
    expect(run.stderr).toContain('nhi-recover.yaml')
    expect(run.stderr).toContain('.github/workflows/nhi-recover-pr.yml')
    expect(run.stderr).toMatch(/^Next: .*--force/m)
    expect(tree(dir)).toEqual(before)
    expect(existsSync(join(dir, 'recovery-specs'))).toBe(false)
    expect(existsSync(join(dir, 'audit'))).toBe(false)
  })

  it('the refusal is one --json envelope with exit code 2', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'nhi-recover.yaml'), 'mine\n')
    const run = await runCli(['init', '--json'], { cwd: dir })
    expect(run.exitCode).toBe(2)
    const env = envelope(run)
    expect(env.ok).toBe(false)
    expect(env.error?.code).toBe('FILES_EXIST')
    expect(env.error?.next).toContain('--force')
  })

  it('with --force overwrites existing files and says which', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'nhi-recover.yaml'), 'mine\n')
    const run = await runCli(['init', '--force', '--json'], { cwd: dir })
    expect(run.exitCode, run.stderr).toBe(0)
    const env = envelope<{ created: string[]; overwritten: string[] }>(run)
    expect(env.result?.overwritten).toEqual(['nhi-recover.yaml'])
    expect(env.result?.created).toHaveLength(EXPECTED_FILES.length - 1)
    expect(readFileSync(join(dir, 'nhi-recover.yaml'), 'utf8')).toContain('kind: RepoConfig')
  })

  it('with --force replaces a symlink in place of a file instead of writing through it', async () => {
    // Given nhi-recover.yaml is a symlink to a file outside the directory
    const dir = tempDir()
    const outside = join(tempDir(), 'victim.txt')
    writeFileSync(outside, 'untouched\n')
    symlinkSync(outside, join(dir, 'nhi-recover.yaml'))
    // When init --force runs
    const run = await runCli(['init', '--force'], { cwd: dir })
    // Then the link is replaced by a regular file and its target is untouched
    expect(run.exitCode, run.stderr).toBe(0)
    expect(readFileSync(outside, 'utf8')).toBe('untouched\n')
    expect(statSync(join(dir, 'nhi-recover.yaml')).isFile()).toBe(true)
    expect(readFileSync(join(dir, 'nhi-recover.yaml'), 'utf8')).toContain('kind: RepoConfig')
  })

  it('refuses, even with --force, when a directory it needs is a file or a symlink', async () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'audit'), 'a file\n')
    symlinkSync(tempDir(), join(dir, '.github'))
    const before = tree(dir)
    const run = await runCli(['init', '--force'], { cwd: dir })
    expect(run.exitCode).toBe(2)
    expect(run.stderr).toContain('audit exists but is not a directory')
    expect(run.stderr).toContain('.github exists but is not a directory')
    expect(tree(dir)).toEqual(before)
  })

  it('warns when DIR lies inside another git repo, where the config would not be found', async () => {
    const parent = tempDir()
    execFileSync('git', ['init', '-q', parent])
    const run = await runCli(['init', 'sub'], { cwd: parent })
    expect(run.exitCode, run.stderr).toBe(0)
    expect(run.stdout).toContain('  git init sub')
    expect(run.stdout).toContain(`(sub lies inside the git repo at ${parent};`)
  })

  it('refuses a DIR that is an existing regular file', async () => {
    const parent = tempDir()
    writeFileSync(join(parent, 'plain.txt'), 'x\n')
    const run = await runCli(['init', 'plain.txt', '--json'], { cwd: parent })
    expect(run.exitCode).toBe(2)
    expect(envelope(run).error?.code).toBe('DIR_IS_FILE')
    expect(readFileSync(join(parent, 'plain.txt'), 'utf8')).toBe('x\n')
  })

  it('refuses a --security-team that is not a GitHub owner', async () => {
    const dir = tempDir()
    const run = await runCli(['init', '--security-team', 'security; rm -rf /'], { cwd: dir })
    expect(run.exitCode).toBe(2)
    expect(run.stderr).toContain('--security-team must be a GitHub owner')
    expect(readdirSync(dir)).toEqual([])
  })

  it('writes the same JSON Schemas as the ones committed under recovery-specs/schema/', async () => {
    const dir = tempDir()
    expect((await runCli(['init'], { cwd: dir })).exitCode).toBe(0)
    for (const [path, content] of Object.entries(schemaFiles())) {
      if (path.startsWith('recovery-specs/schema/'))
        expect(readFileSync(join(dir, path), 'utf8')).toBe(content)
    }
  })
})

describe('the workflows init writes', () => {
  type Job = {
    permissions?: Record<string, string>
    steps: Array<{ run?: string; env?: Record<string, string> }>
  }
  type Workflow = { on: Record<string, unknown>; permissions: unknown; jobs: Record<string, Job> }
  let pr: Workflow
  let exec: Workflow

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nhi-init-'))
    try {
      expect((await runCli(['init'], { cwd: dir })).exitCode).toBe(0)
      pr = parse(readFileSync(join(dir, '.github/workflows/nhi-recover-pr.yml'), 'utf8'))
      exec = parse(readFileSync(join(dir, '.github/workflows/nhi-recover-execute.yml'), 'utf8'))
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  const runs = (w: Workflow) =>
    Object.values(w.jobs)
      .flatMap((j) => j.steps.map((s) => s.run ?? ''))
      .filter(Boolean)

  it('run validate, plan --pr and approvals check --pr on pull requests and reviews', () => {
    expect(Object.keys(pr.on).sort()).toEqual(['pull_request', 'pull_request_review'])
    const cmds = runs(pr)
    expect(cmds.some((r) => / validate$/.test(r))).toBe(true)
    expect(cmds.some((r) => / plan --pr "\$PR"$/.test(r))).toBe(true)
    expect(cmds.some((r) => / approvals check --pr "\$PR"$/.test(r))).toBe(true)
    // The PR number reaches the shell through env, never by expression interpolation into the script
    expect(cmds.every((r) => !r.includes('${{'))).toBe(true)
    // The approval gate is its own job, so it can be a required status check, and it depends on
    // no other job: a job skipped because a dependency failed would count as passed
    const gate = pr.jobs['nhi-recover-approvals'] as Job & { needs?: unknown }
    expect(gate.steps.some((s) => s.run?.includes('approvals check'))).toBe(true)
    expect(gate.needs).toBeUndefined()
  })

  it('run execute on pushes, only on the default branch', () => {
    expect(runs(exec).some((r) => / execute$/.test(r))).toBe(true)
    expect(Object.keys(exec.on)).toContain('push')
    expect((exec.jobs.execute as unknown as { if: string }).if).toBe(
      "github.ref == format('refs/heads/{0}', github.event.repository.default_branch)",
    )
  })

  it('grant nothing by default and each job only what it needs; OIDC only to execute', () => {
    expect(pr.permissions).toEqual({})
    expect(exec.permissions).toEqual({})
    expect(pr.jobs.validate?.permissions).toEqual({ contents: 'read' })
    expect(pr.jobs.plan?.permissions).toEqual({
      contents: 'read',
      'pull-requests': 'write',
      statuses: 'write',
    })
    expect(pr.jobs['nhi-recover-approvals']?.permissions).toEqual({
      contents: 'read',
      'pull-requests': 'read',
    })
    expect(exec.jobs.execute?.permissions).toEqual({
      contents: 'write',
      'pull-requests': 'read',
      'id-token': 'write',
    })
    const withOidc = [...Object.entries(pr.jobs), ...Object.entries(exec.jobs)]
      .filter(([, j]) => j.permissions?.['id-token'] !== undefined)
      .map(([name]) => name)
    expect(withOidc).toEqual(['execute'])
  })
})

describe('nhi-recover init and git', () => {
  it('keeps the local store and key files out of git', async () => {
    // Given an init'd repo whose local store and a key file exist on disk
    const dir = tempDir()
    expect((await runCli(['init'], { cwd: dir })).exitCode).toBe(0)
    execFileSync('git', ['init', '-q'], { cwd: dir })
    mkdirSync(join(dir, '.nhi-recover/local-store/secrets'), { recursive: true })
    writeFileSync(join(dir, '.nhi-recover/local-store/secrets/x.json'), '{}')
    writeFileSync(join(dir, '.nhi-recover/store.key'), 'k')
    // When everything is staged
    execFileSync('git', ['add', '-A'], { cwd: dir })
    // Then neither the store nor the key is staged, but allowed_signers is
    const staged = execFileSync('git', ['diff', '--cached', '--name-only'], { cwd: dir, encoding: 'utf8' })
    expect(staged).toContain('.nhi-recover/allowed_signers')
    expect(staged).not.toContain('local-store')
    expect(staged).not.toContain('store.key')
  })
})
