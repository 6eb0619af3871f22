// Issue 4 targets, measured against the local GitHub server with the built CLI:
//   - `approvals check` on one PR makes at most 1 + ⌈reviews/100⌉ + ⌈commits/100⌉ requests,
//     plus one team lookup per distinct eligible approver (cached);
//   - the policy engine judges 10,000 requests in ≤ 1 s.
// Run alone with `node bench/approvals.mjs` (after `npm run build`) to print the numbers as JSON.
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

// The GitHub server runs in this process, so the CLI must run without blocking the event loop.
const runAsync = async (args, opts) => {
  try {
    const r = await promisify(execFile)('node', args, { ...opts, maxBuffer: 64 * 1024 * 1024 })
    return { status: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (e) {
    return { status: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}
import { tsImport } from 'tsx/esm/api'
import { BIN, fmtMs, median, verdict } from './lib.mjs'

const REVIEWS = 250
const COMMITS = 120
const APPROVERS = ['admin', 'bob', 'carol', 'dave', 'erin', 'frank']
const CHATTER = ['renovate[bot]', 'mallory', 'nhi-recover-agent', 'alice']

const load = (path) => tsImport(path, import.meta.url)

/** One PR with REVIEWS reviews and COMMITS commits; returns the request counts of one check. */
async function countRequests(scenario) {
  const { startGitHubServer } = await load('../test/github-server/server.ts')
  const h = await load('../test/approvals/harness.ts')
  const gh = await startGitHubServer({ token: h.TOKEN })
  h.seedGitHub(gh)
  const repo = h.recoveryRepo(gh)
  try {
    const alice = repo.person('alice')
    alice.git('checkout', '-q', '-b', 'bench', 'origin/main')
    alice.write(
      'recovery-specs/rr-bench.yaml',
      h.specYaml({ id: 'rr-bench', requester: 'alice', risk: 'high' }),
    )
    alice.commitAll('Request rr-bench', { sign: false })
    for (let i = 1; i < COMMITS; i++) {
      alice.write('recovery-specs/NOTES.md', `note ${i}\n`)
      alice.commitAll(`Note ${i}`, { sign: false })
    }
    const n = 1
    const head = repo.openPr(n, alice)
    const approvers = scenario.approvers
    for (let i = 0; i < REVIEWS - approvers.length; i++)
      repo.review(n, CHATTER[i % CHATTER.length], 'COMMENTED', head)
    for (const a of approvers) repo.review(n, a, 'APPROVED', head)
    const ci = repo.fixture.clone('ci', { key: repo.admin.key })
    gh.resetLog()
    const t0 = performance.now()
    const r = await runAsync([BIN, 'approvals', 'check', '--pr', String(n), '--json'], {
      cwd: ci.dir,
      env: {
        ...process.env,
        GITHUB_TOKEN: h.TOKEN,
        GITHUB_REPOSITORY: 'acme/recovery',
        GITHUB_ACTIONS: '',
        GITHUB_EVENT_PATH: '',
        GITHUB_API_URL: '',
      },
    })
    const ms = performance.now() - t0
    if (r.status !== scenario.exit)
      throw new Error(`approvals check exited ${r.status}:\n${r.stderr}\n${r.stdout.slice(0, 2000)}`)
    if (gh.problems.length) throw new Error(`OpenAPI problems: ${gh.problems.join('\n')}`)
    const by = {}
    for (const q of gh.requests) by[q.operationId] = (by[q.operationId] ?? 0) + 1
    const lookups = by['teams/get-membership-for-user-in-org'] ?? 0
    const total = gh.requests.length
    const budget = 1 + Math.ceil(REVIEWS / 100) + Math.ceil(COMMITS / 100) + approvers.length
    return { total, lookups, budget, by, ms, approvers: approvers.length }
  } finally {
    repo.cleanup()
    await gh.close()
  }
}

/** Median time of judging 10,000 requests, each with reviews, signed approvals and teams. */
async function timePolicy(runs) {
  const { evaluatePolicy } = await load('../src/policy/engine.ts')
  const f = await load('../test/policy/fixtures.ts')
  const risks = ['low', 'medium', 'high', 'critical']
  const inputs = Array.from({ length: 10_000 }, (_, i) =>
    f.input({
      risk: risks[i % 4],
      github: {
        items: [
          f.review('bob'),
          f.review('carol'),
          f.review('erin', { state: i % 7 === 0 ? 'CHANGES_REQUESTED' : 'APPROVED' }),
          f.review('renovate[bot]', { reviewerType: 'Bot' }),
          f.review('frank', { subjectSha256AtCommit: f.OLD_SHA }),
        ],
      },
      ssh: { items: [f.signed('bob'), f.signed('carol'), f.signed('mallory', {}, false)] },
      memberships: f.members({
        platform: { bob: 'active', erin: 'active' },
        security: { carol: 'active', bob: 'none' },
      }),
    }),
  )
  const times = []
  let allowed = 0
  for (let r = 0; r < runs; r++) {
    allowed = 0
    const t0 = performance.now()
    for (const x of inputs) if (evaluatePolicy(x).allowed) allowed++
    times.push(performance.now() - t0)
  }
  return { ms: median(times), allowed, runs }
}

export async function run({ quick = false } = {}) {
  const typical = await countRequests({ approvers: APPROVERS, exit: 0 })
  // Worst case for the lazy lookups: team security is never satisfied, so every approver is checked for it.
  const worst = await countRequests({ approvers: ['admin', 'bob', 'frank'], exit: 1 })
  const policy = await timePolicy(quick ? 3 : 7)
  const rows = [
    [
      `approvals check, 1 PR: ${REVIEWS} reviews, ${COMMITS} commits, ${typical.approvers} eligible approvers, 2 required teams (satisfied)`,
      `${typical.total} requests (1 PR + ${typical.by['pulls/list-reviews']} review pages + ${typical.by['pulls/list-commits']} commit pages + ${typical.lookups} team lookups), ${fmtMs(typical.ms)} wall`,
      `≤ ${typical.budget}`,
      verdict(typical.total <= typical.budget),
    ],
    [
      `approvals check, same PR shape, ${worst.approvers} eligible approvers, team security never satisfied`,
      `${worst.total} requests (${worst.lookups} team lookups)`,
      `≤ ${worst.budget}`,
      verdict(worst.total <= worst.budget),
    ],
    [
      'policy engine: 10,000 requests (5 reviews, 3 signed approvals, 2 teams each)',
      `${fmtMs(policy.ms)} (median of ${policy.runs})`,
      '≤ 1 s',
      verdict(policy.ms <= 1000),
    ],
  ]
  const notes = [
    'Team lookups are per (approver, team) pair and stop as soon as a team has the approvals it needs. With one required team that is at most one lookup per distinct eligible approver; with two teams, when a team cannot be satisfied, each approver is checked for both teams (at most approvers × teams).',
  ]
  return { title: 'Approval gate', rows, notes, raw: { typical, worst, policy } }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await run({ quick: process.argv.includes('--quick') })
  console.log(JSON.stringify(r, null, 2))
}
