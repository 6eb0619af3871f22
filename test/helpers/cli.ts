/** Runs the built CLI as a user would: a real process, real files, no mocks. */
import { execa, type Result } from 'execa'
import { fileURLToPath } from 'node:url'

export const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url))
export const PROJECT_ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface CliRun {
  exitCode: number
  stdout: string
  stderr: string
}

export async function runCli(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string | undefined>; input?: string; timeoutMs?: number } = {},
): Promise<CliRun> {
  const r: Result = await execa('node', [BIN, ...args], {
    cwd: opts.cwd ?? PROJECT_ROOT,
    env: { GITHUB_ACTIONS: '', CI: 'true', NO_COLOR: '1', ...opts.env },
    reject: false,
    ...(opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input }),
    timeout: opts.timeoutMs ?? 20_000,
  })
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) }
}

/** Parses the --json envelope, failing loudly when stdout is not exactly one JSON document. */
export function envelope<T = unknown>(
  run: CliRun,
): {
  ok: boolean
  exitCode: number
  command: string
  result?: T
  error?: { kind: string; code: string; message: string; next?: string }
} {
  return JSON.parse(run.stdout)
}
