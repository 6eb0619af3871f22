/** Locates the recovery repo and loads its nhi-recover.yaml. */
import { existsSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { UserError } from '../errors.js'
import { RepoConfig, DEFAULT_LIMITS, RISKS } from '../spec/schema.js'
import { parseFile, type Parsed } from '../spec/parse.js'
import { dotPath, formatProblem, safeText, type Problem } from '../spec/problems.js'
import { locate } from '../spec/locate.js'

export const CONFIG_FILE = 'nhi-recover.yaml'

/** The nearest directory at or above `start` that holds .git; `start` itself when there is none. */
export function findRepoRoot(start: string): string {
  let dir = resolve(start)
  for (;;) {
    if (existsSync(join(dir, '.git'))) return dir
    const parent = dirname(dir)
    if (parent === dir) return resolve(start)
    dir = parent
  }
}

export interface LoadedConfig {
  repoRoot: string
  /** Path of the config file, relative to the working directory. */
  file: string
  absPath: string
  config: RepoConfig
  /** sha256 of the config bytes, for audit entries. */
  sha256: string
  parsed: Parsed<RepoConfig>
}

/** Shown path: relative to cwd when below it, else absolute. */
export function displayPath(cwd: string, abs: string): string {
  const rel = relative(cwd, abs)
  return rel && !rel.startsWith('..') ? rel : abs
}

/**
 * Loads and checks the repo config. A broken config is a configuration error (exit 2),
 * reported with the same file:line:col problems as a spec.
 */
export function loadRepoConfig(cwd: string, configPath?: string): LoadedConfig {
  const absPath = configPath ? resolve(cwd, configPath) : join(findRepoRoot(cwd), CONFIG_FILE)
  const repoRoot = findRepoRoot(dirname(absPath))
  const file = displayPath(cwd, absPath)
  if (!existsSync(absPath)) {
    throw new UserError(
      'CONFIG_NOT_FOUND',
      configPath
        ? `No repo config found at ${safeText(file)} (from --config).`
        : `No ${CONFIG_FILE} found at ${safeText(file)}.`,
      {
        next: configPath
          ? `Check the --config path, or run "nhi-recover init" to scaffold a recovery repo.`
          : `Run "nhi-recover init" to scaffold a recovery repo, or pass --config PATH.`,
      },
    )
  }
  if (statSync(absPath, { throwIfNoEntry: false })?.isDirectory()) {
    throw new UserError('CONFIG_NOT_FOUND', `${safeText(file)} is a directory, not a config file.`, {
      next: `Pass the path of ${CONFIG_FILE} with --config.`,
    })
  }
  const result = parseFile(RepoConfig, absPath, file, repoRoot, DEFAULT_LIMITS)
  const problems = result.ok ? configSemanticProblems(result.parsed) : result.problems
  if (!result.ok || problems.length > 0) {
    throw new ConfigInvalidError(file, problems)
  }
  return {
    repoRoot,
    file,
    absPath,
    config: result.parsed.value,
    sha256: result.parsed.yaml.sha256,
    parsed: result.parsed,
  }
}

/** The repo config is broken: a configuration error (exit 2) that lists each problem with file:line:col. */
export class ConfigInvalidError extends UserError {
  readonly problems: Problem[]
  /** Becomes `result` of the --json envelope, so tools get the positions too. */
  readonly details: { problems: Problem[] }
  constructor(file: string, problems: Problem[]) {
    super(
      'CONFIG_INVALID',
      `The repo config ${safeText(file)} is invalid:\n${problems.map((p) => '  ' + formatProblem(p)).join('\n')}`,
      { next: `Fix ${safeText(file)}; its JSON Schema is recovery-specs/schema/repo-config.v1.json.` },
    )
    this.problems = problems
    this.details = { problems }
  }
}

/** Own entries only: a name like "constructor" must not find Object.prototype. */
function own<T>(record: Partial<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined
}

/** Cross-field checks the schema alone cannot express. */
function configSemanticProblems(parsed: Parsed<RepoConfig>): Problem[] {
  const { value: config, yaml } = parsed
  const out: Problem[] = []
  const at = (path: (string | number)[], code: string, message: string) =>
    out.push({
      file: yaml.file,
      ...locate(yaml.doc, yaml.lineCounter, path),
      code,
      path: dotPath(path),
      message,
    })

  if (RISKS.every((r) => config.policy.tiers[r] === undefined)) {
    at(['policy', 'tiers'], 'NO_TIERS', 'defines no tier; define at least one of low, medium, high, critical')
  }
  for (const [risk, tier] of Object.entries(config.policy.tiers)) {
    if (!tier) continue
    if (tier.backends.includes('github') && !config.approvals.github) {
      at(
        ['policy', 'tiers', risk, 'backends'],
        'BACKEND_NOT_CONFIGURED',
        'requires github approvals but approvals.github is not configured',
      )
    }
    if ((tier.backends.includes('ssh') || tier.signed) && !config.approvals.ssh) {
      at(
        ['policy', 'tiers', risk, 'backends'],
        'BACKEND_NOT_CONFIGURED',
        'requires ssh approvals but approvals.ssh is not configured',
      )
    }
    const teamMin = tier.teams.reduce((n, t) => Math.max(n, t.min), 0)
    if (teamMin > tier.approvals) {
      at(
        ['policy', 'tiers', risk, 'teams'],
        'TIER_UNSATISFIABLE',
        `a team needs ${teamMin} approvals but the tier requires only ${tier.approvals} in total`,
      )
    }
  }
  config.policy.escalation.forEach((rule, i) => {
    if (rule.when.provider && !own(config.providers, rule.when.provider)) {
      at(
        ['policy', 'escalation', i, 'when', 'provider'],
        'UNKNOWN_PROVIDER',
        `names provider "${rule.when.provider}", which is not defined under providers`,
      )
    }
    if (!own(config.policy.tiers, rule.minTier)) {
      at(
        ['policy', 'escalation', i, 'minTier'],
        'UNKNOWN_TIER',
        `names tier "${rule.minTier}", which is not defined under policy.tiers`,
      )
    }
  })
  const signer = config.audit.signer
  if (signer?.kind === 'transit') {
    const p = own(config.providers, signer.provider)
    if (!p || p.kind !== 'vault') {
      at(
        ['audit', 'signer', 'provider'],
        'UNKNOWN_PROVIDER',
        `must name a provider of kind vault; "${signer.provider}" is not one`,
      )
    }
  }
  return out
}
