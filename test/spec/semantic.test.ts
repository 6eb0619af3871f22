/**
 * Semantic checks of a schema-valid spec against the repo config and the clock, as a table:
 * each row changes one thing in a valid spec and names the exact problems it must cause.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validateSpecs } from '../../src/spec/validate.js'
import type { Problem } from '../../src/spec/problems.js'
import { runCli } from '../helpers/cli.js'
import { EXAMPLES, tempRepo, type TempRepo } from '../helpers/temp-repo.js'
import {
  CONFIG_TEXT,
  configWith,
  expectNoStack,
  expectUnchanged,
  NOW,
  posOf,
  specWith,
  VALID_SPEC,
  withOwnId,
} from './fixtures.js'

const IAM_SPEC = readFileSync(join(EXAMPLES, 'aws-iam-access-key.yaml'), 'utf8')

/** The example config without the lines of one block (e.g. a tier or a provider). */
function configWithout(block: string): string {
  if (!CONFIG_TEXT.includes(block)) throw new Error(`fixture: config has no block ${JSON.stringify(block)}`)
  return CONFIG_TEXT.replace(block, '')
}

const CRITICAL_TIER = `    critical:
      approvals: 3
      teams: [{ team: platform, min: 1 }, { team: security, min: 2 }]
      backends: [github, ssh]
      signed: true
      maxAge: 12h
`
const AWS_SM_PROVIDER = `  aws-sm:
    kind: aws-secrets-manager
    region: eu-west-1
`

interface Row {
  name: string
  spec: string
  config?: string
  /** Problems as [code, path, needle at the expected position (its nth occurrence, default first), message]. */
  expected: Array<[code: string, path: string, needle: string, message: string, nth?: number]>
}

const s = specWith
const ROWS: Row[] = [
  {
    name: 'an unknown provider',
    spec: s('  provider: bao', '  provider: vault-prod'),
    expected: [
      [
        'UNKNOWN_PROVIDER',
        'target.provider',
        'vault-prod',
        'names provider "vault-prod", which nhi-recover.yaml does not define (defined: local, bao, aws-sm, aws-iam)',
      ],
    ],
  },
  {
    name: 'a provider named like an Object.prototype property',
    spec: s('  provider: bao', '  provider: constructor'),
    expected: [
      [
        'UNKNOWN_PROVIDER',
        'target.provider',
        'constructor',
        'names provider "constructor", which nhi-recover.yaml does not define (defined: local, bao, aws-sm, aws-iam)',
      ],
    ],
  },
  {
    name: 'a mechanism the provider kind cannot run',
    spec: s('  provider: bao', '  provider: aws-sm'),
    expected: [
      [
        'MECHANISM_MISMATCH',
        'target.mechanism',
        'kv-v2',
        '"kv-v2" needs a provider of kind vault, but "aws-sm" is of kind aws-secrets-manager',
      ],
    ],
  },
  {
    name: 'a mechanism that cannot recover the identity type',
    spec: s('  type: api-key', '  type: approle'),
    expected: [
      [
        'MECHANISM_MISMATCH',
        'target.mechanism',
        'kv-v2',
        '"kv-v2" cannot recover an identity of type approle; use one of: approle-secret-id',
      ],
    ],
  },
  {
    name: 'a risk with no policy tier',
    spec: s('  risk: high', '  risk: critical'),
    config: configWithout(CRITICAL_TIER),
    expected: [
      [
        'UNKNOWN_TIER',
        'identity.risk',
        'critical',
        'is "critical", but nhi-recover.yaml defines no policy tier of that name (policy.tiers)',
      ],
    ],
  },
  {
    name: 'an expired request',
    spec: s('expires: 2036-11-20T09:00:00Z', 'expires: 2026-11-25T00:00:00Z'),
    expected: [
      [
        'REQUEST_EXPIRED',
        'expires',
        '2026-11-25T00:00:00Z',
        'passed on 2026-11-25T00:00:00Z; file a new request with "nhi-recover new"',
      ],
    ],
  },
  {
    name: 'a lifetime over limits.maxRequestLifetime',
    spec: s('expires: 2036-11-20T09:00:00Z', 'expires: 2026-12-20T09:00:01Z'),
    config: configWith('  maxRequestLifetime: 3660d', '  maxRequestLifetime: 30d'),
    expected: [
      [
        'LIFETIME_TOO_LONG',
        'expires',
        '2026-12-20T09:00:01Z',
        'is more than 30d after created (limits.maxRequestLifetime)',
      ],
    ],
  },
  {
    name: 'a lifetime of exactly limits.maxRequestLifetime',
    spec: s('expires: 2036-11-20T09:00:00Z', 'expires: 2026-12-20T09:00:00Z'),
    config: configWith('  maxRequestLifetime: 3660d', '  maxRequestLifetime: 30d'),
    expected: [],
  },
  {
    name: 'a creation time in the future',
    spec: s('created: 2026-11-20T09:00:00Z', 'created: 2026-12-01T00:10:00Z'),
    expected: [
      [
        'CREATED_IN_FUTURE',
        'created',
        '2026-12-01T00:10:00Z',
        'is in the future; check the date and the time zone',
      ],
    ],
  },
  {
    name: 'a creation time within five minutes of clock skew',
    spec: s('created: 2026-11-20T09:00:00Z', 'created: 2026-12-01T01:04:00+01:00'),
    expected: [],
  },
  {
    name: 'an expiry before the creation',
    spec: s('expires: 2036-11-20T09:00:00Z', 'expires: 2026-11-20T08:59:59Z'),
    expected: [
      ['EXPIRES_BEFORE_CREATED', 'expires', '2026-11-20T08:59:59Z', 'must be after created'],
      [
        'REQUEST_EXPIRED',
        'expires',
        '2026-11-20T08:59:59Z',
        'passed on 2026-11-20T08:59:59Z; file a new request with "nhi-recover new"',
      ],
    ],
  },
  {
    name: 'a rollback without rollbackOf',
    spec: s('action: rotate', 'action: rollback'),
    expected: [
      [
        'ROLLBACK_WITHOUT_TARGET',
        'action',
        'rollback',
        'is rollback, so rollbackOf must name the request whose rotation is undone',
      ],
    ],
  },
  {
    name: 'rollbackOf on a rotation',
    spec: s('action: rotate', 'action: rotate\nrollbackOf: rr-earlier-request'),
    expected: [
      [
        'ROLLBACK_FIELD_UNUSED',
        'rollbackOf',
        'rr-earlier-request',
        'only applies when action is rollback (action is rotate)',
      ],
    ],
  },
  {
    name: 'a rollback of itself',
    spec: s('action: rotate', 'action: rollback\nrollbackOf: rr-payments-kv-api-key'),
    expected: [['ROLLBACK_SELF', 'rollbackOf', 'rr-payments-kv-api-key', 'names this request itself', 1]],
  },
  {
    name: 'a listed agent that claims to be human',
    spec: s('  name: alice', '  name: renovate[bot]'),
    expected: [
      [
        'REQUESTER_KIND',
        'requester.kind',
        'human',
        'is human, but "renovate[bot]" is listed under agents in nhi-recover.yaml; set kind: agent',
      ],
    ],
  },
  {
    name: 'a listed agent that says it is an agent',
    spec: s('  kind: human', '  kind: agent', s('  name: alice', '  name: renovate[bot]')),
    expected: [],
  },
  {
    name: 'a provider-issued generator for a stored secret',
    spec: s(
      '  generator: { kind: random, length: 48, alphabet: base64url }',
      '  generator: { kind: provider }',
    ),
    expected: [
      [
        'GENERATOR_MISMATCH',
        'rotation.generator.kind',
        'provider }',
        'must be "random": kv-v2 does not issue credentials itself',
      ],
    ],
  },
  {
    name: 'an IAM key whose secretProvider is not Secrets Manager',
    spec: s('  secretProvider: aws-sm', '  secretProvider: aws-iam', IAM_SPEC),
    expected: [
      [
        'UNKNOWN_PROVIDER',
        'target.secretProvider',
        'aws-iam',
        'must name a provider of kind aws-secrets-manager in nhi-recover.yaml; "aws-iam" is of kind aws-iam',
        1,
      ],
    ],
  },
  {
    name: 'an IAM key with no Secrets Manager provider to hold it',
    spec: s('  secretProvider: aws-sm', '', IAM_SPEC),
    config: configWithout(AWS_SM_PROVIDER),
    expected: [
      [
        'UNKNOWN_PROVIDER',
        'target.mechanism',
        'iam-access-key',
        'stores the new key pair in Secrets Manager, but nhi-recover.yaml defines no provider of kind aws-secrets-manager',
      ],
    ],
  },
]

describe('semantic checks', () => {
  it.each(ROWS.map((r) => [r.name, r] as const))('%s', async (_name, row) => {
    // A repo per row, so that rows sharing an id are not duplicates of each other.
    const repo = tempRepo({ withExampleConfig: false })
    try {
      repo.write('nhi-recover.yaml', row.config ?? CONFIG_TEXT)
      const file = 'recovery-specs/spec.yaml'
      repo.write(file, row.spec)
      const result = await expectUnchanged(repo.root, () =>
        validateSpecs({ cwd: repo.root, paths: [file], now: NOW }),
      )
      const expected: Problem[] = row.expected.map(([code, path, needle, message, nth]) => ({
        file,
        ...posOf(row.spec, needle, nth ?? 0),
        code,
        path,
        message,
      }))
      expect(result.problems).toEqual(expected)
      expect(result.specs).toEqual([
        { file, id: expect.any(String), valid: expected.length === 0, problems: expected.length },
      ])
    } finally {
      repo.cleanup()
    }
  })
})

describe('ids are unique across the repo', () => {
  let repo: TempRepo
  const idPos = posOf(VALID_SPEC, 'rr-payments-kv-api-key')
  beforeAll(() => {
    repo = tempRepo()
    repo.write('recovery-specs/a.yaml', VALID_SPEC)
    repo.write(
      'recovery-specs/2026/b.yaml',
      specWith('id: rr-payments-kv-api-key', 'id: "rr-payments-kv-api-key" # same id, quoted'),
    )
    repo.write('recovery-specs/c.yaml', withOwnId(VALID_SPEC, 'c'))
    // Not under recovery-specs/, so not a spec of this repo.
    repo.write('archive/old.yaml', VALID_SPEC)
  })
  afterAll(() => repo.cleanup())

  it('refuses a spec whose id another spec uses, even one not passed on the command line', async () => {
    const result = await expectUnchanged(repo.root, () =>
      validateSpecs({ cwd: repo.root, paths: ['recovery-specs/a.yaml'], now: NOW }),
    )
    expect(result.problems).toEqual([
      {
        file: 'recovery-specs/a.yaml',
        ...idPos,
        code: 'DUPLICATE_ID',
        path: 'id',
        message:
          '"rr-payments-kv-api-key" is also the id of recovery-specs/2026/b.yaml; every request needs its own id',
      },
    ])
  })

  it('reports each of the clashing specs when all are validated, and passes the unique one', async () => {
    const result = validateSpecs({ cwd: repo.root, paths: [], now: NOW })
    expect(result.problems.map((p) => [p.file, p.code, p.message])).toEqual([
      [
        'recovery-specs/2026/b.yaml',
        'DUPLICATE_ID',
        '"rr-payments-kv-api-key" is also the id of recovery-specs/a.yaml; every request needs its own id',
      ],
      [
        'recovery-specs/a.yaml',
        'DUPLICATE_ID',
        '"rr-payments-kv-api-key" is also the id of recovery-specs/2026/b.yaml; every request needs its own id',
      ],
    ])
    expect(result.specs.find((x) => x.file === 'recovery-specs/c.yaml')).toMatchObject({ valid: true })
  })

  it('exits 1 from the CLI with the duplicate at file:line:col', async () => {
    const run = await expectUnchanged(repo.root, () =>
      runCli(['validate', 'recovery-specs/a.yaml'], { cwd: repo.root }),
    )
    expect(run.exitCode).toBe(1)
    expectNoStack(run)
    expect(run.stdout).toContain(
      `recovery-specs/a.yaml:${idPos.line}:${idPos.col}: id: "rr-payments-kv-api-key" is also the id of recovery-specs/2026/b.yaml; every request needs its own id [DUPLICATE_ID]`,
    )
  })
})
