/**
 * Real git repos for tests: a bare "remote" and clones of it, each clone with its own freshly
 * generated ed25519 key and git configured for SSH commit signing (gpg.format=ssh,
 * user.signingkey, gpg.ssh.allowedSignersFile). Everything lives under one temp dir.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { generateKey, type TestKey } from './ssh.js'

export const ALLOWED_SIGNERS = '.nhi-recover/allowed_signers'

export interface Clone {
  name: string
  dir: string
  /** The key git signs commits with in this clone. */
  key: TestKey
  /** Runs git in the clone and returns trimmed stdout; throws on a non-zero exit. */
  git(...args: string[]): string
  /** Like git() but returns the exit status and stderr instead of throwing. */
  tryGit(...args: string[]): { status: number; stdout: string; stderr: string }
  write(rel: string, content: string | Buffer): string
  read(rel: string): string
  /** Stages everything and makes a commit, signed unless `sign` is false. */
  commitAll(message: string, opts?: { sign?: boolean }): string
  head(): string
}

export interface GitFixture {
  root: string
  /** Path of the bare remote. */
  remote: string
  branch: string
  keysDir: string
  /** Clones the remote into a new working copy with its own signing key. */
  clone(name: string, opts?: { principal?: string; key?: TestKey }): Clone
  /** A new key under the fixture's keys dir. */
  key(principal: string): TestKey
  cleanup(): void
}

function run(cwd: string, args: string[], input?: string): string {
  return execFileSync('git', args, {
    cwd,
    input: input ?? '',
    encoding: 'utf8',
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' },
  }).trim()
}

/** A bare remote with one initial commit on `branch`, made by a seed clone. */
export function createGitFixture(
  opts: { branch?: string; seedFiles?: Record<string, string> } = {},
): GitFixture {
  const root = mkdtempSync(join(tmpdir(), 'nhi-git-'))
  const branch = opts.branch ?? 'main'
  const remote = join(root, 'remote.git')
  const keysDir = join(root, 'keys')
  mkdirSync(keysDir)
  run(root, ['init', '-q', '--bare', '-b', branch, remote])

  const fixture: GitFixture = {
    root,
    remote,
    branch,
    keysDir,
    key: (principal) => generateKey(keysDir, principal),
    clone(name, copts = {}) {
      const dir = join(root, name)
      run(root, ['clone', '-q', remote, dir])
      const key = copts.key ?? generateKey(keysDir, copts.principal ?? name)
      const cfg = (k: string, v: string) => run(dir, ['config', k, v])
      cfg('user.name', key.principal)
      cfg('user.email', `${key.principal}@example.test`)
      cfg('gpg.format', 'ssh')
      cfg('user.signingkey', key.privatePath)
      cfg('gpg.ssh.allowedSignersFile', join(dir, ALLOWED_SIGNERS))
      cfg('commit.gpgsign', 'true')
      // An unborn clone starts on the fixture's branch.
      run(dir, ['symbolic-ref', 'HEAD', `refs/heads/${branch}`])
      const clone: Clone = {
        name,
        dir,
        key,
        git: (...args) => run(dir, args),
        tryGit: (...args) => {
          try {
            return { status: 0, stdout: run(dir, args), stderr: '' }
          } catch (err) {
            const e = err as { status?: number; stdout?: string; stderr?: string }
            return { status: e.status ?? -1, stdout: String(e.stdout ?? ''), stderr: String(e.stderr ?? '') }
          }
        },
        write(rel, content) {
          const abs = join(dir, rel)
          mkdirSync(dirname(abs), { recursive: true })
          writeFileSync(abs, content)
          return abs
        },
        read: (rel) => readFileSync(join(dir, rel), 'utf8'),
        commitAll(message, o = {}) {
          run(dir, ['add', '-A'])
          run(dir, ['commit', '-q', o.sign === false ? '--no-gpg-sign' : '-S', '-F', '-'], message)
          return run(dir, ['rev-parse', 'HEAD'])
        },
        head: () => run(dir, ['rev-parse', 'HEAD']),
      }
      return clone
    },
    cleanup: () => rmSync(root, { recursive: true, force: true }),
  }

  const seed = fixture.clone('seed', { principal: 'seed' })
  seed.write('README.md', '# recovery repo\n')
  for (const [rel, content] of Object.entries(opts.seedFiles ?? {})) seed.write(rel, content)
  seed.commitAll('initial commit', { sign: false })
  seed.git('push', '-q', 'origin', `HEAD:refs/heads/${branch}`)
  return fixture
}
