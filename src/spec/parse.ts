/** Reads a YAML file into a schema-checked value, with every problem positioned. */
import type * as z from 'zod'
import { loadYamlFile, parseYamlSource, type YamlFile, type YamlLimits } from './yaml-file.js'
import { inlineSecretProblems, detectSecret } from './inline-secrets.js'
import { schemaProblems } from './locate.js'
import type { Problem } from './problems.js'

export interface Parsed<T> {
  yaml: YamlFile
  value: T
}
export type ParseResult<T> =
  { ok: true; parsed: Parsed<T> } | { ok: false; problems: Problem[]; yaml?: YamlFile }

/** Schema-checks already-loaded YAML. Inline secrets are reported first and block the rest. */
export function checkYaml<S extends z.ZodType>(schema: S, yaml: YamlFile): ParseResult<z.output<S>> {
  const secrets = inlineSecretProblems(yaml.file, yaml.doc, yaml.lineCounter)
  const result = schema.safeParse(yaml.data)
  const problems = [...secrets]
  if (!result.success) {
    const isSecretLike = (s: string) => detectSecret(s) !== undefined
    problems.push(
      ...schemaProblems(
        schema,
        result.error.issues,
        yaml.file,
        yaml.doc,
        yaml.lineCounter,
        yaml.data,
        isSecretLike,
      ),
    )
  }
  if (problems.length > 0 || !result.success) return { ok: false, problems, yaml }
  return { ok: true, parsed: { yaml, value: result.data } }
}

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
