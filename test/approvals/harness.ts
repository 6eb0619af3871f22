/**
 * A recovery repo on real git (bare remote, clones, SSH keys) wired to the local GitHub
 * server: open pull requests from real branches, review them at real commits, sign
 * approvals with real keys, and run the gate from a fresh CI clone.
 */
import { execFileSync } from 'node:child_process'
import { createGitFixture, type Clone, type GitFixture } from '../harness/git.js'
import type { TestKey } from '../harness/ssh.js'
import type { GitHubServer } from '../github-server/server.js'
import type { Commit, ReviewState } from '../github-server/state.js'
import { checkApprovals, type GateOptions, type GateResult } from '../../src/approvals/gate.js'
import { approve } from '../../src/approvals/approve.js'
import { githubForgeFactory } from '../../providers/forge/github.js'

export const TOKEN = 'ghs_CANARY_approvals_token_5d41402abc4b2a76'
export const OWNER = 'acme'
export const REPO = 'recovery'
export const SIGNERS = '.nhi-recover/allowed_signers'

/** Repo config for the tests: every tier a case needs, GitHub at the local server. */
export function testConfig(baseUrl: string, tiers?: string): string {
  return `apiVersion: nhi-recover/v1
kind: RepoConfig
providers:
  local:
    kind: local
approvals:
  github:
    baseUrl: ${baseUrl}
  ssh:
    allowedSigners: ${SIGNERS}
policy:
  tiers:
${
  tiers ??
  `    low:
      approvals: 1
      maxAge: 7d
    medium:
      approvals: 1
      teams: [{ team: platform, min: 1 }]
    high:
      approvals: 2
      teams: [{ team: platform, min: 1 }, { team: security, min: 1 }]
      maxAge: 24h
    critical:
      approvals: 2
      teams: [{ team: security, min: 1 }]
      backends: [github, ssh]
      maxAge: 24h`
}
agents: [nhi-recover-agent]
audit:
  signer: { kind: ssh, keyEnv: NHI_RECOVER_AUDIT_KEY, principal: nhi-recover-executor }
`
}

export function specYaml(o: {
  id: string
  risk?: string
  requester?: string
  reason?: string
  expires?: string
  created?: string
}) {
  const created = o.created ?? new Date(Date.now() - 3600_000).toISOString().replace(/\.\d+Z$/, 'Z')
  const expires = o.expires ?? new Date(Date.now() + 5 * 86400_000).toISOString().replace(/\.\d+Z$/, 'Z')
  return `apiVersion: nhi-recover/v1
kind: RecoveryRequest
id: ${o.id}
requester:
  name: ${o.requester ?? 'alice'}
  kind: human
reason: ${o.reason ?? 'The API key leaked in a build log.'}
ticket: SEC-1
created: ${created}
expires: ${expires}
identity:
  name: payments-key
  type: api-key
  owner: team-payments
  risk: ${o.risk ?? 'low'}
target:
  provider: local
  mechanism: local
  path: payments/${o.id}
action: rotate
`
}

export interface RecoveryRepo {
  fixture: GitFixture
  admin: Clone
  keys: Record<string, TestKey>
  /** A clone for a person, created on first use, with git identity <name>@example.test. */
  person(name: string): Clone
  /** Pushes `clone`'s HEAD as the branch and PR head, and (re)records the PR on the server. */
  openPr(n: number, clone: Clone, opts?: { branch?: string; author?: string }): string
  review(n: number, login: string, state: ReviewState, commitId: string, submittedAt?: Date): number
  /** Signs an approval of `path` in `clone` as the key's principal and pushes it. */
  sign(n: number, clone: Clone, path: string, key: TestKey): Promise<void>
  /** Runs the gate from a fresh clone, as CI does. */
  check(n: number, extra?: Partial<GateOptions>): Promise<GateResult>
  checkCommit(commit: string, extra?: Partial<GateOptions>): Promise<GateResult>
  cleanup(): void
}

/** Reads the commits base..head of a clone the way GitHub lists a PR's commits. */
export function gitCommits(dir: string, range: string): Commit[] {
  const out = execFileSync(
    'git',
    ['log', '--reverse', '-z', '--format=%H%x1f%P%x1f%an%x1f%ae%x1f%aI%x1f%cn%x1f%ce%x1f%cI%x1f%B', range],
    {
      cwd: dir,
      encoding: 'utf8',
    },
  )
  return out
    .split('\0')
    .filter((s) => s.trim())
    .map((rec) => {
      const [sha, parents, an, ae, ad, cn, ce, cd, msg] = rec.replace(/^\n/, '').split('\x1f')
      const iso = (d: string) => new Date(d).toISOString().replace(/\.\d+Z$/, 'Z')
      return {
        sha: sha!,
        parents: parents!.split(' ').filter(Boolean),
        message: msg!.trim(),
        author: { name: an!, email: ae!, date: iso(ad!) },
        committer: { name: cn!, email: ce!, date: iso(cd!) },
      }
    })
}

let clock = 0

/** A fresh repo whose main holds the config and allowed_signers for `signers`. */
export function recoveryRepo(
  gh: GitHubServer,
  opts: { signers?: string[]; config?: string; gateEnv?: Record<string, string> } = {},
): RecoveryRepo {
  const fixture = createGitFixture()
  const keys: Record<string, TestKey> = {}
  for (const p of ['bob', 'carol', 'dave', 'mallory']) keys[p] = fixture.key(p)
  const admin = fixture.clone('admin')
  admin.git('pull', '-q', 'origin', 'main')
  admin.write('nhi-recover.yaml', opts.config ?? testConfig(gh.url))
  admin.write(
    SIGNERS,
    (opts.signers ?? ['bob', 'carol', 'dave'])
      .map((p) => `${p} namespaces="nhi-recover-approval" ${keys[p]!.publicLine}`)
      .join('\n') + '\n',
  )
  admin.commitAll('policy')
  admin.git('push', '-q', 'origin', 'HEAD:main')
  const people = new Map<string, Clone>()
  const person = (name: string) => {
    let c = people.get(name)
    if (!c) {
      c = fixture.clone(name, keys[name] ? { key: keys[name] } : {})
      c.git('pull', '-q', 'origin', 'main')
      people.set(name, c)
    }
    return c
  }
  const env = { GITHUB_TOKEN: TOKEN, ...opts.gateEnv }
  const factory = githubForgeFactory(
    {
      owner: OWNER,
      repo: REPO,
      pr: undefined,
      commit: undefined,
      base: undefined,
      apiUrl: undefined,
      tuning: { retries: 1, retryBaseMs: 5, timeoutMs: 2000 },
    },
    env,
  )
  const tuned = (extra?: Partial<GateOptions>) =>
    extra && 'forgeFactory' in extra ? extra.forgeFactory : factory
  let ciCount = 0
  return {
    fixture,
    admin,
    keys,
    person,
    openPr(n, clone, o = {}) {
      const branch = o.branch ?? clone.git('rev-parse', '--abbrev-ref', 'HEAD')
      clone.git('push', '-q', '-f', 'origin', `HEAD:refs/heads/${branch}`, `HEAD:refs/pull/${n}/head`)
      clone.git('fetch', '-q', 'origin', 'main')
      const base = clone.git('rev-parse', 'origin/main')
      const fork = clone.git('merge-base', 'origin/main', 'HEAD')
      const head = clone.head()
      const commits = gitCommits(clone.dir, `${fork}..${head}`)
      const existing = gh.state.pulls.get(n)
      if (existing) {
        existing.head = { ref: branch, sha: head }
        existing.commits = commits
        existing.base = { ref: 'main', sha: base }
      } else {
        gh.state.addPull({
          number: n,
          author: o.author ?? clone.name,
          base: { ref: 'main', sha: base },
          head: { ref: branch, sha: head },
          commits,
        })
      }
      return head
    },
    review(n, login, state, commitId, submittedAt) {
      // Reviews get strictly increasing times so "latest" is unambiguous.
      const at = submittedAt ?? new Date(Date.now() - 600_000 + clock++ * 1000)
      return gh.state.addReview(n, { login, state, commitId, submittedAt: at }).id
    },
    async sign(n, clone, path, key) {
      await approve({
        cwd: clone.dir,
        path,
        keyFile: key.privatePath,
        principal: key.principal,
        now: new Date(),
      })
      this.openPr(n, clone)
    },
    async check(n, extra) {
      const ci = fixture.clone(`ci-${++ciCount}`, { key: admin.key })
      return checkApprovals({ cwd: ci.dir, pr: n, now: new Date(), ...extra, forgeFactory: tuned(extra) })
    },
    async checkCommit(commit, extra) {
      const ci = fixture.clone(`ci-${++ciCount}`, { key: admin.key })
      return checkApprovals({ cwd: ci.dir, commit, now: new Date(), ...extra, forgeFactory: tuned(extra) })
    },
    cleanup: () => fixture.cleanup(),
  }
}

/** Everyone the tests use, with commit emails that link to their accounts. */
export function seedGitHub(gh: GitHubServer): void {
  const s = gh.state
  for (const login of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'admin']) {
    s.addUser(login, { email: `${login}@example.test`, name: login, member: true })
  }
  s.addUser('mallory', { email: 'mallory@example.test', member: false })
  s.addUser('renovate[bot]', { type: 'Bot' })
  s.addUser('nhi-recover-agent', { email: 'nhi-recover-agent@example.test', member: true })
  s.addTeam('platform', { bob: 'active', carol: 'active', erin: 'active', frank: 'active', dave: 'active' })
  s.addTeam('security', { carol: 'active', dave: 'active', frank: 'pending' })
}
