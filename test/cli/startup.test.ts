import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { BIN, PROJECT_ROOT } from '../helpers/cli.js'
import { execa } from 'execa'

const HEAVY =
  /node_modules\/(ink|react|react-reconciler|@aws-sdk|@smithy|@octokit|node-vault|simple-git|execa|pg)\//

async function loadedModules(args: string[]): Promise<{ modules: string[]; exitCode: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'nhi-trace-'))
  const file = join(dir, 'modules.txt')
  try {
    const r = await execa(
      'node',
      ['--require', join(PROJECT_ROOT, 'test/helpers/trace-modules.cjs'), BIN, ...args],
      { cwd: PROJECT_ROOT, env: { NHI_TRACE_FILE: file }, reject: false, stdin: 'ignore' },
    )
    return { modules: readFileSync(file, 'utf8').split('\n').filter(Boolean), exitCode: r.exitCode ?? -1 }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('startup', () => {
  it('--version loads no heavy SDK', async () => {
    const { modules, exitCode } = await loadedModules(['--version'])
    expect(exitCode).toBe(0)
    expect(
      modules.some((m) => m.includes('dist/main.js')),
      'the trace saw the CLI entry',
    ).toBe(true)
    expect(modules.filter((m) => HEAVY.test(m))).toEqual([])
  })

  it('validate loads no heavy SDK (AWS, Octokit, ink/React, node-vault)', async () => {
    const { modules, exitCode } = await loadedModules([
      'validate',
      '--config',
      'recovery-specs/examples/nhi-recover.yaml',
      'recovery-specs/examples',
    ])
    expect(exitCode).toBe(0)
    expect(
      modules.some((m) => m.includes('dist/commands/validate.js')),
      'the trace saw the command',
    ).toBe(true)
    expect(modules.filter((m) => HEAVY.test(m))).toEqual([])
  })

  it('the trace does see a heavy SDK when one is loaded, so the check above can fail', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nhi-trace-'))
    const file = join(dir, 'modules.txt')
    await execa(
      'node',
      [
        '--require',
        join(PROJECT_ROOT, 'test/helpers/trace-modules.cjs'),
        '--input-type=module',
        '-e',
        "await import('ink')",
      ],
      { cwd: PROJECT_ROOT, env: { NHI_TRACE_FILE: file } },
    )
    const modules = readFileSync(file, 'utf8').split('\n')
    rmSync(dir, { recursive: true, force: true })
    expect(modules.some((m) => HEAVY.test(m))).toBe(true)
  })
})
