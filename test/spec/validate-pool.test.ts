import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { defaultWorkers, validateSpecsParallel } from '../../src/spec/validate-pool.js'
import { validateSpecs } from '../../src/spec/validate.js'
import { EXAMPLES, tempRepo, type TempRepo } from '../helpers/temp-repo.js'

describe('validate across worker threads', () => {
  let repo: TempRepo
  afterEach(() => repo?.cleanup())

  it('gives exactly the inline result, including a duplicate id split across workers and invalid specs', async () => {
    // Given 40 specs where the first and the last share an id and two are broken
    repo = tempRepo()
    const template = readFileSync(join(EXAMPLES, 'vault-kv-api-key.yaml'), 'utf8')
    for (let i = 0; i < 40; i++) {
      const id = i === 39 ? 'rr-bench-0' : `rr-bench-${i}`
      let text = template.replace('id: rr-payments-kv-api-key', `id: ${id}`)
      if (i === 7) text = text.replace('action: rotate', 'action: explode')
      if (i === 20) text += 'unknown: field\n'
      repo.write(`recovery-specs/${String(i).padStart(2, '0')}.yaml`, text)
    }
    const opts = { cwd: repo.root, paths: [], now: new Date('2026-11-22T12:00:00Z') }
    // When validated inline and with 3 workers
    const inline = validateSpecs(opts)
    const parallel = await validateSpecsParallel({ ...opts, workers: 3 })
    // Then both agree, problem for problem
    expect(parallel).toEqual(inline)
    expect(inline.invalid).toBe(4)
    expect(inline.problems.map((p) => p.code).sort()).toEqual([
      'DUPLICATE_ID',
      'DUPLICATE_ID',
      'INVALID_VALUE',
      'UNKNOWN_FIELD',
    ])
  })

  it('works inline for small runs and honours NHI_RECOVER_WORKERS', () => {
    expect(defaultWorkers(10, {})).toBe(0)
    expect(defaultWorkers(5000, {})).toBeGreaterThanOrEqual(1)
    expect(defaultWorkers(5000, { NHI_RECOVER_WORKERS: '1' })).toBe(1)
    expect(defaultWorkers(5000, { NHI_RECOVER_WORKERS: 'lots' })).toBeGreaterThanOrEqual(1)
  })
})
