// Issue 6 targets: 1,000 kv-v2 rotations in one `nhi-recover execute` against a real local
// OpenBao, compared with
//   (a) a shell loop of `bao kv put` doing the writes, and
//   (b) a bare script making the same HTTP calls with the same concurrency.
// The calls execute makes per rotation are counted through a counting proxy on a smaller run;
// the bare script makes the same ones. The provider alone (no engine) is timed for reference.
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pLimit from 'p-limit'
import { tsImport } from 'tsx/esm/api'
import { ROOT, fmtMs, median, verdict, printSection } from './lib.mjs'

const CONCURRENCY = 16
const value = () => randomBytes(30).toString('base64url')

/** Seeds `count` secrets at version 1 under `prefix`. */
async function seed(server, prefix, count) {
  await seedPaths(
    server,
    Array.from({ length: count }, (_, i) => `${prefix}/app-${i}`),
  )
}

/** Seeds a secret at version 1 at each KV path of the mount. */
async function seedPaths(server, paths, mount = 'secret') {
  const limit = pLimit(CONCURRENCY)
  await Promise.all(
    paths.map((path) =>
      limit(async () => {
        const r = await fetch(`${server.addr}/v1/${mount}/data/${path}`, {
          method: 'POST',
          headers: { 'X-Vault-Token': server.rootToken },
          body: JSON.stringify({ data: { value: value(), username: 'svc' } }),
        })
        if (r.status !== 200) throw new Error(`seed ${path}: ${r.status}`)
      }),
    ),
  )
}

/** Rotations through the provider: the same prepare → verify → promote the engine will run. */
async function viaProvider(server, prefix, count, mods) {
  const { VaultSecretStore } = mods.store
  const { VaultHttp } = mods.client
  const { Secret } = mods.secret
  const http = await VaultHttp.create({ address: server.addr }, new Secret(server.rootToken))
  let calls = 0
  const counted = {
    connection: http.connection,
    anonymous: () => http.anonymous(),
    call: (c) => {
      calls++
      return http.call(c)
    },
  }
  const store = new VaultSecretStore({ name: 'bao', http: counted })
  const limit = pLimit(CONCURRENCY)
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      limit(async () => {
        const target = {
          provider: 'bao',
          mechanism: 'kv-v2',
          mount: 'secret',
          path: `${prefix}/app-${i}`,
          field: 'value',
        }
        const requestId = `rr-bench-${prefix}-${i}`
        const p = await store.prepare(target, { requestId, value: new Secret(value()) })
        await store.verify(target, { requestId, versionId: p.id })
        await store.promote(target, { requestId, versionId: p.id, expectedCurrent: '1' })
      }),
    ),
  )
  return { ms: performance.now() - t0, callsPerRotation: calls / count }
}

/**
 * The HTTP calls `execute` makes for one kv-v2 rotation with retainPrevious 0s (describe,
 * prepare, verify, promote, retire), written by hand with fetch: 12 per rotation.
 */
async function viaBareHttp(server, prefix, count) {
  const h = { 'X-Vault-Token': server.rootToken }
  const v1 = `${server.addr}/v1`
  let calls = 0
  const call = async (method, path, body, headers = {}) => {
    calls++
    const r = await fetch(`${v1}/${path}`, {
      method,
      headers: { ...h, ...headers },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    const text = await r.text()
    return { status: r.status, json: text ? JSON.parse(text) : {} }
  }
  const limit = pLimit(CONCURRENCY)
  const t0 = performance.now()
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      limit(async () => {
        const path = `${prefix}/app-${i}`
        const staging = `nhi-recover/staging/${path}`
        const requestId = `rr-bare-${prefix}-${i}`
        // describe: the secret's metadata and any staged value
        await Promise.all([call('GET', `secret/metadata/${path}`), call('GET', `secret/data/${staging}`)])
        // prepare: read the secret's metadata, then stage with cas 0
        const meta = await call('GET', `secret/metadata/${path}`)
        const base = meta.json.data.current_version
        const staged = {
          format: 'nhi-recover-staging/v1',
          request: requestId,
          base,
          kind: 'rotate',
          field: 'value',
          value: value(),
          created: new Date().toISOString(),
        }
        await call('POST', `secret/data/${staging}`, { data: staged, options: { cas: 0 } })
        // verify: read the staged value back
        await call('GET', `secret/data/${staging}`)
        // promote: read the latest version and the staging secret, CAS write, mark, unstage
        const [cur] = await Promise.all([
          call('GET', `secret/data/${path}`),
          call('GET', `secret/data/${staging}`),
        ])
        const w = await call('POST', `secret/data/${path}`, {
          data: { ...cur.json.data.data, value: staged.value },
          options: { cas: base },
        })
        if (w.status !== 200) throw new Error(`bare write ${path}: ${w.status}`)
        await call(
          'PATCH',
          `secret/metadata/${path}`,
          {
            custom_metadata: {
              [`nhi-recover.v${base + 1}`]: JSON.stringify({ request: requestId }),
              'nhi-recover.previous': String(base),
            },
          },
          { 'Content-Type': 'application/merge-patch+json' },
        )
        await call('DELETE', `secret/metadata/${staging}`)
        // retire: check the version is no longer current, then destroy it
        await call('GET', `secret/metadata/${path}`)
        const d = await call('POST', `secret/destroy/${path}`, { versions: [base] })
        if (d.status !== 204) throw new Error(`bare destroy ${path}: ${d.status}`)
      }),
    ),
  )
  return { ms: performance.now() - t0, callsPerRotation: calls / count }
}

/** Builds a recovery repo of `count` merged, approved kv-v2 requests on this server. */
async function kvFixture(root, name, server, address, count, mount = 'secret') {
  const { buildFixture } = await import('./engine.mjs')
  mkdirSync(join(root, name))
  return buildFixture(join(root, name), {
    count,
    scenario: {
      providersYaml: [
        '  bao:',
        '    kind: vault',
        `    address: ${address}`,
        '    auth:',
        '      method: token',
        `      tokenEnv: ${TOKEN_ENV}`,
        '',
      ].join('\n'),
      answers: { provider: 'bao', mechanism: 'kv-v2', type: 'api-key', mount },
      seed: (paths) => seedPaths(server, paths, mount),
    },
  })
}

const TOKEN_ENV = 'NHI_BENCH_BAO_TOKEN'

/** One timed `execute --json --concurrency C` of every request of a fresh kv-v2 fixture. */
async function viaExecute(server, root, count) {
  const { copyFixture, execute } = await import('./engine.mjs')
  const fixture = await kvFixture(root, 'kv', server, server.addr, count)
  const repo = copyFixture(fixture, root, 'kv-run')
  return execute(repo, CONCURRENCY, undefined, { count, env: { [TOKEN_ENV]: server.rootToken } })
}

/** The HTTP calls `execute` makes per rotation, counted by a proxy in front of the server. */
async function executeCalls(server, root, count) {
  const { copyFixture, execute } = await import('./engine.mjs')
  const proxy = spawn('node', [join(ROOT, 'bench', 'counting-proxy.mjs'), server.addr], {
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  let out = ''
  proxy.stdout.on('data', (d) => (out += d))
  try {
    while (!out.includes('\n')) await new Promise((r) => setTimeout(r, 20))
    // Its own KV mount, so the timed run's secrets start untouched at version 1.
    const mounted = await fetch(`${server.addr}/v1/sys/mounts/counted`, {
      method: 'POST',
      headers: { 'X-Vault-Token': server.rootToken },
      body: JSON.stringify({ type: 'kv', options: { version: '2' } }),
    })
    if (mounted.status !== 204) throw new Error(`mount counted/: ${mounted.status}`)
    const fixture = await kvFixture(root, 'counted', server, out.split('\n')[0], count, 'counted')
    execute(copyFixture(fixture, root, 'counted-run'), CONCURRENCY, undefined, {
      count,
      env: { [TOKEN_ENV]: server.rootToken },
    })
  } finally {
    const closed = new Promise((r) => proxy.on('close', r)) // exited, and its stdout fully read
    proxy.stdin.end()
    await closed
  }
  const counts = JSON.parse(out.split('\n')[1])
  return Object.values(counts).reduce((a, b) => a + b, 0) / count
}

/** A sequential shell loop of `bao kv put -cas=1`, one per rotation: the write alone. */
function viaShellLoop(server, prefix, count) {
  const bao = join(ROOT, '.venv', 'bin', 'bao')
  const script = `for i in $(seq 0 ${count - 1}); do "${bao}" kv put -mount=secret -cas=1 "${prefix}/app-$i" value="$(head -c 30 /dev/urandom | base64 | tr -d '/+=')" username=svc >/dev/null || exit 1; done`
  const t0 = performance.now()
  const r = spawnSync('bash', ['-c', script], {
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      BAO_ADDR: server.addr,
      BAO_TOKEN: server.rootToken,
    },
    encoding: 'utf8',
  })
  const ms = performance.now() - t0
  if (r.status !== 0) throw new Error(`bao kv put loop failed: ${r.stderr.slice(-500)}`)
  return { ms }
}

export async function run({ quick = false } = {}) {
  const url = import.meta.url
  const mods = {
    harness: await tsImport('../test/harness/openbao.ts', url),
    store: await tsImport('../providers/secret-stores/vault/index.ts', url),
    client: await tsImport('../providers/vault-client.ts', url),
    secret: await tsImport('../src/secret.ts', url),
  }
  const count = 1000
  const rounds = quick ? 1 : 3
  // `bao kv put` starts a Go binary per call (~0.2–0.3 s here), so the loop is timed on a sample
  // and scaled to 1,000; a sequential loop's time is linear in its length.
  const loopCount = quick ? 20 : 100
  const server = await mods.harness.startOpenBao()
  const root = mkdtempSync(join(tmpdir(), 'nhi-bench-vault-'))
  try {
    const calls = { execute: await executeCalls(server, root, 20) }
    // execute first, then the bare script and the provider alone on fresh secrets.
    const ex = await viaExecute(server, root, count)
    const provider = []
    const bare = []
    for (let r = 0; r < rounds; r++) {
      await seed(server, `p${r}`, count)
      await seed(server, `b${r}`, count)
      const p = await viaProvider(server, `p${r}`, count, mods)
      const b = await viaBareHttp(server, `b${r}`, count)
      provider.push(p.ms)
      bare.push(b.ms)
      calls.provider = p.callsPerRotation
      calls.bare = b.callsPerRotation
    }
    await seed(server, 'cli', loopCount)
    const loop = viaShellLoop(server, 'cli', loopCount)
    const loopFor1000 = (loop.ms / loopCount) * count

    const pMs = median(provider)
    const bMs = median(bare)
    const vsLoop = loopFor1000 / ex.wallMs
    const vsBare = ex.wallMs / bMs
    const t = ex.timing
    return {
      title: 'OpenBao kv-v2 rotations (issue 6)',
      rows: [
        [
          `\`execute --json\`, ${count.toLocaleString('en')} kv-v2 rotations, one audit commit (built CLI, whole process, concurrency ${CONCURRENCY})`,
          fmtMs(ex.wallMs),
          '',
          '',
        ],
        [
          'inside that run: provider calls (summed over concurrent calls), approval gate, audit ledger, locks',
          `${fmtMs(t.providerMs)}, ${fmtMs(t.gateMs)}, ${fmtMs(t.ledgerMs)}, ${fmtMs(t.locksMs)} (engine total ${fmtMs(t.totalMs)})`,
          'recorded',
          '',
        ],
        [
          `bare fetch script, the same ${calls.bare} HTTP calls per rotation, concurrency ${CONCURRENCY}`,
          fmtMs(bMs),
          '',
          '',
        ],
        [
          `the provider alone, no engine (prepare, verify, promote: ${calls.provider} calls), concurrency ${CONCURRENCY}`,
          fmtMs(pMs),
          'for reference',
          '',
        ],
        [
          `shell loop of \`bao kv put\` (${loopCount} timed, scaled to ${count.toLocaleString('en')})`,
          fmtMs(loopFor1000),
          '',
          '',
        ],
        [
          'execute vs `bao kv put` loop',
          `${vsLoop.toFixed(1)}× faster`,
          '≥ 10× faster',
          verdict(vsLoop >= 10),
        ],
        [
          'execute vs bare HTTP script',
          `${vsBare.toFixed(2)}× the bare time`,
          '≤ 1.5×',
          verdict(vsBare <= 1.5),
        ],
        [
          'HTTP calls per rotation: execute / bare',
          `${calls.execute.toFixed(2)} / ${calls.bare}`,
          'equal',
          verdict(Math.abs(calls.execute - calls.bare) < 0.5),
        ],
      ],
      notes: [
        `The execute run is the whole process (Node and CLI startup, loading and checking ${count.toLocaleString('en')} specs, the approval gate on 2,000 SSH-signed approvals, locks, the rotations and one signed audit commit of ${ex.entries.toLocaleString('en')} entries), on a recovery repo built like the engine bench's, whose requests target kv-v2 secrets on this server with retainPrevious 0s, so each rotation is describe, prepare, verify, promote and retire. The bare script does only the HTTP calls.`,
        `Calls per rotation through execute were counted by a proxy (bench/counting-proxy.mjs) in front of the server on a separate run of 20 requests; the bare script makes the same calls. The bare and provider-only times are medians of ${rounds} interleaved round(s) on fresh secrets.`,
        'The shell loop does only the final write of each rotation (one `bao kv put -cas=1` per secret), which favours the loop.',
      ],
    }
  } finally {
    await server.stop()
    rmSync(root, { recursive: true, force: true })
  }
}

// Run alone: node bench/vault.mjs [--quick]
if (import.meta.url === `file://${process.argv[1]}`) {
  printSection(await run({ quick: process.argv.includes('--quick') }))
}
