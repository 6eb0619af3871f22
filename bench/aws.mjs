// Issue 7 target: 1,000 secrets-manager rotations against a local moto server, compared with a
// bare script making the same SDK calls with the same concurrency (≤ 1.5×), and the same runs
// with concurrency 1. Until the engine's `execute` exists, the rotations go through the provider
// directly (describe → prepare → verify → promote per secret, as the engine calls it), not
// through `execute`.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import pLimit from 'p-limit'
import { tsImport } from 'tsx/esm/api'
import { ROOT, fmtMs, verdict } from './lib.mjs'

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

/** Rotations through the provider: the engine's describe → prepare → verify → promote. */
async function viaProvider(mods, moto, secrets, prefix, concurrency) {
  const { SecretsManagerStore } = mods.sm
  const { Secret } = mods.secret
  const store = new SecretsManagerStore({
    name: 'aws',
    config: { kind: 'aws-secrets-manager', region: 'us-east-1', endpoint: moto.endpoint },
  })
  const limit = pLimit(concurrency)
  const t0 = performance.now()
  await Promise.all(
    secrets.map((s, i) =>
      limit(async () => {
        const target = { provider: 'aws', mechanism: 'secrets-manager', secret: s.name }
        const requestId = `rr-bench-${prefix}-${i}`
        const p = await store.prepare(target, { requestId, value: new Secret(value()) })
        await store.verify(target, { requestId, versionId: p.id })
        await store.promote(target, { requestId, versionId: p.id, expectedCurrent: s.current })
      }),
    ),
  )
  return performance.now() - t0
}

/** The same SDK calls the provider makes for one rotation, written by hand. */
async function viaBareSdk(mods, client, secrets, prefix, concurrency) {
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

/** SDK calls per rotation of each variant, counted from moto's own request recording on a few rotations. */
async function callsPerRotation(mods, moto, client, seeder) {
  const n = 20
  const count = async (fn) => {
    await moto.reset()
    const secrets = await seed(seeder, mods.sdk, 'count', n)
    await moto.startRecording()
    await fn(secrets)
    const reqs = await moto.stopRecording()
    return reqs.filter((r) => r.operation.startsWith('secretsmanager.')).length / n
  }
  return {
    provider: await count((s) => viaProvider(mods, moto, s, 'count', 4)),
    bare: await count((s) => viaBareSdk(mods, client, s, 'count', 4)),
    minimal: await count((s) => viaMinimalSdk(mods, client, s, 4)),
  }
}

export async function run({ quick = false } = {}) {
  const count = quick ? 200 : 1000
  const rounds = quick ? 1 : 2
  const mods = await load()
  mods.harness.useMotoEnv()
  const moto = await mods.harness.startMoto()
  try {
    const client = new mods.sdk.SecretsManagerClient({ region: 'us-east-1', endpoint: moto.endpoint })
    const seeder = new mods.sdk.SecretsManagerClient({
      region: 'us-east-1',
      endpoint: moto.endpoint,
      maxAttempts: 8,
    })
    // Each timed run gets freshly seeded secrets on a reset server; provider and bare runs alternate.
    const timed = async (fn, concurrency, tag, n = count) => {
      await moto.reset()
      const secrets = await seed(seeder, mods.sdk, tag, n)
      return fn(secrets, concurrency, tag)
    }
    const provider = (s, c, tag) => viaProvider(mods, moto, s, tag, c)
    const bare = (s, c, tag) => viaBareSdk(mods, client, s, tag, c)
    const minimal = (s, c) => viaMinimalSdk(mods, client, s, c)

    await timed(provider, CONCURRENCY, 'warm', Math.min(count, 200)) // JIT, sockets and moto's first-call costs
    const results = { p16: [], b16: [], m16: [], p1: [], b1: [] }
    for (let r = 0; r < rounds; r++) {
      results.p16.push(await timed(provider, CONCURRENCY, `p16-${r}`))
      results.b16.push(await timed(bare, CONCURRENCY, `b16-${r}`))
      results.m16.push(await timed(minimal, CONCURRENCY, `m16-${r}`))
    }
    // Concurrency 1 is long and the machine is shared: each variant's run is split into halves,
    // interleaved, and the halves are added up.
    for (let r = 0; r < 2; r++) {
      results.p1.push(await timed(provider, 1, `p1-${r}`, count / 2))
      results.b1.push(await timed(bare, 1, `b1-${r}`, count / 2))
    }
    const calls = await callsPerRotation(mods, moto, client, seeder)

    const best = (xs) => Math.min(...xs)
    const sum = (xs) => xs.reduce((a, b) => a + b, 0)
    const [p16, b16, m16] = [results.p16, results.b16, results.m16].map(best)
    const [p1, b1] = [results.p1, results.b1].map(sum)
    const n = count.toLocaleString('en')
    const per = (ms) => `${fmtMs(ms)} (${(ms / count).toFixed(2)} ms/rotation)`
    return {
      title: 'AWS Secrets Manager rotations against moto (issue 7)',
      rows: [
        [`${n} rotations through the provider, concurrency ${CONCURRENCY}`, per(p16), '', ''],
        [`bare script, same SDK calls, concurrency ${CONCURRENCY}`, per(b16), '', ''],
        [
          `provider ÷ bare, concurrency ${CONCURRENCY}`,
          `${(p16 / b16).toFixed(2)}×`,
          '≤ 1.5×',
          verdict(p16 / b16 <= 1.5),
        ],
        [`${n} rotations through the provider, concurrency 1`, per(p1), '', ''],
        [`bare script, same SDK calls, concurrency 1`, per(b1), '', ''],
        [`provider ÷ bare, concurrency 1`, `${(p1 / b1).toFixed(2)}×`, 'recorded', ''],
        [
          `minimal script without the safety reads (${calls.minimal} calls), concurrency ${CONCURRENCY}`,
          per(m16),
          'for reference',
          '',
        ],
        [
          'Secrets Manager calls per rotation: provider / bare / minimal',
          `${calls.provider} / ${calls.bare} / ${calls.minimal}`,
          'provider = bare',
          verdict(calls.provider === calls.bare),
        ],
      ],
      notes: [
        'These rotations go through the provider (SecretsManagerStore: prepare, verify, promote), not yet through `nhi-recover execute`: the engine had not landed when this was measured.',
        `Concurrency ${CONCURRENCY}: the best of ${rounds} run(s) each; concurrency 1: two interleaved halves of ${n} rotations each, added up. Every run starts from freshly seeded secrets on a reset moto_server (moto[server] 5.2.5, loopback). Calls per rotation are counted from moto's request recording of 20 rotations.`,
        'moto is a single Python process and answers each call in several milliseconds, so these ratios mostly compare call counts and client overhead; the SDK, its retries and the HTTP handling are the same on both sides.',
        'The provider makes two ListSecretVersionIds calls more than the minimal script: one to refuse a foreign AWSPENDING before putting, one to check the version is still pending before promoting; and one UpdateSecretVersionStage more, to drop AWSPENDING after promotion.',
      ],
    }
  } finally {
    await moto.stop()
  }
}
