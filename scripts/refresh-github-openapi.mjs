// Refreshes test/fixtures/github-openapi-subset.json: the operations of GitHub's REST API that
// nhi-recover calls, with every component they reference, cut from GitHub's published OpenAPI
// description. The full description ships in @octokit/openapi (a 385 MB package), so this packs
// the package into a temp dir, takes the one file, and never makes it a dependency.
//
//   node scripts/refresh-github-openapi.mjs [VERSION]
//
// VERSION defaults to the description that the installed @octokit/openapi-types was built from,
// so the fixture matches the types Octokit gives us.
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const OUT = join(root, 'test/fixtures/github-openapi-subset.json')
const SOURCE_FILE = 'package/generated/api.github.com.json'

/** Every GitHub operation nhi-recover or its test server uses. */
export const OPERATIONS = [
  ['get', '/repos/{owner}/{repo}/pulls/{pull_number}'],
  ['get', '/repos/{owner}/{repo}/pulls/{pull_number}/reviews'],
  ['get', '/repos/{owner}/{repo}/pulls/{pull_number}/commits'],
  ['get', '/repos/{owner}/{repo}/commits/{commit_sha}/pulls'],
  ['get', '/orgs/{org}/teams/{team_slug}/memberships/{username}'],
  ['get', '/repos/{owner}/{repo}/issues/{issue_number}/comments'],
  ['post', '/repos/{owner}/{repo}/issues/{issue_number}/comments'],
  ['patch', '/repos/{owner}/{repo}/issues/comments/{comment_id}'],
  ['post', '/repos/{owner}/{repo}/statuses/{sha}'],
  ['get', '/repos/{owner}/{repo}/commits/{ref}/statuses'],
]

// Keywords that only document; dropping them keeps the fixture small and changes no validation.
const DOC_KEYWORDS = new Set(['description', 'summary', 'example', 'examples', 'externalDocs', 'title'])
const SCHEMA_MAPS = new Set(['properties', 'patternProperties'])
const SCHEMA_ONE = new Set(['items', 'additionalProperties', 'not'])
const SCHEMA_LIST = new Set(['allOf', 'anyOf', 'oneOf'])

function stripSchema(schema) {
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return schema
  const out = {}
  for (const [k, v] of Object.entries(schema)) {
    if (DOC_KEYWORDS.has(k) || k.startsWith('x-')) continue
    if (SCHEMA_MAPS.has(k))
      out[k] = Object.fromEntries(Object.entries(v).map(([n, s]) => [n, stripSchema(s)]))
    else if (SCHEMA_ONE.has(k)) out[k] = stripSchema(v)
    else if (SCHEMA_LIST.has(k)) out[k] = v.map(stripSchema)
    else out[k] = v
  }
  return out
}

function stripContent(content) {
  if (!content) return undefined
  return Object.fromEntries(
    Object.entries(content).map(([mime, media]) => [mime, { schema: stripSchema(media.schema) }]),
  )
}

function stripResponse(r) {
  if (r.$ref) return { $ref: r.$ref }
  const out = {}
  if (r.headers)
    out.headers = Object.fromEntries(Object.entries(r.headers).map(([n, h]) => [n, stripHeader(h)]))
  if (r.content) out.content = stripContent(r.content)
  return out
}

function stripHeader(h) {
  if (h.$ref) return { $ref: h.$ref }
  return { ...(h.required ? { required: true } : {}), schema: stripSchema(h.schema) }
}

function stripParameter(p) {
  if (p.$ref) return { $ref: p.$ref }
  const { name, in: where, required, schema } = p
  return { name, in: where, ...(required ? { required } : {}), schema: stripSchema(schema) }
}

function stripOperation(op) {
  return {
    operationId: op.operationId,
    ...(op.parameters ? { parameters: op.parameters.map(stripParameter) } : {}),
    ...(op.requestBody
      ? {
          requestBody: op.requestBody.$ref
            ? { $ref: op.requestBody.$ref }
            : { required: op.requestBody.required ?? false, content: stripContent(op.requestBody.content) },
        }
      : {}),
    responses: Object.fromEntries(Object.entries(op.responses).map(([s, r]) => [s, stripResponse(r)])),
  }
}

const STRIPPERS = {
  schemas: stripSchema,
  responses: stripResponse,
  parameters: stripParameter,
  headers: stripHeader,
}

/** Cuts the subset: the operations plus, transitively, every component they $ref. */
export function subset(full, operations = OPERATIONS) {
  const paths = {}
  for (const [method, path] of operations) {
    const op = full.paths[path]?.[method]
    if (!op) throw new Error(`${method.toUpperCase()} ${path} is not in the description`)
    paths[path] ??= {}
    paths[path][method] = stripOperation(op)
  }
  const components = {}
  const pending = []
  const seen = new Set()
  const collect = (node) => {
    if (Array.isArray(node)) return node.forEach(collect)
    if (!node || typeof node !== 'object') return
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string' && !seen.has(v)) {
        seen.add(v)
        pending.push(v)
      } else collect(v)
    }
  }
  collect(paths)
  while (pending.length > 0) {
    const ref = pending.shift()
    const m = /^#\/components\/([^/]+)\/([^/]+)$/.exec(ref)
    if (!m) throw new Error(`unsupported $ref ${ref}`)
    const [, kind, name] = m
    const strip = STRIPPERS[kind]
    if (!strip) throw new Error(`unsupported component kind in ${ref}`)
    const value = strip(full.components[kind][name])
    components[kind] ??= {}
    components[kind][name] = value
    collect(value)
  }
  for (const kind of Object.keys(components)) {
    components[kind] = Object.fromEntries(
      Object.entries(components[kind]).sort(([a], [b]) => a.localeCompare(b)),
    )
  }
  return {
    openapi: full.openapi,
    info: { title: full.info.title, version: full.info.version },
    paths,
    components,
  }
}

function installedVersion() {
  const pkg = JSON.parse(readFileSync(join(root, 'node_modules/@octokit/openapi-types/package.json'), 'utf8'))
  return pkg.octokit['openapi-version']
}

async function main() {
  const version = process.argv[2] ?? installedVersion()
  const dir = mkdtempSync(join(tmpdir(), 'nhi-openapi-'))
  try {
    execFileSync('npm', ['pack', `@octokit/openapi@${version}`, '--pack-destination', dir, '--silent'], {
      stdio: ['ignore', 'ignore', 'inherit'],
    })
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'))
    if (!tarball) throw new Error('npm pack produced no tarball')
    execFileSync('tar', ['-xzf', join(dir, tarball), '-C', dir, SOURCE_FILE])
    const full = JSON.parse(readFileSync(join(dir, SOURCE_FILE), 'utf8'))
    const out = {
      'x-source': `@octokit/openapi@${version} ${SOURCE_FILE.replace('package/', '')}`,
      ...subset(full),
    }
    writeFileSync(OUT, JSON.stringify(out, null, 1) + '\n')
    const counts = Object.entries(out.components).map(([k, v]) => `${Object.keys(v).length} ${k}`)
    console.log(`wrote ${OUT}: ${OPERATIONS.length} operations, ${counts.join(', ')}`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main()
