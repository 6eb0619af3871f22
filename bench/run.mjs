// `npm run bench`: runs every benchmark module and rewrites docs/benchmarks.md with what it measured.
// Usage: node bench/run.mjs [--quick] [--only NAME]
import { cpus, loadavg } from 'node:os'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, printSection } from './lib.mjs'

const MODULES = ['cli', 'audit', 'approvals', 'engine', 'vault', 'aws']
const quick = process.argv.includes('--quick')
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined

const sections = []
const loadBefore = loadavg()[0]
for (const name of MODULES) {
  if (only && only !== name) continue
  const mod = await import(`./${name}.mjs`)
  process.stderr.write(`bench: ${name}…\n`)
  const t0 = performance.now()
  let section
  try {
    section = await mod.run({ quick })
  } catch (err) {
    // One broken module must not hide the others' numbers; the doc says it failed.
    process.exitCode = 1
    process.stderr.write(`bench: ${name} failed: ${err?.stack ?? err}\n`)
    const message = String(err?.message ?? err)
      .split('\n')[0]
      .slice(0, 300)
    section = {
      title: `${name} (bench/${name}.mjs)`,
      rows: [['run', `failed: ${message}`, '', '**failed**']],
    }
  }
  section.seconds = (performance.now() - t0) / 1000
  sections.push(section)
  console.log('')
  printSection({ ...section, notes: [] })
}

const md = [
  '# Benchmarks',
  '',
  '<!-- Written by `npm run bench` (bench/run.mjs). Numbers are what that run measured on this machine. -->',
  '',
  `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}${quick ? ', quick mode (fewer runs)' : ''}.`,
  'The machine is shared and noisy, so where a target allows it, it is checked as a ratio against a baseline measured in the same run.',
  `Load average (1 min) ${loadBefore.toFixed(2)} at the start and ${loadavg()[0].toFixed(2)} at the end; total ${sections.reduce((a, s) => a + s.seconds, 0).toFixed(0)} s.`,
]
for (const s of sections) {
  md.push('', `## ${s.title}`, '', '| measure | result | target | verdict |', '| --- | --- | --- | --- |')
  for (const row of s.rows) md.push(`| ${row.join(' | ')} |`)
  for (const n of s.notes ?? []) md.push('', n)
  md.push('', `This section took ${s.seconds.toFixed(0)} s.`)
}
if (!only) {
  // Written as prettier would, so that `npm run lint` accepts the doc as it is measured.
  const file = join(ROOT, 'docs', 'benchmarks.md')
  const prettier = await import('prettier')
  const options = { ...(await prettier.resolveConfig(file)), filepath: file }
  writeFileSync(file, await prettier.format(md.join('\n') + '\n', options))
}
