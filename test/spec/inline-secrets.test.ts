/**
 * Canary tests: credentials written into a spec are refused with INLINE_SECRET at file:line:col,
 * and the value never appears in any output. Canaries are generated at run time, so a leak
 * cannot hide behind a fixed string and every match in the output is a real echo.
 */
import { randomInt } from 'node:crypto'
import fc from 'fast-check'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { detectSecret } from '../../src/spec/inline-secrets.js'
import { validateSpecs, type ValidateResult } from '../../src/spec/validate.js'
import { envelope, runCli } from '../helpers/cli.js'
import { tempRepo, type TempRepo } from '../helpers/temp-repo.js'
import {
  CONFIG_TEXT,
  expectNoStack,
  expectUnchanged,
  NOW,
  posOf,
  specWith,
  VALID_SPEC,
  withOwnId,
} from './fixtures.js'

const UPPER = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ'
const B62 = UPPER + UPPER.toLowerCase() + '0123456789'
const rand = (alphabet: string, n: number) =>
  Array.from({ length: n }, () => alphabet[randomInt(alphabet.length)]).join('')
const b64url = (s: string) => Buffer.from(s).toString('base64url')

interface Canary {
  name: string
  kind: string
  /** The text written into the spec (one line). */
  value: string
  /** What must never appear in any output: the value, or its secret part. */
  secret: string
}

/** One fresh canary of each kind. */
function canaries(): Canary[] {
  const pw = rand(B62, 14)
  const keyBody = rand(B62 + '+/', 64)
  const token = (() => {
    for (;;) {
      const t = rand(B62, 40)
      if (/[A-Z]/.test(t) && /[a-z]/.test(t) && /[0-9]/.test(t)) return t
    }
  })()
  const list: Array<Omit<Canary, 'secret'> & { secret?: string }> = [
    { name: 'AWS access key id', kind: 'an AWS access key id', value: 'AKIA' + rand(UPPER + '234567', 16) },
    {
      name: 'AWS secret access key',
      kind: 'a high-entropy string',
      value: rand(B62 + '+/', 18) + '/' + rand(B62 + '+/', 21),
    },
    { name: 'GitHub classic token', kind: 'a GitHub token', value: 'ghp_' + rand(B62, 36) },
    {
      name: 'GitHub fine-grained token',
      kind: 'a GitHub token',
      value: 'github_pat_' + rand(B62, 22) + '_' + rand(B62, 59),
    },
    {
      name: 'Slack bot token',
      kind: 'a Slack token',
      value: `xoxb-${rand('0123456789', 12)}-${rand('0123456789', 13)}-${rand(B62, 24)}`,
    },
    {
      name: 'private key block',
      kind: 'a private key block',
      value: `-----BEGIN OPENSSH PRIVATE KEY----- ${keyBody} -----END OPENSSH PRIVATE KEY-----`,
      secret: keyBody,
    },
    {
      name: 'JSON Web Token',
      kind: 'a JSON Web Token',
      value: `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url(`{"sub":"${rand(B62, 16)}"}`)}.${rand(B62 + '-_', 43)}`,
    },
    { name: 'Vault token', kind: 'a Vault or OpenBao token', value: 'hvs.' + rand(B62 + '_-', 90) },
    {
      name: 'URL with a password',
      kind: 'a credential in a URL',
      value: `https://deploy:${pw}@git.example.com/payments.git`,
      secret: pw,
    },
    { name: 'random 40-character token', kind: 'a high-entropy string', value: token },
  ]
  return list.map((c) => ({ ...c, secret: c.secret ?? c.value }))
}

interface Placement {
  name: string
  /** The spec text with the canary placed, where the finding must point, and its field path. */
  place(value: string): { text: string; at: { line: number; col: number }; path: string }
}

const PLACEMENTS: Placement[] = [
  {
    name: 'reason',
    place: (v) => {
      const text = specWith(
        'reason: Payments gateway API key found in a public gist.',
        `reason: Leaked ${v} in a gist`,
      )
      return { text, at: posOf(text, 'Leaked'), path: 'reason' }
    },
  },
  {
    name: 'ticket',
    place: (v) => {
      const text = specWith('ticket: SEC-1002', `ticket: ${v}`)
      return { text, at: posOf(text, v), path: 'ticket' }
    },
  },
  {
    name: 'target.path',
    place: (v) => {
      const text = specWith('  path: payments/gateway', `  path: ${v}`)
      return { text, at: posOf(text, v), path: 'target.path' }
    },
  },
  {
    name: 'a mapping key',
    place: (v) => {
      const text = specWith('  field: api_key', `  field: api_key\n  ${v}: x`)
      return { text, at: posOf(text, v), path: 'target.<key>' }
    },
  },
  {
    name: 'a list item',
    place: (v) => {
      const text = specWith('    - kind: provider', `    - kind: provider\n    - ${v}`)
      return { text, at: posOf(text, v), path: 'rotation.verification[1]' }
    },
  },
  {
    name: 'a comment',
    place: (v) => {
      const text = VALID_SPEC + `# old key, do not use: ${v}\n`
      return { text, at: posOf(text, '# old key'), path: '(comment)' }
    },
  },
]

let repo: TempRepo
beforeAll(() => {
  repo = tempRepo()
})
afterAll(() => repo.cleanup())

describe('canaries in a spec', () => {
  const all = canaries()
  const cases = all.flatMap((c) => PLACEMENTS.map((p) => [c.name, p.name, c, p] as const))

  it.each(cases)(
    'refuses a %s in %s at its file:line:col and never echoes it',
    async (_c, _p, canary, placement) => {
      const { text, at, path } = placement.place(canary.value)
      const file = `recovery-specs/${placement.name.replace(/\W+/g, '-')}.yaml`
      repo.write(file, text)
      const result = await expectUnchanged(repo.root, () =>
        validateSpecs({ cwd: repo.root, paths: [file], now: NOW }),
      )
      expect(result.invalid).toBe(1)
      expect(result.problems).toContainEqual({
        file,
        ...at,
        code: 'INLINE_SECRET',
        path,
        message: `looks like ${canary.kind}. A spec must never hold a credential: remove it, and treat that credential as exposed (rotate it) if it was ever committed or pushed`,
      })
      expect(JSON.stringify(result)).not.toContain(canary.secret)
    },
  )
})

describe('canaries in complex keys', () => {
  it('refuses a canary inside a list used as a key, and no parser warning quotes it on stderr', async () => {
    const canary = 'ghp_' + rand(B62, 36)
    const text = specWith('ticket: SEC-1002', `ticket: SEC-1002\n? [${canary}]\n: x`)
    repo.write('recovery-specs/complex-key.yaml', text)
    const warn = vi.spyOn(process, 'emitWarning')
    const stderr = vi.spyOn(process.stderr, 'write')
    try {
      const result = validateSpecs({ cwd: repo.root, paths: ['recovery-specs/complex-key.yaml'], now: NOW })
      expect(result.problems.map((p) => p.code).sort()).toEqual(['INLINE_SECRET', 'NON_STRING_KEY'])
      expect(result.problems).toContainEqual(
        expect.objectContaining({ code: 'INLINE_SECRET', ...posOf(text, canary), path: '<key>[0]' }),
      )
      expect(JSON.stringify(result)).not.toContain(canary)
      expect(warn).not.toHaveBeenCalled()
      expect(stderr.mock.calls.join('')).not.toContain(canary)
    } finally {
      warn.mockRestore()
      stderr.mockRestore()
    }
  })
})

describe('benign values', () => {
  const BENIGN = [
    'rr-payments-kv-api-key',
    'arn:aws:secretsmanager:eu-west-1:123456789012:secret:payments/db-AbCdEf',
    'arn:aws:iam::123456789012:user/ci-deployer',
    'https://payments.example.internal/healthz/auth',
    'https://github.com/acme/recovery/pull/1234',
    'https://bao.example.internal:8200/v1/auth/jwt/login',
    'postgresql://db.example.internal:5432/payments',
    '2026-11-20T09:00:00Z',
    '2026-11-20T09:00:00.123+02:00',
    'team-payments',
    'platform-security',
    'Payments gateway API key found in a public gist.',
    'The rotated demo key broke the legacy client; restore the previous key.',
    'Rotated after the 2026-11-19 incident (see SEC-1234, PR #4521); owner: team-payments',
    'payments/gateway',
    'payments/gateway/api-key-v2',
    'secret/data/payments/gateway',
    'database/creds/readonly-role-2024',
    'SEC-1234',
    'INC-20261120-0042',
    'ThisIsMyServiceAccount2024',
    'PaymentsGatewayDeployUser2024Prod',
    'MyStack-DeployUser-1A2B3C4D5E6F',
    'team-payments/svc-GatewayUser-X7K2P9QW3L5M',
    'svc_payments_gateway_prod_01',
    'payments-gateway-api-key-eu-west-1-2026',
    'AWSCloudFormationStackSetExecutionRole',
    'alice@example.com',
    'renovate[bot]',
    'eu-west-1',
  ]

  it.each(BENIGN)('does not flag %s', (value) => {
    expect(detectSecret(value)).toBeUndefined()
  })

  it('accepts a spec carrying every benign value in its reason and comments', async () => {
    const text = specWith(
      'reason: Payments gateway API key found in a public gist.',
      `reason: >-\n${BENIGN.map((v) => `  ${v}`).join('\n')}\n${BENIGN.map((v) => `# ${v}`).join('\n')}`,
    )
    repo.write('recovery-specs/benign.yaml', withOwnId(text, 'benign'))
    const result = validateSpecs({ cwd: repo.root, paths: ['recovery-specs/benign.yaml'], now: NOW })
    expect(result.problems).toEqual([])
  })
})

describe('the high-entropy check', () => {
  const uniform = (min: number, max: number) =>
    fc.noBias(
      fc
        .array(fc.integer({ min: 0, max: 61 }), { minLength: min, maxLength: max })
        .map((ix) => ix.map((i) => B62[i]).join('')),
    )
  const mixed = (t: string) => /[A-Z]/.test(t) && /[a-z]/.test(t) && /[0-9]/.test(t)

  it('flags every random 32-64 character token with mixed case and digits, alone or in prose', () => {
    fc.assert(
      fc.property(uniform(32, 64).filter(mixed), fc.constantFrom('', 'key ', 'rotate: '), (token, before) => {
        expect(detectSecret(`${before}${token} leaked`)).toBe('a high-entropy string')
      }),
      { numRuns: 2000 },
    )
  })

  it('answers within bounded time on long adversarial values', () => {
    for (const unit of [
      'a',
      'eyJ',
      'https://',
      'xoxb-',
      'Aa1',
      '-----BEGIN ',
      'a:',
      'hvs.',
      'ghp_',
      'a-',
      'AKIA',
    ]) {
      const value = unit.repeat(Math.ceil((256 * 1024) / unit.length))
      const start = performance.now()
      detectSecret(value)
      expect(performance.now() - start, unit).toBeLessThan(500)
    }
  })
})

describe('canaries through the built CLI', () => {
  let cli: TempRepo
  const all = canaries()
  const files: Array<{ file: string; at: { line: number; col: number }; path: string; canary: Canary }> = []

  beforeAll(() => {
    cli = tempRepo()
    all.forEach((canary, i) => {
      const placement = PLACEMENTS[i % PLACEMENTS.length]!
      const { text, at, path } = placement.place(canary.value)
      const file = `recovery-specs/canary-${i}.yaml`
      cli.write(file, withOwnId(text, `canary-${i}`))
      files.push({ file, at, path, canary })
    })
    // Hostile spots where a parser or schema message could quote the value.
    const key = all[0]!.value
    const gh = all[2]!.value
    cli.write('recovery-specs/echo-tag.yaml', specWith('ticket: SEC-1002', `ticket: !${key} SEC-1002`))
    cli.write(
      'recovery-specs/echo-dup.yaml',
      specWith('ticket: SEC-1002', `ticket: SEC-1002\n${gh}: 1\n${gh}: 2`),
    )
    cli.write('recovery-specs/echo-alias.yaml', specWith('ticket: SEC-1002', `ticket: *${gh}`))
    cli.write('recovery-specs/echo-syntax.yaml', `${gh}: [unclosed\n  ] ${key} ]]\n"${key}`)
    cli.write(
      'recovery-specs/echo-unknown.yaml',
      specWith('ticket: SEC-1002', `ticket: SEC-1002\n${all[9]!.value}: x`),
    )
  })
  afterAll(() => cli.cleanup())

  const expectNoCanary = (output: string) => {
    for (const c of all) expect(output.includes(c.secret), `${c.name} leaked`).toBe(false)
  }

  it('refuses each canary at its file:line:col in human, --json and GitHub annotation output, never echoing one', async () => {
    const human = await expectUnchanged(cli.root, () => runCli(['validate'], { cwd: cli.root }))
    const json = await expectUnchanged(cli.root, () => runCli(['validate', '--json'], { cwd: cli.root }))
    const gha = await expectUnchanged(cli.root, () =>
      runCli(['validate'], { cwd: cli.root, env: { GITHUB_ACTIONS: 'true' } }),
    )
    for (const run of [human, json, gha]) {
      expect(run.exitCode).toBe(1)
      expectNoStack(run)
      expectNoCanary(run.stdout + run.stderr)
    }
    for (const f of files) {
      const message = `looks like ${f.canary.kind}. A spec must never hold a credential`
      expect(human.stdout).toContain(`${f.file}:${f.at.line}:${f.at.col}: ${f.path}: ${message}`)
      expect(gha.stdout).toContain(
        `::error file=${f.file},line=${f.at.line},col=${f.at.col},title=INLINE_SECRET::${f.path}: ${message}`,
      )
    }
    const problems = envelope<ValidateResult>(json).result!.problems
    for (const f of files) {
      expect(problems).toContainEqual(
        expect.objectContaining({ file: f.file, ...f.at, code: 'INLINE_SECRET', path: f.path }),
      )
    }
    // The hostile spots are refused too, with words of our own.
    const byFile = (name: string) =>
      problems.filter((p) => p.file === `recovery-specs/${name}.yaml`).map((p) => p.code)
    expect(byFile('echo-tag').sort()).toEqual(['INLINE_SECRET', 'TAG_RESOLVE_FAILED'])
    expect(byFile('echo-dup').sort()).toEqual(['DUPLICATE_KEY', 'INLINE_SECRET', 'INLINE_SECRET'])
    expect(byFile('echo-alias').sort()).toEqual(['BAD_ALIAS', 'INLINE_SECRET'])
    expect(byFile('echo-syntax').length).toBeGreaterThan(0)
    expect(byFile('echo-unknown')).toEqual(['INLINE_SECRET', 'UNKNOWN_FIELD'])
  })

  it('refuses a canary in the repo config with exit 2 and never echoes it', async () => {
    const c = all[8]! // URL with a password
    const config = specWith(
      '    address: https://bao.example.internal:8200',
      `    address: ${c.value}`,
      CONFIG_TEXT,
    )
    cli.write('nhi-recover.yaml', config)
    const at = posOf(config, c.value)
    for (const args of [['validate'], ['validate', '--json']]) {
      const run = await expectUnchanged(cli.root, () => runCli(args, { cwd: cli.root }))
      expect(run.exitCode).toBe(2)
      expectNoStack(run)
      expectNoCanary(run.stdout + run.stderr)
      expect(run.stdout + run.stderr).toContain(
        `nhi-recover.yaml:${at.line}:${at.col}: providers.bao.address: looks like a credential in a URL`,
      )
    }
  })
})
