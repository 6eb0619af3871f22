/**
 * Property tests: validate never throws an unexpected error, whatever the bytes or YAML, and
 * always answers with well-formed problems or a value. Also: the nesting limit is exact.
 */
import fc from 'fast-check'
import { stringify } from 'yaml'
import { parse as parseYaml } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadRepoConfig, type LoadedConfig } from '../../src/config/repo.js'
import {
  ACTIONS,
  DEFAULT_LIMITS,
  IDENTITY_TYPES,
  MECHANISMS,
  RecoveryRequest,
  RISKS,
} from '../../src/spec/schema.js'
import { parseSource } from '../../src/spec/parse.js'
import { validateSpecFile, validateSpecs } from '../../src/spec/validate.js'
import { loadYamlFile, parseYamlSource } from '../../src/spec/yaml-file.js'
import type { Problem } from '../../src/spec/problems.js'
import { tempRepo, type TempRepo } from '../helpers/temp-repo.js'
import { NOW, VALID_SPEC } from './fixtures.js'

let repo: TempRepo
let loaded: LoadedConfig
const FILE = 'recovery-specs/fuzz.yaml'

beforeAll(() => {
  repo = tempRepo()
  loaded = loadRepoConfig(repo.root)
})
afterAll(() => repo.cleanup())

/** Every problem names this file, a position (0:0 for the whole file), a code and words. */
function expectWellFormed(problems: Problem[], file: string): void {
  for (const p of problems) {
    expect(p.file).toBe(file)
    expect(Number.isInteger(p.line) && p.line >= 0).toBe(true)
    expect(Number.isInteger(p.col) && p.col >= 0).toBe(true)
    expect(p.line === 0).toBe(p.col === 0)
    expect(p.code).toMatch(/^[A-Z][A-Z0-9_]+$/)
    expect(p.message.length).toBeGreaterThan(3)
  }
}

/** Writes the input as the spec file and runs the file-level checks and the loader; true when it parsed. */
function validateBytes(bytes: Uint8Array | string): boolean {
  const abs = repo.write(FILE, typeof bytes === 'string' ? bytes : Buffer.from(bytes))
  const checked = validateSpecFile(abs, FILE, loaded, NOW)
  expectWellFormed(checked.problems, FILE)
  // A spec either parsed (then its problems are semantic only) or failed with at least one problem.
  if (!checked.parsed) expect(checked.problems.length).toBeGreaterThan(0)
  const yaml = loadYamlFile(abs, FILE, repo.root, loaded.config.limits)
  if (!yaml.ok) {
    expect(yaml.problems.length).toBeGreaterThan(0)
    expectWellFormed(yaml.problems, FILE)
  }
  return checked.parsed !== undefined
}

const YAML_CHARS = [...':-?[]{},#&*!|>\'"%@`\\ \t\n\r.~=+/0123456789abcxyzAZ', '\u00e9', '\u2028', '\ufeff']
const yamlish = fc.string({ unit: fc.constantFrom(...YAML_CHARS), maxLength: 400 })

describe('validate never throws', () => {
  it('on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2048 }), (b) => {
        validateBytes(b)
      }),
      { numRuns: 200 },
    )
  })

  it('on arbitrary Unicode text and on YAML punctuation soup', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 500 }), yamlish), (t) => {
        validateBytes(t)
      }),
      { numRuns: 250 },
    )
  })

  it('on byte-level mutations of a valid spec', () => {
    const base = Buffer.from(VALID_SPEC)
    const edit = fc.record({
      at: fc.nat({ max: base.length }),
      del: fc.nat({ max: 4 }),
      insert: fc.oneof(
        fc.uint8Array({ maxLength: 4 }),
        fc.constantFrom(...YAML_CHARS).map((c) => Buffer.from(c)),
      ),
    })
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 6 }), (edits) => {
        let bytes = base
        for (const e of edits) {
          const at = Math.min(e.at, bytes.length)
          bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(e.insert), bytes.subarray(at + e.del)])
        }
        validateBytes(bytes)
      }),
      { numRuns: 300 },
    )
  })

  it('on arbitrary values rendered as YAML in any style', () => {
    const style = fc.record({
      indent: fc.integer({ min: 1, max: 6 }),
      collectionStyle: fc.constantFrom('any', 'block', 'flow') as fc.Arbitrary<'any' | 'block' | 'flow'>,
      defaultStringType: fc.constantFrom(
        'PLAIN',
        'QUOTE_DOUBLE',
        'QUOTE_SINGLE',
        'BLOCK_LITERAL',
      ) as fc.Arbitrary<'PLAIN' | 'QUOTE_DOUBLE' | 'QUOTE_SINGLE' | 'BLOCK_LITERAL'>,
    })
    const value = fc.oneof(
      fc.jsonValue({ maxDepth: 6 }),
      fc.anything({ maxDepth: 4, withMap: true, withSet: true, withDate: true }),
    )
    fc.assert(
      fc.property(value, style, (v, opts) => {
        let text: unknown
        try {
          text = stringify(v, opts)
        } catch {
          return // the yaml package cannot render this value; nothing of ours to test
        }
        if (typeof text !== 'string') return // e.g. undefined renders as nothing
        const parsed = parseSource(RecoveryRequest, text, FILE, DEFAULT_LIMITS)
        if (!parsed.ok) expectWellFormed(parsed.problems, FILE)
        validateBytes(text)
      }),
      { numRuns: 200 },
    )
  })

  it('on structural mutations of a valid spec, semantic checks included', () => {
    const base = parseYaml(VALID_SPEC) as Record<string, unknown>
    const date = fc
      .date({ min: new Date('1970-01-01'), max: new Date('2200-01-01'), noInvalidDate: true })
      .map((d) => d.toISOString())
    const names = fc.constantFrom('bao', 'local', 'aws-sm', 'aws-iam', 'constructor', 'tostring', 'nope')
    // Plausible values per field, so that many mutants pass the schema and reach the semantic
    // checks; now and then anything at all, or the field removed.
    const fields: Array<[string[], fc.Arbitrary<unknown>]> = [
      [['target', 'provider'], names],
      [['target', 'secretProvider'], names],
      [['target', 'mechanism'], fc.constantFrom(...MECHANISMS)],
      [['identity', 'type'], fc.constantFrom(...IDENTITY_TYPES)],
      [['identity', 'risk'], fc.constantFrom(...RISKS)],
      [['action'], fc.constantFrom(...ACTIONS)],
      [['rollbackOf'], fc.constantFrom('rr-payments-kv-api-key', 'rr-other-request')],
      [['requester', 'kind'], fc.constantFrom('human', 'agent')],
      [['requester', 'name'], fc.constantFrom('alice', 'renovate[bot]', 'nhi-recover-agent')],
      [['created'], date],
      [['expires'], date],
      [['rotation', 'generator'], fc.constantFrom({ kind: 'random' }, { kind: 'provider' })],
      [['rotation', 'retainPrevious'], fc.constantFrom('0s', '24h', '999999d')],
      [['target'], fc.jsonValue({ maxDepth: 2 })],
      [['__proto__'], fc.jsonValue({ maxDepth: 1 })],
    ]
    const mutation = fc.integer({ min: 0, max: fields.length - 1 }).chain((i) =>
      fc.record({
        path: fc.constant(fields[i]![0]),
        value: fc.oneof(
          { arbitrary: fields[i]![1], weight: 8 },
          { arbitrary: fc.jsonValue({ maxDepth: 1 }), weight: 1 },
          { arbitrary: fc.constant(undefined), weight: 1 },
        ),
      }),
    )
    let parsedRuns = 0
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        const spec = structuredClone(base)
        for (const { path, value } of mutations) {
          let node = spec as Record<string, unknown>
          for (const seg of path.slice(0, -1)) {
            if (typeof node[seg] !== 'object' || node[seg] === null) node[seg] = {}
            node = node[seg] as Record<string, unknown>
          }
          const last = path.at(-1)!
          if (value === undefined) delete node[last]
          else
            Object.defineProperty(node, last, { value, enumerable: true, writable: true, configurable: true })
        }
        if (validateBytes(stringify(spec))) parsedRuns++
      }),
      { numRuns: 200 },
    )
    // Enough runs must get past the schema for the semantic checks to have been exercised.
    expect(parsedRuns).toBeGreaterThan(40)
  })

  it('across a repo of fuzzed specs, including the repo-wide id check', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(yamlish, fc.constant(VALID_SPEC)), { minLength: 1, maxLength: 4 }),
        (texts) => {
          texts.forEach((t, i) => repo.write(`recovery-specs/many-${i}.yaml`, t))
          const result = validateSpecs({
            cwd: repo.root,
            paths: texts.map((_, i) => `recovery-specs/many-${i}.yaml`),
            now: NOW,
          })
          for (const p of result.problems) expect(p.code).toMatch(/^[A-Z][A-Z0-9_]+$/)
          expect(result.valid + result.invalid).toBe(texts.length)
        },
      ),
      { numRuns: 60 },
    )
  })
})

type Level = { kind: 'seq' | 'map'; flow: boolean; compact: boolean }

/** YAML text whose root is `levels.length` collections deep, in the given styles. */
function nested(levels: Level[]): string {
  const flow = (ls: Level[]): string =>
    ls.length === 0 ? 'x' : ls[0]!.kind === 'seq' ? `[${flow(ls.slice(1))}]` : `{k: ${flow(ls.slice(1))}}`
  // Once a level is written in flow style, everything inside it must be flow too.
  const block = (ls: Level[], col: number, sameLine: boolean): string => {
    const pad = sameLine ? '' : ' '.repeat(col)
    const [head, ...rest] = ls
    if (!head) return pad + 'x'
    if (head.flow) return pad + flow(ls)
    const indicator = head.kind === 'seq' ? '-' : 'k:'
    if (rest.length === 0 || rest[0]!.flow) return `${pad}${indicator} ${rest.length ? flow(rest) : 'x'}`
    if (head.kind === 'seq' && head.compact) return `${pad}- ${block(rest, col + 2, true)}`
    return `${pad}${indicator}\n${block(rest, col + 2, false)}`
  }
  return block(levels, 0, false) + '\n'
}

describe('the nesting limit', () => {
  it('refuses a document exactly when it is deeper than limits.maxDepth, in any mix of styles', () => {
    const level = fc.record({
      kind: fc.constantFrom('seq', 'map'),
      flow: fc.boolean(),
      compact: fc.boolean(),
    }) as fc.Arbitrary<Level>
    fc.assert(
      fc.property(
        fc.array(level, { minLength: 1, maxLength: 120 }),
        fc.integer({ min: 4, max: 48 }),
        (levels, maxDepth) => {
          const text = nested(levels)
          const result = parseYamlSource(text, 'nested.yaml', '', { ...DEFAULT_LIMITS, maxDepth })
          const tooDeep = !result.ok && result.problems.some((p) => p.code === 'NESTING_TOO_DEEP')
          expect({ depth: levels.length, maxDepth, tooDeep, ok: result.ok }).toEqual({
            depth: levels.length,
            maxDepth,
            tooDeep: levels.length > maxDepth,
            ok: levels.length <= maxDepth,
          })
        },
      ),
      { numRuns: 400 },
    )
  })
})
