// Issue 5 target: 1,000 local-provider rotations in one `nhi-recover execute`, with one audit
// commit: ≤ 5 s; and how that time splits between the engine's own work and provider calls.
//
// The fixture is a real recovery repo like the demo's (bare remote, clone, the demo's config
// and low tier: two SSH-signed approvals per request), built once: 1,000 secrets seeded in the
// local store, 1,000 specs in one commit, their 2,000 approval statements signed in-process
// with the same statement bytes and SSHSIG code as `nhi-recover approve`, in one commit, then
// merged. Each timed run executes a fresh copy of it with the built CLI.
// Run alone with `node bench/engine.mjs [--quick]` (after `npm run build`) to print the numbers as JSON.
import { execFileSync } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { tsImport } from 'tsx/esm/api'
import { BIN, ROOT, fmtMs, timeRun, verdict } from './lib.mjs'

const COUNT = 1000
const REVIEWERS = ['bob', 'carol']
const REQUESTER = 'alice'
const EXECUTOR = 'nhi-recover-executor'

const load = (path) => tsImport(path, import.meta.url)

function git(cwd, args, who) {
  const env = who
    ? {
        ...process.env,
        GIT_AUTHOR_NAME: who,
        GIT_AUTHOR_EMAIL: `${who}@bench.invalid`,
        GIT_COMMITTER_NAME: who,
        GIT_COMMITTER_EMAIL: `${who}@bench.invalid`,
      }
    : process.env
  return execFileSync('git', args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).trim()
}

/**
 * Builds the recovery repo with `count` approved, merged, not yet executed requests. By default
 * they rotate secrets of the local store; `scenario` points them at another provider instead:
 * its nhi-recover.yaml entries, the request answers (path bench/key-0000, renumbered per
 * request) and a seed(path) that creates each credential before the requests.
 */
export async function buildFixture(dir, { count = COUNT, scenario } = {}) {
  const [
    { initRepo },
    { createNewSpec },
    keys,
    sshsig,
    st,
    { LocalSecretStore },
    { generateSecret },
    { demoConfig },
  ] = await Promise.all([
    load('../src/init/scaffold.ts'),
    load('../src/new/new-spec.ts'),
    load('../src/crypto/ssh-keys.ts'),
    load('../src/crypto/sshsig.ts'),
    load('../src/approvals/statement.ts'),
    load('../providers/secret-stores/local.ts'),
    load('../src/engine/generate.ts'),
    load('../src/demo/demo.ts'),
  ])
  const keyDir = join(dir, 'keys')
  const remote = join(dir, 'remote.git')
  const repo = join(dir, 'repo')
  mkdirSync(keyDir, { mode: 0o700 })
  for (const who of [...REVIEWERS, EXECUTOR])
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', who, '-f', join(keyDir, who)])
  const storeKeyFile = join(keyDir, 'local-store.key')
  const storeKey = randomBytes(32)
  writeFileSync(storeKeyFile, storeKey.toString('base64') + '\n', { mode: 0o600 })
  const pub = (who) =>
    readFileSync(join(keyDir, `${who}.pub`), 'utf8')
      .trim()
      .split(' ')
      .slice(0, 2)
      .join(' ')

  git(dir, ['init', '-q', '--bare', '-b', 'main', remote])
  execFileSync('git', ['clone', '-q', remote, repo], { cwd: dir, stdio: 'ignore' })
  initRepo({ dir: repo, force: true, version: '0.0.0-bench', securityTeam: '@bench/security' })
  writeFileSync(
    join(repo, 'nhi-recover.yaml'),
    demoConfig(
      storeKeyFile,
      join(keyDir, EXECUTOR),
      scenario?.providersYaml ?? '',
      'NHI_RECOVER_BENCH_LOCAL_KEY',
    ),
  )
  writeFileSync(
    join(repo, '.nhi-recover', 'allowed_signers'),
    [
      ...REVIEWERS.map((r) => `${r} namespaces="nhi-recover-approval" ${pub(r)}`),
      `${EXECUTOR} namespaces="nhi-recover-audit,git" ${pub(EXECUTOR)}`,
      '',
    ].join('\n'),
  )
  for (const [k, v] of [
    ['user.name', EXECUTOR],
    ['user.email', `${EXECUTOR}@bench.invalid`],
    ['gpg.format', 'ssh'],
    ['user.signingkey', join(keyDir, EXECUTOR)],
    ['gpg.ssh.allowedSignersFile', join(repo, '.nhi-recover', 'allowed_signers')],
  ])
    git(repo, ['config', k, v])
  git(repo, ['add', '-A'])
  git(repo, ['commit', '-q', '--no-gpg-sign', '-m', 'Set up the recovery repo'], REQUESTER)
  git(repo, ['push', '-q', 'origin', 'main'])

  // The credentials that exist before the requests, through the store's own seeding call.
  const store = new LocalSecretStore({
    name: 'local',
    dir: join(repo, '.nhi-recover', 'local-store'),
    key: storeKey,
  })
  const n = (i) => String(i).padStart(4, '0')
  if (scenario) await scenario.seed(Array.from({ length: count }, (_, i) => `bench/key-${n(i)}`))
  else
    for (let i = 0; i < count; i++) await store.put(`bench/key-${n(i)}`, generateSecret(40, 'alphanumeric'))

  // One spec through `nhi-recover new`'s service; the others differ only in id, identity and path.
  git(repo, ['checkout', '-q', '-b', 'recover/bench'])
  const first = await createNewSpec({
    cwd: repo,
    answers: {
      id: 'rr-bench-0000',
      identity: 'bench-key-0000',
      type: 'api-key',
      owner: 'platform',
      risk: 'low',
      provider: 'local',
      mechanism: 'local',
      path: 'bench/key-0000',
      action: 'rotate',
      reason: 'Benchmark of 1,000 rotations in one execute.',
      ticket: 'BENCH-1',
      requester: REQUESTER,
      requesterKind: 'human',
      retainPrevious: '0s',
      ...scenario?.answers,
    },
    now: new Date(),
    packageRoot: ROOT,
    gitIdentity: () => ({ name: REQUESTER }),
  })
  const template = readFileSync(join(repo, first.file), 'utf8')
  const specs = []
  for (let i = 0; i < count; i++) {
    const rel = first.file.replace('rr-bench-0000', `rr-bench-${n(i)}`)
    const text = template
      .replaceAll('rr-bench-0000', `rr-bench-${n(i)}`)
      .replaceAll('bench-key-0000', `bench-key-${n(i)}`)
      .replaceAll('bench/key-0000', `bench/key-${n(i)}`)
    writeFileSync(join(repo, rel), text)
    specs.push({ rel, id: `rr-bench-${n(i)}`, text })
  }
  git(repo, ['add', '--', 'recovery-specs'])
  git(repo, ['commit', '-q', '--no-gpg-sign', '-m', `Request recovery of ${count} bench keys`], REQUESTER)

  // What `nhi-recover approve` does per spec and reviewer, in bulk, and one commit for all.
  const now = new Date().toISOString()
  for (const reviewer of REVIEWERS) {
    const key = keys.parsePrivateKey(readFileSync(join(keyDir, reviewer), 'utf8'), reviewer)
    for (const s of specs) {
      const statement = {
        type: st.STATEMENT_TYPE,
        requestId: s.id,
        specPath: s.rel,
        specSha256: createHash('sha256').update(s.text).digest('hex'),
        approver: reviewer,
        time: now,
      }
      const signature = sshsig.sign(st.statementBytes(statement), key, sshsig.APPROVAL_NAMESPACE)
      const file = join(repo, st.statementPath(s.rel, reviewer))
      mkdirSync(dirname(file), { recursive: true })
      writeFileSync(file, st.formatStatementFile(statement, signature))
    }
  }
  git(repo, ['add', '--', 'recovery-specs'])
  git(repo, ['commit', '-q', '--no-gpg-sign', '-m', `Approve ${count} bench requests`], REVIEWERS[0])

  git(repo, ['checkout', '-q', 'main'])
  git(
    repo,
    ['merge', '-q', '--no-ff', '--no-gpg-sign', '-m', 'Merge the bench requests', 'recover/bench'],
    REQUESTER,
  )
  git(repo, ['push', '-q', 'origin', 'main'])
  return { repo, remote }
}

/** A fresh copy of the fixture (its own remote, so no run sees another's locks or ledger). */
export function copyFixture(fixture, root, name) {
  const dir = join(root, name)
  mkdirSync(dir)
  cpSync(fixture.remote, join(dir, 'remote.git'), { recursive: true })
  cpSync(fixture.repo, join(dir, 'repo'), { recursive: true })
  const repo = join(dir, 'repo')
  git(repo, ['remote', 'set-url', 'origin', join(dir, 'remote.git')])
  return repo
}

/**
 * One `execute --json` (of every request, or of `only`); checks that each succeeded, in one
 * audit commit. `env` adds to the environment (a provider's token).
 */
export function execute(repo, concurrency, only, { count = COUNT, env: extraEnv = {} } = {}) {
  const expected = only?.length ?? count
  const before = git(repo, ['rev-parse', 'HEAD'])
  const args = [
    'execute',
    '--json',
    '--concurrency',
    String(concurrency),
    ...(only ?? []).flatMap((id) => ['--only', id]),
  ]
  const r = timeRun('node', [BIN, ...args], {
    cwd: repo,
    env: {
      CI: 'true',
      GITHUB_ACTIONS: undefined,
      GITHUB_ACTOR: undefined,
      NHI_RECOVER_TEST_MODE: undefined,
      ...extraEnv,
    },
    rss: true,
  })
  let env
  try {
    env = JSON.parse(r.stdout)
  } catch {
    throw new Error(
      `execute printed no JSON envelope (exit ${r.status}):\n${r.stderr.slice(-2000)}\n${r.stdout.slice(0, 2000)}`,
    )
  }
  const res = env.result ?? env.error?.details
  const succeeded = res?.requests?.filter((q) => q.outcome === 'succeeded').length ?? 0
  const commits = git(repo, ['rev-list', `${before}..HEAD`])
    .split('\n')
    .filter(Boolean)
  if (r.status !== 0 || succeeded !== expected || commits.length !== 1 || commits[0] !== res.audit?.commit) {
    const other = (res?.requests ?? []).find((q) => q.outcome !== 'succeeded')
    throw new Error(
      `execute --concurrency ${concurrency}: exit ${r.status}, ${succeeded}/${expected} succeeded, ` +
        `${commits.length} new commit(s) (audit ${res?.audit?.commit ?? 'none'}); first other: ${JSON.stringify(other ?? env.error)}\n${r.stderr.slice(-1000)}`,
    )
  }
  return { requests: expected, wallMs: r.ms, rssMb: r.rssMb, timing: res.timing, entries: res.audit.entries }
}

/**
 * Builds the fixture once and times `execute` over fresh copies of it: every request at
 * concurrency 8 (the default), and at concurrency 1, every request (full) or the first 200 (quick).
 */
export async function runEngineBench({ quick = false } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'nhi-bench-engine-'))
  try {
    const t0 = performance.now()
    mkdirSync(join(root, 'fixture'))
    const fixture = await buildFixture(join(root, 'fixture'))
    const fixtureSeconds = (performance.now() - t0) / 1000
    const sample = quick
      ? Array.from({ length: 200 }, (_, i) => `rr-bench-${String(i).padStart(4, '0')}`)
      : undefined
    const runs = { c8: [], c1: [] }
    for (const [i, c] of (quick ? ['c8', 'c1'] : ['c8', 'c1', 'c8']).entries()) {
      const repo = copyFixture(fixture, root, `run-${i}`)
      runs[c].push(c === 'c8' ? execute(repo, 8) : execute(repo, 1, sample))
      rmSync(dirname(repo), { recursive: true, force: true })
    }
    return { count: COUNT, fixtureSeconds, runs }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

const parts = (t) =>
  `provider calls ${fmtMs(t.providerMs)}, approval gate ${fmtMs(t.gateMs)}, audit ledger ${fmtMs(t.ledgerMs)}, locks ${fmtMs(t.locksMs)}`
const share = (ms, t) => `${((100 * ms) / t.totalMs).toFixed(0)} %`

/** The section bench/run.mjs writes into docs/benchmarks.md. */
export async function run({ quick = false } = {}) {
  const m = await runEngineBench({ quick })
  const n = m.count.toLocaleString('en')
  const byWall = (a, b) => a.wallMs - b.wallMs
  const c8 = [...m.runs.c8].sort(byWall)[m.runs.c8.length >> 1] // the median (of 1 or 2: the faster)
  const c1 = m.runs.c1[0]
  const t1 = c1.timing
  const rest = t1.totalMs - t1.providerMs - t1.gateMs - t1.ledgerMs - t1.locksMs
  const per = (ms) => `${(ms / c1.requests).toFixed(1)} ms`
  return {
    title: 'Execution engine: local provider (issue 5)',
    rows: [
      [
        `\`execute --json\`, ${n} local-provider rotations, one audit commit (built CLI, whole process, concurrency 8)`,
        fmtMs(c8.wallMs),
        '≤ 5 s',
        verdict(c8.wallMs <= 5000),
      ],
      [
        'inside that run: engine total; time in each kind of call, summed over up to 8 at once',
        `${fmtMs(c8.timing.totalMs)}; ${parts(c8.timing)}`,
        'recorded',
        '',
      ],
      [
        `\`--concurrency 1\`, ${c1.requests.toLocaleString('en')} of the ${n} requests: engine total and its split`,
        `${fmtMs(t1.totalMs)}: ${parts(t1)}, the engine's own work ${fmtMs(rest)}`,
        'recorded',
        '',
      ],
      [
        'the same per request, and as a share of the total',
        `gate ${per(t1.gateMs)} (${share(t1.gateMs, t1)}), provider ${per(t1.providerMs)} (${share(t1.providerMs, t1)}), ledger ${per(t1.ledgerMs)} (${share(t1.ledgerMs, t1)}), locks ${per(t1.locksMs)} (${share(t1.locksMs, t1)}), engine's own work ${per(rest)} (${share(rest, t1)})`,
        'recorded',
        '',
      ],
      [`peak RSS of the concurrency-8 run`, `${c8.rssMb?.toFixed(0) ?? '?'} MB`, 'recorded', ''],
    ],
    notes: [
      `Each run executes a fresh copy of one fixture: a recovery repo with a bare remote, the demo's config and low tier (two SSH-signed approvals per request, checked again by execute's gate), ${n} secrets in the local store and ${n} merged requests with retainPrevious 0s, so each rotation is prepare, verify, promote and retire, and the one audit commit holds two entries per request (${c8.entries.toLocaleString('en')} here). Building the fixture took ${m.fixtureSeconds.toFixed(0)} s.`,
      `The split is the run's own \`timing\` from its --json result: wall time inside provider calls (through the retry and timeout policy), the approval gate, the audit ledger (reads and the signed append) and the git-ref locks. At concurrency 1 these add up with "the engine's own work" (loading and checking the specs at the commit, planning, events) to the engine total; the whole-process time also holds Node and CLI startup (${fmtMs(c8.wallMs - c8.timing.totalMs)} in the concurrency-8 run). ` +
        `Concurrency-8 wall times: ${m.runs.c8.map((r) => fmtMs(r.wallMs)).join(', ')}${m.runs.c8.length > 1 ? ' (the faster is shown)' : ''}.` +
        (quick
          ? ` Quick mode runs concurrency 1 on the first 200 requests only (\`--only\`), of the same ${n}-request repo.`
          : ''),
    ],
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await runEngineBench({ quick: process.argv.includes('--quick') }), null, 2))
}
