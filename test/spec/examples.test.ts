import { readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { validateSpecs } from '../../src/spec/validate.js'
import { EXAMPLES } from '../helpers/temp-repo.js'
import { IDENTITY_TYPES, MECHANISMS } from '../../src/spec/schema.js'

describe('bundled examples', () => {
  const result = validateSpecs({
    cwd: EXAMPLES,
    paths: [EXAMPLES],
    configPath: 'nhi-recover.yaml',
    now: new Date(),
  })

  it('are all valid under the example config', () => {
    expect(result.problems).toEqual([])
    expect(result.specs.length).toBe(
      readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml') && f !== 'nhi-recover.yaml').length,
    )
  })

  it('cover every identity type and every mechanism', async () => {
    const { loadRepoConfig } = await import('../../src/config/repo.js')
    const { parseFile } = await import('../../src/spec/parse.js')
    const { RecoveryRequest } = await import('../../src/spec/schema.js')
    const loaded = loadRepoConfig(EXAMPLES, 'nhi-recover.yaml')
    const specs = result.specs.map((s) => {
      const r = parseFile(
        RecoveryRequest,
        `${EXAMPLES}/${s.file}`,
        s.file,
        loaded.repoRoot,
        loaded.config.limits,
      )
      if (!r.ok) throw new Error(`${s.file} did not parse`)
      return r.parsed.value
    })
    expect(new Set(specs.map((s) => s.identity.type))).toEqual(new Set(IDENTITY_TYPES))
    expect(new Set(specs.map((s) => s.target.mechanism))).toEqual(new Set(MECHANISMS))
  })
})

describe('example files', () => {
  it('each carry a yaml-language-server $schema line that points at the published schema', async () => {
    const { readFileSync, existsSync } = await import('node:fs')
    const { resolve } = await import('node:path')
    for (const name of readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml'))) {
      const first = readFileSync(`${EXAMPLES}/${name}`, 'utf8').split('\n')[0]!
      const m = /^# yaml-language-server: \$schema=(\S+)$/.exec(first)
      expect(m, `${name} lacks the $schema line`).not.toBeNull()
      const expected = name === 'nhi-recover.yaml' ? 'repo-config.v1.json' : 'recovery-request.v1.json'
      expect(m![1]!.endsWith(expected), `${name} points at ${m![1]}`).toBe(true)
      expect(existsSync(resolve(EXAMPLES, m![1]!))).toBe(true)
    }
  })
})
