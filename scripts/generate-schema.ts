// Writes the published JSON Schemas and the field reference from the one schema in
// src/spec/schema.ts. test/spec/schema-files.test.ts fails when the committed files are stale.
import { writeFileSync } from 'node:fs'
import { schemaFiles } from '../src/spec/schema-files.js'

for (const [path, content] of Object.entries(schemaFiles())) {
  writeFileSync(new URL(`../${path}`, import.meta.url), content)
  console.log(`wrote ${path}`)
}
