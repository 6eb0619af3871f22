/**
 * The repo config: a broken or missing nhi-recover.yaml is a configuration error (exit 2) that
 * names the config's own file:line:col and the next step, and validate changes nothing.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigInvalidError, loadRepoConfig } from '../../src/config/repo.js'
import { UserError } from '../../src/errors.js'
import type { Problem } from '../../src/spec/problems.js'
import { envelope, runCli } from '../helpers/cli.js'
import { tempRepo, type TempRepo } from '../helpers/temp-repo.js'
import {
  CONFIG_TEXT,
  configWith,
  expectNoStack,
  expectUnchanged,
  posOf,
  VALID_SPEC,
} from '../spec/fixtures.js'

let repo: TempRepo
beforeEach(() => {
  repo = tempRepo({ withExampleConfig: false })
})
afterEach(() => repo.cleanup())

/** The problems loadRepoConfig refuses `text` with; fails when it accepts it. */
function configProblems(text: string): Problem[] {
  repo.write('nhi-recover.yaml', text)
  try {
    loadRepoConfig(repo.root)
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigInvalidError)
    expect(err).toMatchObject({ code: 'CONFIG_INVALID', exitCode: 2 })
    return (err as ConfigInvalidError).problems
  }
  throw new Error('the config was accepted')
}

/** The example config with one exact piece of text replaced; fails loudly when it is not there. */
function replaced(from: string, to: string): string {
  if (!CONFIG_TEXT.includes(from)) throw new Error(`fixture: config has no ${JSON.stringify(from)}`)
  return CONFIG_TEXT.replace(from, to)
}

const ESCALATION = `    - when: { requesterKind: agent }
      minTier: medium
      reason: requests filed by automation need a second person`

interface Row {
  name: string
  config: string
  /** [code, path, needle at the expected position (nth occurrence), message]. */
  expected: Array<[code: string, path: string, needle: string, message: string, nth?: number]>
}

const ROWS: Row[] = [
  {
    name: 'a misspelt top-level field',
    config: configWith('policy:', 'polcy:'),
    expected: [
      ['REQUIRED', 'policy', 'apiVersion', 'is required'],
      ['UNKNOWN_FIELD', 'polcy', 'polcy', 'unknown field "polcy"; did you mean "policy"?'],
    ],
  },
  {
    name: 'a field of the wrong type',
    config: replaced('agents:\n  - renovate[bot]\n  - nhi-recover-agent\n', 'agents: renovate\n'),
    expected: [['SCHEMA', 'agents', 'renovate', 'must be a list, not text']],
  },
  {
    name: 'an unknown provider kind',
    config: configWith('    kind: aws-iam', '    kind: aws-iamm'),
    expected: [
      [
        'INVALID_VALUE',
        'providers.aws-iam.kind',
        'aws-iamm',
        'must be one of: local, vault, aws-secrets-manager, aws-iam',
      ],
    ],
  },
  {
    name: 'a provider name that is not a safe id',
    config: configWith('  local:', '  Local_Store:'),
    expected: [
      [
        'INVALID_KEY',
        'providers.Local_Store',
        'Local_Store',
        'is not an allowed name: it must be 3–80 characters of a-z, 0-9 and single hyphens, starting and ending with a letter or digit',
      ],
    ],
  },
  {
    name: 'an escalation to an undefined provider',
    config: replaced(ESCALATION, `${ESCALATION}\n    - when: { provider: vault-prod }\n      minTier: high`),
    expected: [
      [
        'UNKNOWN_PROVIDER',
        'policy.escalation[2].when.provider',
        'vault-prod',
        'names provider "vault-prod", which is not defined under providers',
      ],
    ],
  },
  {
    name: 'an escalation to a provider named like an Object.prototype property',
    config: replaced(ESCALATION, `${ESCALATION}\n    - when: { provider: constructor }\n      minTier: high`),
    expected: [
      [
        'UNKNOWN_PROVIDER',
        'policy.escalation[2].when.provider',
        'constructor',
        'names provider "constructor", which is not defined under providers',
      ],
    ],
  },
  {
    name: 'a team that needs more approvals than its tier',
    config: configWith(
      '      teams: [{ team: platform, min: 1 }]',
      '      teams: [{ team: platform, min: 2 }]',
    ),
    expected: [
      [
        'TIER_UNSATISFIABLE',
        'policy.tiers.low.teams',
        '[{ team: platform, min: 2 }]',
        'a team needs 2 approvals but the tier requires only 1 in total',
      ],
    ],
  },
  {
    name: 'a tier needing ssh approvals without approvals.ssh',
    config: replaced('  ssh:\n    allowedSigners: .nhi-recover/allowed_signers\n', ''),
    expected: [
      [
        'BACKEND_NOT_CONFIGURED',
        'policy.tiers.high.backends',
        '[github, ssh]',
        'requires ssh approvals but approvals.ssh is not configured',
      ],
      [
        'BACKEND_NOT_CONFIGURED',
        'policy.tiers.critical.backends',
        '[github, ssh]',
        'requires ssh approvals but approvals.ssh is not configured',
        1,
      ],
    ],
  },
  {
    name: 'a transit audit signer on a provider that is not vault',
    config: replaced(
      '    kind: ssh\n    keyEnv: NHI_RECOVER_AUDIT_KEY\n',
      '    kind: transit\n    provider: aws-sm\n    key: audit-key\n',
    ),
    expected: [
      [
        'UNKNOWN_PROVIDER',
        'audit.signer.provider',
        'aws-sm',
        'must name a provider of kind vault; "aws-sm" is not one',
        1,
      ],
    ],
  },
  {
    name: 'no policy tier at all',
    config:
      CONFIG_TEXT.slice(0, CONFIG_TEXT.indexOf('policy:')) +
      'policy:\n  tiers: {}\n' +
      CONFIG_TEXT.slice(CONFIG_TEXT.indexOf('agents:')),
    expected: [
      [
        'NO_TIERS',
        'policy.tiers',
        '{}',
        'defines no tier; define at least one of low, medium, high, critical',
        1,
      ],
    ],
  },
  {
    name: 'a key given twice',
    config: configWith('agents:', 'agents: []\nagents:'),
    expected: [
      [
        'DUPLICATE_KEY',
        '',
        'agents:',
        `duplicate key "agents": it already appears on line ${posOf(configWith('agents:', 'agents: []\nagents:'), 'agents:').line} of this mapping; each key may appear once`,
        1,
      ],
    ],
  },
  {
    // The parser notices the unclosed sequence at the next key.
    name: 'an unclosed flow sequence',
    config: configWith('  path: audit', '  path: [audit'),
    expected: [
      [
        'BAD_INDENT',
        '',
        'signer:',
        'flow sequence in block collection must be sufficiently indented and end with a ]',
      ],
    ],
  },
]

describe('invalid repo configs', () => {
  it.each(ROWS.map((r) => [r.name, r] as const))('refuses %s at the config file:line:col', (_name, row) => {
    const problems = configProblems(row.config)
    expect(problems).toEqual(
      row.expected.map(([code, path, needle, message, nth]) => ({
        file: 'nhi-recover.yaml',
        ...posOf(row.config, needle, nth ?? 0),
        code,
        ...(path ? { path } : {}),
        message,
      })),
    )
  })

  it('accepts the example config', () => {
    repo.write('nhi-recover.yaml', CONFIG_TEXT)
    expect(loadRepoConfig(repo.root).config.providers).toHaveProperty('bao')
  })
})

describe('a missing repo config', () => {
  it('is a usage error whose next step is "nhi-recover init"', () => {
    let err: unknown
    try {
      loadRepoConfig(repo.root)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(UserError)
    expect(err).toMatchObject({
      code: 'CONFIG_NOT_FOUND',
      exitCode: 2,
      message: 'No nhi-recover.yaml found at nhi-recover.yaml.',
      next: 'Run "nhi-recover init" to scaffold a recovery repo, or pass --config PATH.',
    })
  })

  it('is a usage error when the config path is a directory', () => {
    mkdirSync(join(repo.root, 'nhi-recover.yaml'))
    expect(() => loadRepoConfig(repo.root)).toThrow(
      expect.objectContaining({
        code: 'CONFIG_NOT_FOUND',
        message: 'nhi-recover.yaml is a directory, not a config file.',
      }),
    )
  })
})

describe('config errors through the built CLI', () => {
  it('exits 2 without a config, and the Next: line mentions init', async () => {
    repo.write('recovery-specs/a.yaml', VALID_SPEC)
    const human = await expectUnchanged(repo.root, () => runCli(['validate'], { cwd: repo.root }))
    expect(human.exitCode).toBe(2)
    expectNoStack(human)
    expect(human.stderr).toBe(
      'Error: No nhi-recover.yaml found at nhi-recover.yaml.\nNext: Run "nhi-recover init" to scaffold a recovery repo, or pass --config PATH.',
    )
    const json = envelope(
      await expectUnchanged(repo.root, () => runCli(['validate', '--json'], { cwd: repo.root })),
    )
    expect(json).toMatchObject({ ok: false, exitCode: 2, error: { kind: 'user', code: 'CONFIG_NOT_FOUND' } })
    expect(json.error?.next).toContain('nhi-recover init')
  })

  it('exits 2 for an invalid config, naming its own file:line:col in text and --json', async () => {
    const text = configWith('policy:', 'polcy:')
    repo.write('nhi-recover.yaml', text)
    repo.write('recovery-specs/a.yaml', VALID_SPEC)
    const at = posOf(text, 'polcy')
    const human = await expectUnchanged(repo.root, () => runCli(['validate'], { cwd: repo.root }))
    expect(human.exitCode).toBe(2)
    expectNoStack(human)
    expect(human.stdout).toBe('')
    expect(human.stderr).toContain('Error: The repo config nhi-recover.yaml is invalid:\n')
    expect(human.stderr).toContain(
      `  nhi-recover.yaml:${at.line}:${at.col}: polcy: unknown field "polcy"; did you mean "policy"? [UNKNOWN_FIELD]`,
    )
    expect(human.stderr).toContain(
      'Next: Fix nhi-recover.yaml; its JSON Schema is recovery-specs/schema/repo-config.v1.json.',
    )
    const json = envelope<{ problems: Problem[] }>(
      await expectUnchanged(repo.root, () => runCli(['validate', '--json'], { cwd: repo.root })),
    )
    expect(json).toMatchObject({ ok: false, exitCode: 2, error: { kind: 'user', code: 'CONFIG_INVALID' } })
    expect(json.result?.problems).toContainEqual({
      file: 'nhi-recover.yaml',
      ...at,
      code: 'UNKNOWN_FIELD',
      path: 'polcy',
      message: 'unknown field "polcy"; did you mean "policy"?',
    })
  })
})
