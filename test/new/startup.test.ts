import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { BIN, PROJECT_ROOT } from '../helpers/cli.js'
import { initRepo } from '../../src/init/scaffold.js'

const INK = /node_modules\/(ink|ink-text-input|ink-select-input|react|react-reconciler)\//
const repo = mkdtempSync(join(tmpdir(), 'nhi-new-startup-'))
initRepo({ dir: repo, force: false, version: '0.1.0', securityTeam: '@acme/security' })
afterAll(() => rmSync(repo, { recursive: true, force: true }))

/** Every module a CLI run loads, recorded by the shared trace preload. */
async function loadedModules(args: string[]): Promise<{ modules: string[]; exitCode: number }> {
  const file = join(repo, `modules-${Math.random().toString(16).slice(2)}.txt`)
  const r = await execa(
    'node',
    ['--require', join(PROJECT_ROOT, 'test/helpers/trace-modules.cjs'), BIN, ...args],
    {
      cwd: repo,
      env: { NHI_TRACE_FILE: file, GIT_CONFIG_GLOBAL: '/dev/null' },
      reject: false,
      stdin: 'ignore',
    },
  )
  const modules = readFileSync(file, 'utf8').split('\n').filter(Boolean)
  rmSync(file)
  return { modules, exitCode: r.exitCode ?? -1 }
}

describe('new loads ink and React only for the wizard', () => {
  it('new --help loads neither', async () => {
    const { modules, exitCode } = await loadedModules(['new', '--help'])
    expect(exitCode).toBe(0)
    expect(modules.filter((m) => INK.test(m))).toEqual([])
  })

  it('new with flags loads neither, and the trace did see the command run', async () => {
    const { modules, exitCode } = await loadedModules([
      ...['new', '--identity', 'svc-key', '--type', 'api-key', '--owner', 'team-a', '--risk', 'low'],
      ...['--provider', 'local', '--mechanism', 'local', '--path', 'svc/key', '--action', 'rotate'],
      ...['--reason', 'Rotate after the incident.', '--ticket', 'INC-1', '--requester', 'alice'],
      ...['--requester-kind', 'human'],
    ])
    expect(exitCode).toBe(0)
    expect(modules.some((m) => m.includes('dist/commands/new.js'))).toBe(true)
    expect(modules.filter((m) => INK.test(m))).toEqual([])
  })
})
