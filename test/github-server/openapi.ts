/**
 * Checks the test server's traffic against GitHub's published OpenAPI description (the subset
 * committed in test/fixtures/github-openapi-subset.json by scripts/refresh-github-openapi.mjs).
 */
import { readFileSync } from 'node:fs'
import { Ajv, type ValidateFunction } from 'ajv'
import addFormatsModule from 'ajv-formats'

const FIXTURE = new URL('../fixtures/github-openapi-subset.json', import.meta.url)
const ROOT_ID = 'https://nhi-recover.test/github-openapi-subset.json'

// ajv-formats is CommonJS with a default export; under NodeNext its type is the module object.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
interface OpenApiDoc {
  paths: Record<string, Record<string, Operation>>
  components: Record<string, Record<string, Json>>
}
interface Operation {
  operationId: string
  requestBody?: { content?: Record<string, { schema: Json }> }
  responses: Record<string, { $ref?: string; content?: Record<string, { schema: Json }> }>
}

/**
 * OpenAPI 3.0 marks null with `nullable: true`, which plain JSON Schema (and ajv, unless a
 * `type` sits beside it) does not understand. Rewrites every such schema to anyOf [null, it].
 */
export function nullableToJsonSchema(node: Json): Json {
  if (Array.isArray(node)) return node.map(nullableToJsonSchema)
  if (!node || typeof node !== 'object') return node
  const out: Record<string, Json> = {}
  for (const [k, v] of Object.entries(node)) if (k !== 'nullable') out[k] = nullableToJsonSchema(v)
  if (node.nullable === true) return { anyOf: [{ type: 'null' }, out] }
  return out
}

/** A JSON pointer fragment for a path of keys. */
function pointer(...keys: string[]): string {
  return '#/' + keys.map((k) => k.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')
}

export interface OperationMatch {
  operationId: string
  template: string
  method: string
  params: Record<string, string>
}

/** Validates requests and responses of the operations in the fixture. */
export class OpenApiValidator {
  readonly #ajv: Ajv
  readonly #doc: OpenApiDoc
  readonly #routes: { method: string; template: string; regex: RegExp; names: string[] }[] = []
  readonly #compiled = new Map<string, ValidateFunction>()

  constructor() {
    this.#doc = JSON.parse(readFileSync(FIXTURE, 'utf8')) as OpenApiDoc
    // strict is off only because the document carries OpenAPI keywords (paths, operationId…)
    // that are not JSON Schema; formats are still checked.
    this.#ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true })
    addFormats(this.#ajv)
    this.#ajv.addSchema({ $id: ROOT_ID, ...(nullableToJsonSchema(this.#doc as unknown as Json) as object) })
    for (const [template, methods] of Object.entries(this.#doc.paths)) {
      const names: string[] = []
      const source = template.replace(/\{([^}]+)\}/g, (_m, name: string) => {
        names.push(name)
        return '([^/]+)'
      })
      for (const method of Object.keys(methods)) {
        this.#routes.push({ method, template, regex: new RegExp(`^${source}$`), names })
      }
    }
  }

  /** The described operation that a method and URL path stand for, if any. */
  match(method: string, path: string): OperationMatch | undefined {
    const m = method.toLowerCase()
    for (const r of this.#routes) {
      if (r.method !== m) continue
      const hit = r.regex.exec(path)
      if (!hit) continue
      const params = Object.fromEntries(r.names.map((n, i) => [n, decodeURIComponent(hit[i + 1]!)]))
      const operationId = this.#doc.paths[r.template]![m]!.operationId
      return { operationId, template: r.template, method: m, params }
    }
    return undefined
  }

  #validator(ref: string): ValidateFunction {
    let fn = this.#compiled.get(ref)
    if (!fn) {
      fn = this.#ajv.compile({ $ref: ROOT_ID + ref })
      this.#compiled.set(ref, fn)
    }
    return fn
  }

  #errors(fn: ValidateFunction, value: unknown): string[] {
    if (fn(value)) return []
    return (fn.errors ?? []).slice(0, 10).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`)
  }

  /** Problems with a response body; an undescribed status is checked as GitHub's basic-error. */
  validateResponse(op: OperationMatch, status: number, body: unknown): string[] {
    const responses = this.#doc.paths[op.template]![op.method]!.responses
    const key = String(status)
    let response = responses[key]
    let ref = pointer('paths', op.template, op.method, 'responses', key)
    if (response?.$ref) {
      ref = response.$ref
      const name = response.$ref.split('/').pop()!
      response = this.#doc.components.responses![name] as typeof response
    }
    if (!response) {
      // GitHub sends these on any operation, though the description lists them only on some.
      if (status >= 500 || status === 401 || status === 403 || status === 404) {
        return this.#errors(this.#validator(pointer('components', 'schemas', 'basic-error')), body)
      }
      return [`status ${status} is not described for ${op.operationId}`]
    }
    if (!response.content) {
      return body === undefined ? [] : [`status ${status} of ${op.operationId} has no body, but one was sent`]
    }
    return this.#errors(this.#validator(`${ref}/content/application~1json/schema`), body)
  }

  /** Problems with a request body sent by the client under test. */
  validateRequest(op: OperationMatch, body: unknown): string[] {
    const rb = this.#doc.paths[op.template]![op.method]!.requestBody
    if (!rb?.content) return []
    const ref = pointer(
      'paths',
      op.template,
      op.method,
      'requestBody',
      'content',
      'application/json',
      'schema',
    )
    return this.#errors(this.#validator(ref), body)
  }
}
