// Issue 2 targets: startup of --version and validate, and validate over 10,000 specs.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BIN, ROOT, fmtMs, interleaved, timeRun, verdict } from './lib.mjs'

const EXAMPLES = join(ROOT, 'recovery-specs', 'examples')

function makeRepo(count) {
  const repo = mkdtempSync(join(tmpdir(), 'nhi-bench-specs-'))
  mkdirSync(join(repo, '.git'))
  cpSync(join(EXAMPLES, 'nhi-recover.yaml'), join(repo, 'nhi-recover.yaml'))
  const template = readFileSync(join(EXAMPLES, 'vault-kv-api-key.yaml'), 'utf8')
  for (let i = 0; i < count; i++) {
    const dir = join(repo, 'recovery-specs', String(i % 100).padStart(2, '0'))
    mkdirSync(dir, { recursive: true })
    writeFileSync(
      join(dir, `rr-bench-${i}.yaml`),
      template.replace('id: rr-payments-kv-api-key', `id: rr-bench-${i}`),
    )
  }
  return repo
}

export async function run({ quick = false } = {}) {
  const runs = quick ? 7 : 25
  const one = makeRepo(1)
  const startup = interleaved(
    {
      bare: () => timeRun('node', ['-e', '0']).ms,
      version: () => timeRun('node', [BIN, '--version'], { expectExit: 0 }).ms,
      validateOne: () => timeRun('node', [BIN, 'validate'], { cwd: one, expectExit: 0 }).ms,
    },
    runs,
  )
  rmSync(one, { recursive: true, force: true })

  const count = 10_000
  const many = makeRepo(count)
  const manyRuns = []
  for (let i = 0; i < (quick ? 1 : 3); i++) {
    const r = timeRun('node', [BIN, 'validate'], { cwd: many, expectExit: 0, rss: true })
    if (!r.stdout.includes(`${count} specs valid`))
      throw new Error(`validate did not check ${count} specs:\n${r.stdout.slice(-500)}`)
    manyRuns.push(r)
  }
  rmSync(many, { recursive: true, force: true })
  const manyMs = Math.min(...manyRuns.map((r) => r.ms))
  const manyRss = Math.max(...manyRuns.map((r) => r.rssMb ?? Infinity))

  const vRatio = startup.version / startup.bare
  const oRatio = startup.validateOne / startup.bare
  return {
    title: 'CLI startup and validate (issue 2)',
    rows: [
      ['bare `node -e 0` (baseline)', fmtMs(startup.bare), '', ''],
      [
        '`nhi-recover --version`',
        `${fmtMs(startup.version)} (${vRatio.toFixed(2)}× bare)`,
        '≤ 3× bare',
        verdict(vRatio <= 3),
      ],
      [
        '`nhi-recover validate` on one spec',
        `${fmtMs(startup.validateOne)} (${oRatio.toFixed(2)}× bare)`,
        '≤ 4× bare',
        verdict(oRatio <= 4),
      ],
      [
        `\`validate\` on ${count.toLocaleString('en')} specs (best of ${manyRuns.length})`,
        fmtMs(manyMs),
        '≤ 3 s',
        verdict(manyMs <= 3000),
      ],
      [`peak RSS of that run`, `${manyRss.toFixed(0)} MB`, '≤ 250 MB', verdict(manyRss <= 250)],
    ],
    notes: [`Startup figures are medians of ${runs} interleaved runs.`],
  }
}
