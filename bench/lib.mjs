// Shared helpers for the benchmarks. Timings on this shared machine are noisy, so every
// target is checked as a ratio against a baseline measured in the same run, interleaved.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const BIN = join(ROOT, 'bin', 'run.js')
const RSS_PRELOAD = join(ROOT, 'bench', 'report-rss.cjs')

export function median(values) {
  const s = [...values].sort((a, b) => a - b)
  const mid = s.length >> 1
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2
}

/** Runs a command once; returns wall-clock ms and the child's peak RSS in MB (when it is node). */
export function timeRun(cmd, args, opts = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'nhi-bench-rss-'))
  const rssFile = join(dir, 'rss')
  const env = { ...process.env, NO_COLOR: '1', NHI_BENCH_RSS_FILE: rssFile, ...(opts.env ?? {}) }
  const nodeArgs = cmd === 'node' && opts.rss ? ['--require', RSS_PRELOAD, ...args] : args
  const t0 = performance.now()
  const r = spawnSync(cmd, nodeArgs, {
    cwd: opts.cwd ?? ROOT,
    env,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  })
  const ms = performance.now() - t0
  let rssMb
  try {
    rssMb = Number(readFileSync(rssFile, 'utf8')) / 1024
  } catch {
    rssMb = undefined
  }
  rmSync(dir, { recursive: true, force: true })
  if (opts.expectExit !== undefined && r.status !== opts.expectExit) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${r.status}, expected ${opts.expectExit}:\n${r.stderr}\n${r.stdout.slice(0, 2000)}`,
    )
  }
  return { ms, rssMb, stdout: r.stdout, stderr: r.stderr, status: r.status }
}

/** Runs each case `runs` times, interleaved so that machine load hits all cases alike. */
export function interleaved(cases, runs) {
  const times = Object.fromEntries(Object.keys(cases).map((k) => [k, []]))
  for (let i = 0; i < runs; i++) {
    for (const [name, fn] of Object.entries(cases)) times[name].push(fn())
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]))
}

export const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`)
export const verdict = (ok) => (ok ? 'met' : '**missed**')

/** Prints a bench section (title, table rows, notes) to the terminal. */
export function printSection(section) {
  console.log(`## ${section.title}`)
  for (const row of section.rows) console.log(`  ${row.join('  |  ')}`)
  for (const n of section.notes ?? []) console.log(`  ${n}`)
}
