/** The validate service: finds spec files, checks each, and checks ids across the repo. */
import { readdirSync, lstatSync, realpathSync, existsSync } from 'node:fs'
import { basename, join, resolve } from 'node:path'
import { UserError } from '../errors.js'
import { loadRepoConfig, displayPath, CONFIG_FILE, type LoadedConfig } from '../config/repo.js'
import { RecoveryRequest } from './schema.js'
import { parseFile, type Parsed } from './parse.js'
import { specSemanticProblems } from './semantic.js'
import { byPosition, safeText, type Problem } from './problems.js'
import { isInside, readFileInRepo } from './yaml-file.js'
import { locate } from './locate.js'

export const SPECS_DIR = 'recovery-specs'
const SKIP_DIRS = new Set(['schema', 'node_modules', '.git'])
const SPEC_FILE = /\.ya?ml$/

export interface ValidateOptions {
  cwd: string
  /** Files or directories; defaults to recovery-specs/ of the repo. */
  paths: string[]
  configPath?: string
  now: Date
}

export interface SpecSummary {
  file: string
  id?: string
  valid: boolean
  problems: number
}

export interface ValidateResult {
  config: string
  specs: SpecSummary[]
  problems: Problem[]
  valid: number
  invalid: number
}

export interface ValidatedSpec {
  file: string
  absPath: string
  parsed?: Parsed<RecoveryRequest>
  problems: Problem[]
}

/** What validate keeps of one checked file: enough to report it and to check ids repo-wide. */
export interface SpecCheck {
  file: string
  absPath: string
  id?: string
  idAt?: { line: number; col: number }
  problems: Problem[]
}

/** Checks one file and keeps only the summary, so the parsed document can be collected at once. */
export function checkSpecFile(absPath: string, file: string, loaded: LoadedConfig, now: Date): SpecCheck {
  const v = validateSpecFile(absPath, file, loaded, now)
  if (!v.parsed) return { file, absPath, problems: v.problems }
  return {
    file,
    absPath,
    id: v.parsed.value.id,
    idAt: locate(v.parsed.yaml.doc, v.parsed.yaml.lineCounter, ['id']),
    problems: v.problems,
  }
}

/** Every spec file below the given paths, refusing paths that leave the repo. */
export function collectSpecFiles(cwd: string, repoRoot: string, paths: string[]): string[] {
  const realRoot = realpathSync(repoRoot)
  const roots = paths.length > 0 ? paths : [join(repoRoot, SPECS_DIR)]
  const out: string[] = []
  for (const p of roots) {
    const abs = resolve(cwd, p)
    if (!isInside(repoRoot, abs) && !isInside(realRoot, abs)) {
      throw new UserError(
        'PATH_OUTSIDE_REPO',
        `${safeText(p)} lies outside the recovery repo at ${safeText(repoRoot)}.`,
        { next: 'Pass paths inside the repo, or run from inside the repo you mean (or pass its --config).' },
      )
    }
    const st = lstatSafe(abs)
    if (!st) {
      throw new UserError('PATH_NOT_FOUND', `${safeText(p)} does not exist.`, {
        next: `Pass spec files or directories under ${SPECS_DIR}/, or run validate without paths.`,
      })
    }
    // A directory named like a spec is reported as "not a file" rather than searched.
    if (st.isDirectory() && !SPEC_FILE.test(basename(abs))) walk(abs, out)
    else out.push(abs)
  }
  return [...new Set(out)].sort()
}

function lstatSafe(p: string) {
  try {
    return lstatSync(p)
  } catch {
    return undefined
  }
}

function walk(dir: string, out: string[]): void {
  let entries
  try {
    entries = readdirSync(dir, { withFileTypes: true })
  } catch (err) {
    throw new UserError(
      'PATH_UNREADABLE',
      `The directory ${safeText(dir)} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}).`,
      { next: 'Check its permissions, or pass the spec files you mean.' },
    )
  }
  for (const entry of entries) {
    if (entry.name.startsWith('.')) continue
    const full = join(dir, entry.name)
    if (entry.isDirectory() && !SPEC_FILE.test(entry.name)) {
      if (!SKIP_DIRS.has(entry.name)) walk(full, out)
    } else if (SPEC_FILE.test(entry.name) && entry.name !== CONFIG_FILE) {
      // Files, symlinks, and anything else named like a spec: loading reports what is wrong with it.
      out.push(full)
    }
  }
}

/** Checks one spec file completely: bytes, YAML, schema, inline secrets, config references, clock. */
export function validateSpecFile(
  absPath: string,
  file: string,
  loaded: LoadedConfig,
  now: Date,
): ValidatedSpec {
  const result = parseFile(RecoveryRequest, absPath, file, loaded.repoRoot, loaded.config.limits)
  if (!result.ok) return { file, absPath, problems: result.problems }
  return {
    file,
    absPath,
    parsed: result.parsed,
    problems: specSemanticProblems(result.parsed, loaded.config, now),
  }
}

const ID_LINE = /^(["']?)id\1[ \t]*:[ \t]*(["']?)([a-z0-9-]{1,80})\2[ \t]*(?:#.*)?$/m

/**
 * The top-level id of a spec that is not being validated, for the repo-wide uniqueness check.
 * A line scan rather than a parse keeps `validate one-spec.yaml` fast in a repo of thousands.
 */
function peekId(absPath: string, loaded: LoadedConfig): string | undefined {
  const read = readFileInRepo(absPath, loaded.repoRoot, loaded.config.limits.maxSpecBytes)
  return read.ok ? ID_LINE.exec(read.bytes.toString('utf8'))?.[3] : undefined
}

/** Validates the given spec files (default: all of recovery-specs/) against the repo config. */
export function validateSpecs(opts: ValidateOptions): ValidateResult {
  const loaded = loadRepoConfig(opts.cwd, opts.configPath)
  const files = collectSpecFiles(opts.cwd, loaded.repoRoot, opts.paths)
  const checks = files.map((abs) => checkSpecFile(abs, displayPath(opts.cwd, abs), loaded, opts.now))
  return summarizeChecks(opts.cwd, loaded, checks)
}

/** The validate result from per-file checks, adding the repo-wide id check. */
export function summarizeChecks(cwd: string, loaded: LoadedConfig, checked: SpecCheck[]): ValidateResult {
  const problems = checked.flatMap((c) => c.problems)
  problems.push(...duplicateIdProblems(cwd, loaded, checked))

  const perFile = new Map<string, number>()
  for (const p of problems) perFile.set(p.file, (perFile.get(p.file) ?? 0) + 1)
  const specs = checked.map((c) => ({
    file: c.file,
    ...(c.id ? { id: c.id } : {}),
    valid: !perFile.has(c.file),
    problems: perFile.get(c.file) ?? 0,
  }))
  problems.sort(byPosition)
  const valid = specs.filter((s) => s.valid).length
  return { config: loaded.file, specs, problems, valid, invalid: specs.length - valid }
}

/** Ids must be unique across every spec in the repo, not only the ones being validated. */
function duplicateIdProblems(cwd: string, loaded: LoadedConfig, checked: SpecCheck[]): Problem[] {
  const owners = new Map<string, string[]>()
  const checkedPaths = new Set(checked.map((c) => c.absPath))
  for (const c of checked) {
    if (c.id) owners.set(c.id, [...(owners.get(c.id) ?? []), c.file])
  }
  const specsRoot = join(loaded.repoRoot, SPECS_DIR)
  if (existsSync(specsRoot)) {
    const all: string[] = []
    walk(specsRoot, all)
    for (const abs of all) {
      if (checkedPaths.has(abs)) continue
      const id = peekId(abs, loaded)
      if (id && owners.has(id)) owners.get(id)!.push(displayPath(cwd, abs))
    }
  }
  const out: Problem[] = []
  for (const c of checked) {
    if (!c.id || !c.idAt) continue
    const files = owners.get(c.id)!
    if (files.length < 2) continue
    const others = files.filter((f) => f !== c.file)
    out.push({
      file: c.file,
      ...c.idAt,
      code: 'DUPLICATE_ID',
      path: 'id',
      message: `"${c.id}" is also the id of ${others.join(', ')}; every request needs its own id`,
    })
  }
  return out
}
