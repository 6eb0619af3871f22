import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { schemaFiles } from '../../src/spec/schema-files.js'
import { PROJECT_ROOT } from '../helpers/cli.js'

describe('generated schema files', () => {
  for (const [path, expected] of Object.entries(schemaFiles())) {
    it(`${path} matches src/spec/schema.ts (run "npm run schema" if this fails)`, () => {
      const committed = readFileSync(join(PROJECT_ROOT, path), 'utf8')
      expect(committed === expected, `${path} is stale: run "npm run schema" and commit the result`).toBe(
        true,
      )
    })
  }

  it('publishes a draft 2020-12 schema that forbids unknown top-level fields', () => {
    const schema = JSON.parse(schemaFiles()['recovery-specs/schema/recovery-request.v1.json']!)
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema')
    expect(schema.additionalProperties).toBe(false)
    expect(schema.required).toEqual(
      expect.arrayContaining([
        'apiVersion',
        'kind',
        'id',
        'requester',
        'reason',
        'ticket',
        'created',
        'expires',
      ]),
    )
  })
})
