/** Reads a YAML file into a schema-checked value, with every problem positioned. */
import type * as z from 'zod'
import { loadYamlFile, parseYamlSource, type YamlFile, type YamlLimits } from './yaml-file.js'
import { detectSecret, inlineSecretProblem, inlineSecretProblems } from './inline-secrets.js'
import { schemaProblems } from './locate.js'
import { byPosition, capProblems, type Problem } from './problems.js'

export interface Parsed<T> {
  yaml: YamlFile
  value: T
}
export type ParseResult<T> =
  { ok: true; parsed: Parsed<T> } | { ok: false; problems: Problem[]; yaml?: YamlFile }

/** Credentials anywhere in the file: keys, values, comments, anchor, alias and tag names. */
function secretProblems(yaml: YamlFile): Problem[] {
  const out = inlineSecretProblems(yaml.file, yaml.doc, yaml.lineCounter)
  for (const c of yaml.comments) {
    const kind = detectSecret(c.text)
    if (kind) out.push(inlineSecretProblem(yaml.file, yaml.lineCounter.linePos(c.offset), c.where, kind))
  }
  return out
}

/** Schema-checks already-loaded YAML. Inline secrets block the value even when the schema passes. */
export function checkYaml<S extends z.ZodType>(schema: S, yaml: YamlFile): ParseResult<z.output<S>> {
  const problems = secretProblems(yaml)
  const result = schema.safeParse(yaml.data)
  if (!result.success) {
    problems.push(
      ...schemaProblems(schema, result.error.issues, yaml.file, yaml.doc, yaml.lineCounter, yaml.data),
    )
  }
  if (problems.length > 0 || !result.success) {
    return { ok: false, problems: capProblems(problems.sort(byPosition), yaml.file), yaml }
  }
  return { ok: true, parsed: { yaml, value: result.data } }
}

/** Loads, parses and schema-checks one file inside the repo. */
export function parseFile<S extends z.ZodType>(
  schema: S,
  absPath: string,
  file: string,
  repoRoot: string,
  limits: YamlLimits,
): ParseResult<z.output<S>> {
  const loaded = loadYamlFile(absPath, file, repoRoot, limits)
  if (!loaded.ok) return { ok: false, problems: loaded.problems }
  return checkYaml(schema, loaded.value)
}

/** Parses and schema-checks YAML text that is not (yet) a file, e.g. a spec about to be written. */
export function parseSource<S extends z.ZodType>(
  schema: S,
  source: string,
  file: string,
  limits: YamlLimits,
): ParseResult<z.output<S>> {
  const loaded = parseYamlSource(source, file, '', limits)
  if (!loaded.ok) return { ok: false, problems: loaded.problems }
  return checkYaml(schema, loaded.value)
}
