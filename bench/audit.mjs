// Issue 3 targets for the audit ledger, measured on real git repos with real SSH signatures:
//   - `audit verify` over 100,000 entries: ≤ 4 s, and ≤ 1.5× a bare loop doing only the same
//     hashing and signature checks (with the same number of threads);
//   - appending 1,000 entries plus one signed commit: ≤ 2 s;
//   - peak RSS of verify over 100,000 entries: ≤ 300 MB.
// Run alone with `node bench/audit.mjs [--quick]` (after `npm run build`) to print the numbers as JSON.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { tsImport } from 'tsx/esm/api'
import { BIN, fmtMs, median, timeRun, verdict } from './lib.mjs'

const load = (path) => tsImport(path, import.meta.url)
const PRINCIPAL = 'nhi-recover-executor'

function sh(cwd, cmd, args, input) {
  return execFileSync(cmd, args, {
    cwd,
    input: input ?? '',
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  }).trim()
}

/** A repo whose clone signs commits with a fresh ed25519 key that also signs audit entries. */
export async function makeRepo(root, name) {
  const dir = join(root, name)
  mkdirSync(dir)
  sh(dir, 'git', ['init', '-q', '-b', 'main'])
  const key = join(root, `${name}-key`)
  sh(root, 'ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', PRINCIPAL, '-f', key])
  const pub = readFileSync(key + '.pub', 'utf8').trim()
  for (const [k, v] of [
    ['user.name', PRINCIPAL],
    ['user.email', 'executor@example.test'],
    ['gpg.format', 'ssh'],
    ['user.signingkey', key],
  ])
    sh(dir, 'git', ['config', k, v])
  const signersText = `${PRINCIPAL} namespaces="nhi-recover-audit,git" ${pub}\n`
  mkdirSync(join(dir, '.nhi-recover'))
  writeFileSync(join(dir, '.nhi-recover', 'allowed_signers'), signersText)
  sh(dir, 'git', ['add', '.'])
  sh(dir, 'git', ['commit', '-q', '-S', '-m', 'trust the executor key'])

  const { sshKeySigner } = await load('../providers/signers/ssh.ts')
  const { Secret } = await load('../src/secret.ts')
  const { parseAllowedSigners } = await load('../src/crypto/allowed-signers.ts')
  const signer = sshKeySigner({
    principal: PRINCIPAL,
    privateKey: new Secret(readFileSync(key, 'utf8')),
    source: key,
  })
  return { dir, signer, signersText, allowedSigners: parseAllowedSigners(signersText) }
}

const sha = (s) => createHash('sha256').update(s).digest('hex')
const oid = (s) => createHash('sha1').update(s).digest('hex')

/** An event shaped like the execution engine's: about 1.5 KB per entry once signed. */
export function event(i) {
  const identity = `service-${i % 97}`
  return {
    request: {
      id: `rr-${identity}-${i}`,
      identity,
      specPath: `recovery-specs/rr-${i}.yaml`,
      specSha256: sha(`s${i}`),
    },
    action: 'rotate',
    provider: i % 2 ? 'bao' : 'local',
    target: `kv-v2:secret/${identity}#value`,
    credential: { versionBefore: String(i), versionAfter: String(i + 1) },
    outcome: { status: 'succeeded', reason: 'rotated, verified and promoted' },
    approvals: [
      {
        approver: 'alice',
        backend: 'github',
        commit: oid(`c${i}`),
        specBlob: oid(`b${i}`),
        at: '2025-06-01T10:00:00.000Z',
      },
      {
        approver: 'bob',
        backend: 'ssh',
        commit: oid(`c${i}`),
        specBlob: oid(`b${i}`),
        at: '2025-06-01T10:05:00.000Z',
      },
    ],
    policy: { tier: 'high', configSha256: sha('config') },
    executor: { runId: `gha-${i}`, actor: PRINCIPAL },
  }
}

/**
 * The bare loop: for each stored entry line (held in memory), only what checking its hash and
 * signature takes: parse it, serialise its body canonically, sha256 and compare, build the
 * SSHSIG signed data, decode the signature and verify it with libsodium. Same thread count.
 */
async function baseline(items, threads) {
  const code = `
    const { parentPort, workerData } = require('node:worker_threads')
    const { createHash } = require('node:crypto')
    const sodium = require(workerData.sodium)
    const str = (b) => { const l = Buffer.alloc(4); l.writeUInt32BE(b.length); return Buffer.concat([l, b]) }
    const head = Buffer.concat([Buffer.from('SSHSIG'), str(Buffer.from('nhi-recover-audit')), str(Buffer.alloc(0)), str(Buffer.from('sha512')), Buffer.from([0, 0, 0, 64])])
    parentPort.once('message', ({ text, pk }) => {
      const key = Buffer.from(pk)
      let ok = 0
      for (const line of text.split('\\n')) {
        if (!line) continue
        const e = JSON.parse(line)
        const body = {}
        for (const k in e) if (k !== 'hash' && k !== 'signature') body[k] = e[k]
        if (createHash('sha256').update(JSON.stringify(body)).digest('hex') !== e.hash) continue
        const blob = Buffer.from(e.signature.value.slice(30, -28).replace(/\\n/g, ''), 'base64')
        const data = Buffer.concat([head, createHash('sha512').update(e.hash).digest()])
        if (sodium.crypto_sign_verify_detached(blob.subarray(blob.length - 64), data, key)) ok++
      }
      parentPort.postMessage(ok)
    })`
  const sodium = createRequire(import.meta.url).resolve('sodium-native')
  const workers = Array.from(
    { length: threads },
    () => new Worker(code, { eval: true, workerData: { sodium } }),
  )
  const per = Math.ceil(items.lines.length / threads)
  const parts = workers.map((_, w) => ({
    text: items.lines.slice(w * per, (w + 1) * per).join('\n'),
    pk: items.pk,
  }))
  await new Promise((r) => setTimeout(r, 300)) // let the threads start before the clock does
  const t0 = performance.now()
  const oks = await Promise.all(
    workers.map(
      (w, i) =>
        new Promise((res) => {
          w.once('message', res)
          w.postMessage(parts[i])
        }),
    ),
  )
  const ms = performance.now() - t0
  await Promise.all(workers.map((w) => w.terminate()))
  const verified = oks.reduce((a, b) => a + b, 0)
  if (verified !== items.lines.length)
    throw new Error(`baseline verified ${verified} of ${items.lines.length}`)
  return ms
}

/** What the baseline needs from the fixture: every stored line, and the public key. */
async function baselineItems(dir, entries) {
  const { parseSignature } = await load('../src/crypto/sshsig.ts')
  const files = sh(dir, 'git', ['ls-files', 'audit/entries']).split('\n').sort()
  const lines = files.flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean))
  if (lines.length !== entries) throw new Error(`fixture holds ${lines.length} entries, expected ${entries}`)
  const pk = parseSignature(JSON.parse(lines[0]).signature.value).publicKey.key
  return { lines, pk }
}

/** Measures everything; returns the numbers. */
export async function runAuditBench({ quick = false } = {}) {
  const { appendEntries } = await load('../src/audit/append.ts')
  const root = mkdtempSync(join(tmpdir(), 'nhi-bench-audit-'))
  const ENTRIES = quick ? 20_000 : 100_000
  const PER_COMMIT = 1000
  const threads = Math.max(1, Math.min(4, availableParallelism()))
  try {
    // Append: 1,000 entries and one signed commit, into a ledger that already has entries.
    const appendTimes = []
    const a = await makeRepo(root, 'append')
    await appendEntries({
      repoRoot: a.dir,
      auditPath: 'audit',
      events: [event(0)],
      signer: a.signer,
      allowedSigners: a.allowedSigners,
    })
    for (let run = 0; run < (quick ? 2 : 3); run++) {
      const events = Array.from({ length: 1000 }, (_, i) => event(run * 1000 + i + 1))
      const t0 = performance.now()
      await appendEntries({
        repoRoot: a.dir,
        auditPath: 'audit',
        events,
        signer: a.signer,
        allowedSigners: a.allowedSigners,
      })
      appendTimes.push(performance.now() - t0)
    }
    const appendMs = median(appendTimes)

    // Verify fixture: ENTRIES entries in signed audit commits of PER_COMMIT each.
    const g0 = performance.now()
    const v = await makeRepo(root, 'verify')
    for (let c = 0; c < ENTRIES / PER_COMMIT; c++) {
      const events = Array.from({ length: PER_COMMIT }, (_, i) => event(c * PER_COMMIT + i))
      await appendEntries({
        repoRoot: v.dir,
        auditPath: 'audit',
        events,
        signer: v.signer,
        allowedSigners: v.allowedSigners,
      })
    }
    sh(v.dir, 'git', ['gc', '-q'])
    const fixtureSeconds = (performance.now() - g0) / 1000

    const items = await baselineItems(v.dir, ENTRIES)
    const verifyRuns = []
    const baseRuns = []
    for (let run = 0; run < (quick ? 1 : 3); run++) {
      baseRuns.push(await baseline(items, threads))
      const r = timeRun('node', [BIN, 'audit', 'verify', '--json', '--no-checkpoint'], {
        cwd: v.dir,
        rss: true,
        expectExit: 0,
      })
      const result = JSON.parse(r.stdout).result
      if (result.entries !== ENTRIES || !result.ok)
        throw new Error(`verify saw ${result.entries} entries, ok=${result.ok}`)
      verifyRuns.push({
        ms: r.ms,
        rssMb: r.rssMb,
        workers: result.verifier.workers,
        backend: result.verifier.backend,
      })
    }
    const verifyMs = median(verifyRuns.map((r) => r.ms))
    const baselineMs = median(baseRuns)
    const rssMb = Math.max(...verifyRuns.map((r) => r.rssMb ?? 0))
    const scale = 100_000 / ENTRIES
    return {
      entries: ENTRIES,
      threads,
      backend: verifyRuns[0].backend,
      verifyWorkers: verifyRuns[0].workers,
      verifyMs,
      verifyEntriesPerSecond: Math.round(ENTRIES / (verifyMs / 1000)),
      verifyMsPer100k: verifyMs * scale,
      baselineMs,
      ratio: verifyMs / baselineMs,
      rssMb,
      appendMs,
      fixtureSeconds,
      verifyRunsMs: verifyRuns.map((r) => Math.round(r.ms)),
      baselineRunsMs: baseRuns.map((ms) => Math.round(ms)),
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}

/** The section bench/run.mjs writes into docs/benchmarks.md. */
export async function run({ quick = false } = {}) {
  const m = await runAuditBench({ quick })
  const n = m.entries.toLocaleString('en')
  return {
    title: 'Audit ledger (issue 3)',
    rows: [
      [
        `audit verify, ${n} entries (built CLI, whole process)`,
        `${fmtMs(m.verifyMs)} (${m.verifyEntriesPerSecond.toLocaleString('en')} entries/s)`,
        m.entries === 100_000 ? '≤ 4 s' : '≥ 25,000 entries/s',
        verdict(m.entries === 100_000 ? m.verifyMs <= 4000 : m.verifyEntriesPerSecond >= 25_000),
      ],
      [
        `bare loop, same hashing and signature checks, ${m.threads} thread(s)`,
        fmtMs(m.baselineMs),
        'baseline',
        '',
      ],
      ['verify ÷ bare loop', `${m.ratio.toFixed(2)}×`, '≤ 1.5×', verdict(m.ratio <= 1.5)],
      [`peak RSS of verify, ${n} entries`, `${m.rssMb.toFixed(0)} MB`, '≤ 300 MB', verdict(m.rssMb <= 300)],
      ['append 1,000 entries + one signed commit', fmtMs(m.appendMs), '≤ 2 s', verdict(m.appendMs <= 2000)],
    ],
    notes: [
      `Verify used ${m.verifyWorkers} worker thread(s) with ${m.backend} for Ed25519; the bare loop used ${m.threads} thread(s) with libsodium over canonical bodies held in memory. ` +
        `The fixture (${n} entries in signed audit commits of 1,000, signed in-process) took ${m.fixtureSeconds.toFixed(0)} s to build. ` +
        `Runs: verify ${m.verifyRunsMs.join(', ')} ms; bare loop ${m.baselineRunsMs.join(', ')} ms.`,
    ],
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await runAuditBench({ quick: process.argv.includes('--quick') }), null, 2))
}
