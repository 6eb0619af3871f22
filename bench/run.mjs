// `npm run bench`: runs every benchmark module and rewrites docs/benchmarks.md with what it measured.
// Usage: node bench/run.mjs [--quick] [--only NAME]
import { cpus } from 'node:os'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT } from './lib.mjs'

const MODULES = ['cli']
const quick = process.argv.includes('--quick')
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined

const sections = []
for (const name of MODULES) {
  if (only && only !== name) continue
  const mod = await import(`./${name}.mjs`)
  process.stderr.write(`bench: ${name}…\n`)
  const t0 = performance.now()
  const section = await mod.run({ quick })
  section.seconds = (performance.now() - t0) / 1000
  sections.push(section)
  console.log(`\n## ${section.title}`)
  for (const row of section.rows) console.log(`  ${row.join('  |  ')}`)
}

const md = [
  '# Benchmarks',
  '',
  '<!-- Written by `npm run bench` (bench/run.mjs). Numbers are what that run measured on this machine. -->',
  '',
  `Measured ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC on ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}${quick ? ', quick mode (fewer runs)' : ''}.`,
  'The machine is shared and noisy, so each target is checked as a ratio against a baseline measured in the same run.',
]
for (const s of sections) {
  md.push('', `## ${s.title}`, '', '| measure | result | target | verdict |', '| --- | --- | --- | --- |')
  for (const row of s.rows) md.push(`| ${row.join(' | ')} |`)
  for (const n of s.notes ?? []) md.push('', n)
}
if (!only) writeFileSync(join(ROOT, 'docs', 'benchmarks.md'), md.join('\n') + '\n')
