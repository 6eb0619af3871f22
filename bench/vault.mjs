// Issue 6 targets: 1,000 kv-v2 rotations against a real local OpenBao, compared with
//   (a) a shell loop of `bao kv put` doing the writes, and
//   (b) a bare script making the same HTTP calls with the same concurrency.
// Until the engine's `execute` exists, the rotations go through the provider directly
// (prepare → verify → promote per secret), not through `execute`.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import pLimit from 'p-limit'
import { tsImport } from 'tsx/esm/api'
import { ROOT, fmtMs, median, verdict } from './lib.mjs'

const CONCURRENCY = 16
const value = () => randomBytes(30).toString('base64url')

/** Seeds `count` secrets at version 1 under `prefix`. */
async function seed(server, prefix, count) {
  const limit = pLimit(CONCURRENCY)
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      limit(async () => {
        const r = await fetch(`${server.addr}/v1/secret/data/${prefix}/app-${i}`, {
          method: 'POST',
          headers: { 'X-Vault-Token': server.rootToken },
          body: JSON.stringify({ data: { value: value(), username: 'svc' } }),
        })
        if (r.status !== 200) throw new Error(`seed ${prefix}/app-${i}: ${r.status}`)
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

/** The same HTTP calls as the provider makes for one rotation, written by hand with fetch. */
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
      }),
    ),
  )
  return { ms: performance.now() - t0, callsPerRotation: calls / count }
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
  try {
    const provider = []
    const bare = []
    let calls
    // Interleaved rounds on fresh secrets, so machine load hits both alike.
    for (let r = 0; r < rounds; r++) {
      await seed(server, `p${r}`, count)
      await seed(server, `b${r}`, count)
      const p = await viaProvider(server, `p${r}`, count, mods)
      const b = await viaBareHttp(server, `b${r}`, count)
      provider.push(p.ms)
      bare.push(b.ms)
      calls = { provider: p.callsPerRotation, bare: b.callsPerRotation }
    }
    await seed(server, 'cli', loopCount)
    const loop = viaShellLoop(server, 'cli', loopCount)
    const loopFor1000 = (loop.ms / loopCount) * count

    const pMs = median(provider)
    const bMs = median(bare)
    const vsLoop = loopFor1000 / pMs
    const vsBare = pMs / bMs
    return {
      title: 'OpenBao kv-v2 rotations (issue 6)',
      rows: [
        [
          `${count.toLocaleString('en')} kv-v2 rotations through the provider, concurrency ${CONCURRENCY}`,
          fmtMs(pMs),
          '',
          '',
        ],
        [
          `bare fetch script, same ${calls.bare} HTTP calls per rotation, concurrency ${CONCURRENCY}`,
          fmtMs(bMs),
          '',
          '',
        ],
        [
          `shell loop of \`bao kv put\` (${loopCount} timed, scaled to ${count.toLocaleString('en')})`,
          fmtMs(loopFor1000),
          '',
          '',
        ],
        [
          'provider vs `bao kv put` loop',
          `${vsLoop.toFixed(1)}× faster`,
          '≥ 10× faster',
          verdict(vsLoop >= 10),
        ],
        [
          'provider vs bare HTTP script',
          `${vsBare.toFixed(2)}× the bare time`,
          '≤ 1.5×',
          verdict(vsBare <= 1.5),
        ],
      ],
      notes: [
        `These rotations go through the Vault provider directly (prepare → verify → promote per secret, p-limit ${CONCURRENCY}), not yet through \`nhi-recover execute\`, which does not exist yet; the engine's own overhead is not included.`,
        `The provider made ${calls.provider} HTTP calls per rotation and the bare script ${calls.bare}. Times are medians of ${rounds} interleaved round(s) on fresh secrets.`,
        'The shell loop does only the final write of each rotation (one `bao kv put -cas=1` per secret), which favours the loop.',
      ],
    }
  } finally {
    await server.stop()
  }
}

// Run alone: node bench/vault.mjs [--quick]
if (import.meta.url === `file://${process.argv[1]}`) {
  const section = await run({ quick: process.argv.includes('--quick') })
  console.log(`## ${section.title}`)
  for (const row of section.rows) console.log(`  ${row.join('  |  ')}`)
  for (const n of section.notes) console.log(`  ${n}`)
}
