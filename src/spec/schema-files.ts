import { jsonSchemas } from './schema.js'
import { renderReference } from './reference.js'

/** Every generated file, keyed by its path in the repo. */
export function schemaFiles(): Record<string, string> {
  const schemas = jsonSchemas()
  const out: Record<string, string> = {}
  for (const [name, schema] of Object.entries(schemas)) {
    out[`recovery-specs/schema/${name}`] = JSON.stringify(schema, null, 2) + '\n'
  }
  out['docs/spec-reference.md'] = renderReference(schemas)
  return out
}
