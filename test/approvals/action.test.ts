/**
 * The composite action: its shape, and its command step run for real by bash with a stand-in
 * nhi-recover on PATH, so the argument splitting and the token hand-over are what they claim.
 */
import { describe, expect, it } from 'vitest'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { PROJECT_ROOT } from '../helpers/cli.js'

interface Step {
  uses?: string
  run?: string
  shell?: string
  env?: Record<string, string>
}
const action = parse(readFileSync(join(PROJECT_ROOT, '.github/actions/nhi-recover/action.yml'), 'utf8')) as {
  inputs: Record<string, { required?: boolean; default?: string }>
  runs: { using: string; steps: Step[] }
}

/** Runs the command step's script as the runner would, with `env` as the step's evaluated env. */
function runStep(env: Record<string, string>): { status: number; out: string } {
  const step = action.runs.steps.at(-1)!
  const bin = mkdtempSync(join(tmpdir(), 'nhi-action-'))
  // The stand-in prints its arguments one per line and the token variable it was given.
  writeFileSync(
    join(bin, 'nhi-recover'),
    '#!/bin/bash\nprintf "arg:%s\\n" "$@"\necho "token:${GITHUB_TOKEN:-}${MY_TOKEN:-}"\necho "leftover:${NHI_RECOVER_TOKEN:-}"\n',
  )
  chmodSync(join(bin, 'nhi-recover'), 0o755)
  try {
    const out = execFileSync('bash', ['-c', step.run!], {
      env: { PATH: `${bin}:${process.env.PATH}`, ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    return { status: 0, out }
  } catch (err) {
    const e = err as { status: number; stdout: string }
    return { status: e.status, out: e.stdout }
  }
}

describe('the nhi-recover composite action', () => {
  it('is a composite action that sets up Node, installs the CLI and runs one command', () => {
    expect(action.runs.using).toBe('composite')
    expect(action.runs.steps.map((s) => s.uses ?? s.run!.split('\n')[0])).toEqual([
      'actions/setup-node@v4',
      'npm install --global --no-audit --no-fund "nhi-recover@${NHI_RECOVER_VERSION}"',
      'set -euo pipefail -f',
    ])
    expect(action.inputs.command!.required).toBe(true)
    expect(action.inputs.token!.default).toBe('${{ github.token }}')
  })

  it('never puts an input into script text (no ${{ }} inside run)', () => {
    for (const s of action.runs.steps) if (s.run) expect(s.run).not.toContain('${{')
  })

  it('passes the command as separate arguments and the token in the configured variable', () => {
    const r = runStep({
      NHI_RECOVER_COMMAND: 'approvals check --pr 42',
      NHI_RECOVER_TOKEN: 'tok-123',
      NHI_RECOVER_TOKEN_ENV: 'GITHUB_TOKEN',
    })
    expect(r.status).toBe(0)
    expect(r.out).toBe('arg:approvals\narg:check\narg:--pr\narg:42\ntoken:tok-123\nleftover:\n')
    const other = runStep({
      NHI_RECOVER_COMMAND: 'plan',
      NHI_RECOVER_TOKEN: 'tok-456',
      NHI_RECOVER_TOKEN_ENV: 'MY_TOKEN',
    })
    expect(other.out).toBe('arg:plan\ntoken:tok-456\nleftover:\n')
  })

  it('does not expand shell syntax in the command', () => {
    const r = runStep({
      NHI_RECOVER_COMMAND: 'validate $(touch /tmp/nhi-pwned) *',
      NHI_RECOVER_TOKEN: 't',
      NHI_RECOVER_TOKEN_ENV: 'GITHUB_TOKEN',
    })
    expect(r.out).toContain('arg:$(touch\narg:/tmp/nhi-pwned)\narg:*\n')
  })

  it('refuses a token-env that is not a variable name', () => {
    const r = runStep({
      NHI_RECOVER_COMMAND: 'plan',
      NHI_RECOVER_TOKEN: 't',
      NHI_RECOVER_TOKEN_ENV: 'X;rm -rf /',
    })
    expect(r.status).toBe(2)
    expect(r.out).toContain('::error::token-env must be an environment variable name')
  })
})
