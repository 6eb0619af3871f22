// Issue 7 target: 1,000 secrets-manager rotations in one `nhi-recover execute` against a local
// moto server, compared with a bare script making the same SDK calls with the same concurrency
// (≤ 1.5×), and the same runs with concurrency 1. The calls are counted from moto's recording.
// Run alone: node bench/aws.mjs [--quick] (after npm run build).
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pLimit from 'p-limit'
import { tsImport } from 'tsx/esm/api'
import { ROOT, fmtMs, verdict, printSection } from './lib.mjs'

const CONCURRENCY = 16
const value = () => randomBytes(30).toString('base64url')

async function load() {
  const imp = (p) => tsImport(join(ROOT, p), import.meta.url)
  const [harness, sm, staged, secret, sdk] = await Promise.all([
    imp('test/harness/moto.ts'),
    imp('providers/secret-stores/aws/secrets-manager.ts'),
    imp('providers/secret-stores/aws/staged-secret.ts'),
    imp('src/secret.ts'),
    import('@aws-sdk/client-secrets-manager'),
  ])
  return { harness, sm, staged, secret, sdk }
}

/**
 * Creates `count` secrets with one AWSCURRENT version each; returns their names and current
 * version ids. Few at a time: moto 5.2.5's CreateSecret is not thread-safe (concurrent creates
 * fail with "dictionary changed size during iteration"); rotations of distinct secrets are fine.
 */
async function seed(client, sdk, prefix, count) {
  const limit = pLimit(2)
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      limit(async () => {
        const name = `bench/${prefix}/app-${i}`
        const out = await client.send(new sdk.CreateSecretCommand({ Name: name, SecretString: value() }))
        return { name, current: out.VersionId }
      }),
    ),
  )
}

/**
 * The same SDK calls the provider makes for one rotation, written by hand. With `engine`, also
 * those execute adds around it: describe (list the labels) first, and retire at the end (list,
 * then drop AWSPREVIOUS from the old version, as retainPrevious 0s asks).
 */
async function viaBareSdk(mods, client, secrets, prefix, concurrency, engine = false) {
  const { sdk } = mods
  const { versionIdFor } = mods.staged
  const list = (SecretId) =>
    client.send(new sdk.ListSecretVersionIdsCommand({ SecretId, IncludeDeprecated: true, MaxResults: 100 }))
  const limit = pLimit(concurrency)
  const t0 = performance.now()
  await Promise.all(
    secrets.map((s, i) =>
      limit(async () => {
        const requestId = `rr-bare-${prefix}-${i}`
        const id = versionIdFor(requestId)
        if (engine) await list(s.name) // describe
        // prepare: list the labels, put AWSPENDING with the request's token and label
        await list(s.name)
        await client.send(
          new sdk.PutSecretValueCommand({
            SecretId: s.name,
            ClientRequestToken: id,
            SecretString: value(),
            VersionStages: ['AWSPENDING', `nhi-recover-request:${requestId}`],
          }),
        )
        // verify: read it back by VersionId and VersionStage
        await client.send(
          new sdk.GetSecretValueCommand({ SecretId: s.name, VersionId: id, VersionStage: 'AWSPENDING' }),
        )
        // promote: list the labels, move AWSCURRENT, drop AWSPENDING
        await list(s.name)
        await client.send(
          new sdk.UpdateSecretVersionStageCommand({
            SecretId: s.name,
            VersionStage: 'AWSCURRENT',
            MoveToVersionId: id,
            RemoveFromVersionId: s.current,
          }),
        )
        await client.send(
          new sdk.UpdateSecretVersionStageCommand({
            SecretId: s.name,
            VersionStage: 'AWSPENDING',
            RemoveFromVersionId: id,
          }),
        )
        if (engine) {
          // retire: list the labels, drop AWSPREVIOUS from the old version
          await list(s.name)
          await client.send(
            new sdk.UpdateSecretVersionStageCommand({
              SecretId: s.name,
              VersionStage: 'AWSPREVIOUS',
              RemoveFromVersionId: s.current,
            }),
          )
        }
      }),
    ),
  )
  return performance.now() - t0
}

/** What a person would write without the safety checks: put, read back, find current, move it. */
async function viaMinimalSdk(mods, client, secrets, concurrency) {
  const { sdk } = mods
  const limit = pLimit(concurrency)
  const t0 = performance.now()
  await Promise.all(
    secrets.map((s) =>
      limit(async () => {
        const put = await client.send(
          new sdk.PutSecretValueCommand({
            SecretId: s.name,
            SecretString: value(),
            VersionStages: ['AWSPENDING'],
          }),
        )
        await client.send(
          new sdk.GetSecretValueCommand({
            SecretId: s.name,
            VersionId: put.VersionId,
            VersionStage: 'AWSPENDING',
          }),
        )
        const d = await client.send(new sdk.DescribeSecretCommand({ SecretId: s.name }))
        const current = Object.keys(d.VersionIdsToStages ?? {}).find((v) =>
          d.VersionIdsToStages[v].includes('AWSCURRENT'),
        )
        await client.send(
          new sdk.UpdateSecretVersionStageCommand({
            SecretId: s.name,
            VersionStage: 'AWSCURRENT',
            MoveToVersionId: put.VersionId,
            RemoveFromVersionId: current,
          }),
        )
      }),
    ),
  )
  return performance.now() - t0
}

/**
 * A recovery repo (built like the engine bench's) of `count` merged, approved requests, each
 * rotating one Secrets Manager secret on this moto server with retainPrevious 0s.
 */
async function smFixture(mods, root, name, seeder, count) {
  const { buildFixture } = await import('./engine.mjs')
  mkdirSync(join(root, name))
  return buildFixture(join(root, name), {
    count,
    scenario: {
      providersYaml: '  aws-sm:\n    kind: aws-secrets-manager\n',
      answers: {
        provider: 'aws-sm',
        mechanism: 'secrets-manager',
        type: 'api-key',
        path: '',
        secret: 'bench/key-0000',
      },
      seed: async (names) => {
        const limit = pLimit(2) // moto's CreateSecret is not thread-safe (see seed)
        await Promise.all(
          names.map((n) =>
            limit(() => seeder.send(new mods.sdk.CreateSecretCommand({ Name: n, SecretString: value() }))),
          ),
        )
      },
    },
  })
}

/** `execute --json` over a fresh copy of the fixture (all requests, or the first `only`). */
async function viaExecute(mods, moto, fixture, root, name, count, concurrency, only) {
  const { copyFixture, execute } = await import('./engine.mjs')
  const ids = only
    ? Array.from({ length: only }, (_, i) => `rr-bench-${String(i).padStart(4, '0')}`)
    : undefined
  return execute(copyFixture(fixture, root, name), concurrency, ids, {
    count,
    env: { ...mods.harness.MOTO_ENV, AWS_ENDPOINT_URL: moto.endpoint },
  })
}

/** Secrets Manager calls per rotation, counted from moto's own request recording. */
async function recordCalls(moto, n, fn) {
  await moto.startRecording()
  await fn()
  const reqs = await moto.stopRecording()
  return reqs.filter((r) => r.operation.startsWith('secretsmanager.')).length / n
}

export async function run({ quick = false } = {}) {
  const count = 1000
  const c1Count = quick ? 200 : 1000
  const mods = await load()
  mods.harness.useMotoEnv()
  const moto = await mods.harness.startMoto()
  const root = mkdtempSync(join(tmpdir(), 'nhi-bench-aws-'))
  try {
    const client = new mods.sdk.SecretsManagerClient({ region: 'us-east-1', endpoint: moto.endpoint })
    const seeder = new mods.sdk.SecretsManagerClient({
      region: 'us-east-1',
      endpoint: moto.endpoint,
      maxAttempts: 8,
    })
    const bare = async (concurrency, tag, n, engine = true) => {
      await moto.reset()
      const secrets = await seed(seeder, mods.sdk, tag, n)
      return viaBareSdk(mods, client, secrets, tag, concurrency, engine)
    }
    const minimal = async (tag, n) => {
      await moto.reset()
      return viaMinimalSdk(mods, client, await seed(seeder, mods.sdk, tag, n), CONCURRENCY)
    }
    // Each execute runs on a reset server with its fixture's secrets freshly seeded.
    const executeRun = async (name, n, concurrency, only) => {
      await moto.reset()
      const fixture = await smFixture(mods, root, name, seeder, n)
      return viaExecute(mods, moto, fixture, root, `${name}-run`, n, concurrency, only)
    }

    await bare(CONCURRENCY, 'warm', 200) // JIT, sockets and moto's first-call costs
    const calls = {}
    {
      await moto.reset()
      const fixture = await smFixture(mods, root, 'counted', seeder, 20)
      calls.execute = await recordCalls(moto, 20, () =>
        viaExecute(mods, moto, fixture, root, 'counted-run', 20, CONCURRENCY),
      )
      await moto.reset()
      const secrets = await seed(seeder, mods.sdk, 'count', 20)
      calls.bare = await recordCalls(moto, 20, () => viaBareSdk(mods, client, secrets, 'count', 4, true))
      await moto.reset()
      const few = await seed(seeder, mods.sdk, 'count', 20)
      calls.minimal = await recordCalls(moto, 20, () => viaMinimalSdk(mods, client, few, 4))
    }

    const e16 = await executeRun('c16', count, CONCURRENCY)
    const b16 = await bare(CONCURRENCY, 'b16', count)
    const m16 = await minimal('m16', count)
    const e1 = await executeRun('c1', count, 1, c1Count)
    const b1 = await bare(1, 'b1', c1Count)

    const n = count.toLocaleString('en')
    const per = (ms, k) => `${fmtMs(ms)} (${(ms / k).toFixed(2)} ms/rotation)`
    const t = e16.timing
    return {
      title: 'AWS Secrets Manager rotations against moto (issue 7)',
      rows: [
        [
          `\`execute --json\`, ${n} secrets-manager rotations, one audit commit (built CLI, whole process, concurrency ${CONCURRENCY})`,
          per(e16.wallMs, count),
          '',
          '',
        ],
        [
          'inside that run: provider calls (summed over concurrent calls), approval gate, audit ledger, locks',
          `${fmtMs(t.providerMs)}, ${fmtMs(t.gateMs)}, ${fmtMs(t.ledgerMs)}, ${fmtMs(t.locksMs)} (engine total ${fmtMs(t.totalMs)})`,
          'recorded',
          '',
        ],
        [`bare script, the same SDK calls, concurrency ${CONCURRENCY}`, per(b16, count), '', ''],
        [
          `execute ÷ bare, concurrency ${CONCURRENCY}`,
          `${(e16.wallMs / b16).toFixed(2)}×`,
          '≤ 1.5×',
          verdict(e16.wallMs / b16 <= 1.5),
        ],
        [
          `\`execute --concurrency 1\`, ${c1Count.toLocaleString('en')} of the ${n} requests`,
          per(e1.wallMs, c1Count),
          '',
          '',
        ],
        [`bare script, the same SDK calls, concurrency 1`, per(b1, c1Count), '', ''],
        [`execute ÷ bare, concurrency 1`, `${(e1.wallMs / b1).toFixed(2)}×`, 'recorded', ''],
        [
          `minimal script without the safety reads (${calls.minimal} calls), concurrency ${CONCURRENCY}`,
          per(m16, count),
          'for reference',
          '',
        ],
        [
          'Secrets Manager calls per rotation: execute / bare / minimal',
          `${calls.execute} / ${calls.bare} / ${calls.minimal}`,
          'execute = bare',
          verdict(calls.execute === calls.bare),
        ],
      ],
      notes: [
        `The execute runs are whole processes (Node and CLI startup, loading and checking the specs, the approval gate on two SSH-signed approvals per request, locks, the rotations and one signed audit commit) on a recovery repo built like the engine bench's, whose requests rotate Secrets Manager secrets on this moto server with retainPrevious 0s: describe, prepare, verify, promote and retire. The bare script makes only the same SDK calls. Each run starts on a reset moto_server (moto[server] 5.2.5, loopback) with freshly seeded secrets; calls per rotation are counted from moto's request recording of 20 rotations.`,
        quick
          ? `Quick mode runs concurrency 1 on the first ${c1Count} requests only (\`--only\`), and the bare script on as many.`
          : 'One run of each.',
        'moto is a single Python process and answers each call in several milliseconds, so these ratios mostly compare call counts and client overhead; the SDK, its retries and the HTTP handling are the same on both sides.',
        'The provider makes two ListSecretVersionIds calls more than the minimal script: one to refuse a foreign AWSPENDING before putting, one to check the version is still pending before promoting; and one UpdateSecretVersionStage more, to drop AWSPENDING after promotion. Execute adds one listing to describe the secret, and the retirement (a listing and one UpdateSecretVersionStage).',
      ],
    }
  } finally {
    await moto.stop()
    rmSync(root, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  printSection(await run({ quick: process.argv.includes('--quick') }))
}
