/**
 * The new-spec service. Answers (from flags or the wizard) become YAML text, that exact text
 * goes through the same checks as `validate`, and only a spec with no problem is written,
 * to a file that did not exist before.
 */
import { existsSync, lstatSync, mkdirSync, realpathSync, unlinkSync, writeFileSync } from 'node:fs'
import { join, relative, sep } from 'node:path'
import { BugError, CheckFailedError, UserError } from '../errors.js'
import { displayPath, loadRepoConfig, type LoadedConfig } from '../config/repo.js'
import {
  ACTIONS,
  DURATION,
  IDENTITY_TYPES,
  MECHANISMS,
  RISKS,
  RecoveryRequest,
  SAFE_ID,
  type Mechanism,
  type ProviderConfig,
} from '../spec/schema.js'
import { parseSource } from '../spec/parse.js'
import { specSemanticProblems, IDENTITY_MECHANISMS, MECHANISM_PROVIDERS } from '../spec/semantic.js'
import { byPosition, type Problem } from '../spec/problems.js'
import { SPECS_DIR, validateSpecFile } from '../spec/validate.js'
import { isInside } from '../spec/yaml-file.js'
import { parseDuration } from '../time.js'
import {
  FIELDS,
  MOUNT_MECHANISMS,
  TARGET_FIELDS,
  missingAnswers,
  type AnswerKey,
  type Answers,
} from './fields.js'
import { cryptoHex, existingSpecIds, generateId, idStem, type RandomHex } from './id.js'
import { renderSpecYaml, specData } from './render.js'
import type { GitIdentity } from './git-identity.js'

export const SCHEMA_FILE = 'recovery-request.v1.json'
export const DEFAULT_EXPIRES_IN = '7d'
export const DEFAULT_RETAIN_PREVIOUS = '24h'

export interface NewSpecOptions {
  cwd: string
  configPath?: string
  answers: Answers
  now: Date
  /** Root of the installed nhi-recover package, whose recovery-specs/schema/ ships the JSON Schema. */
  packageRoot: string
  /** Called only when no requester was given. */
  gitIdentity: () => GitIdentity
  random?: RandomHex
  /** Asks for missing answers (the wizard). Without it, missing answers are a usage error: never prompt. */
  ask?: (session: NewSpecSession) => Promise<Answers | undefined>
}

export interface InputError {
  field: AnswerKey
  message: string
}

export interface CheckResult {
  /** Where the spec would be written, relative to the working directory. */
  file: string
  id?: string
  text?: string
  missing: AnswerKey[]
  inputErrors: InputError[]
  problems: Problem[]
}

export interface NewSpecResult {
  file: string
  id: string
  requester: string
  expires: string
  /** The $schema reference written into the file. */
  schema: string
  /** False when the repo has no recovery-specs/schema/ and the header points at the installed package. */
  schemaInRepo: boolean
}

export interface ProviderChoice {
  name: string
  kind: ProviderConfig['kind']
}

/** What the wizard may offer, taken from the repo config and the schema enums. */
export interface Choices {
  types: readonly string[]
  /** Risk levels that have a policy tier in the config. */
  risks: readonly string[]
  providers: readonly ProviderChoice[]
  actions: readonly string[]
  requesterKinds: readonly string[]
  /** Providers that can recover an identity of this type. */
  providersFor(type: string | undefined): ProviderChoice[]
  /** Mechanisms that fit both the identity type and the provider's kind. */
  mechanismsFor(type: string | undefined, provider: string | undefined): Mechanism[]
}

/** A loaded repo plus everything needed to check answers again and again (the wizard re-checks on review). */
export interface NewSpecSession {
  readonly config: LoadedConfig
  /** The answers as given (flags); the wizard does not ask these again. */
  readonly given: Answers
  /** The given answers with defaults filled in. */
  readonly initial: Answers
  readonly choices: Choices
  /** The $schema reference new files get, relative to recovery-specs/. */
  readonly schemaRef: string
  readonly schemaInRepo: boolean
  check(answers: Answers): CheckResult
}

const isSafeName = (s: string) => RecoveryRequest.shape.requester.shape.name.safeParse(s).success

/** Loads the repo config and existing ids, and fills defaults (requester from git, expiry). */
export function openNewSpecSession(opts: NewSpecOptions): NewSpecSession {
  const loaded = loadRepoConfig(opts.cwd, opts.configPath)
  const specsDir = join(loaded.repoRoot, SPECS_DIR)
  assertSafeSpecsDir(loaded.repoRoot, specsDir)
  const ids = existingSpecIds(loaded.repoRoot)
  const random = opts.random ?? cryptoHex
  const { ref: schemaRef, inRepo: schemaInRepo } = schemaReference(
    loaded.repoRoot,
    specsDir,
    opts.packageRoot,
  )
  const created = new Date(Math.floor(opts.now.getTime() / 1000) * 1000)

  const initial: Answers = { ...opts.answers }
  if (!initial.requester?.trim()) {
    const git = opts.gitIdentity()
    const fromGit = [git.email, git.name].find((v) => v !== undefined && isSafeName(v))
    if (fromGit) {
      initial.requester = fromGit
      // A git identity on this machine belongs to a person, unless the config lists it as an agent.
      initial.requesterKind ??= loaded.config.agents.includes(fromGit) ? 'agent' : 'human'
    }
  }
  if (
    !initial.requesterKind &&
    initial.requester &&
    loaded.config.agents.includes(initial.requester.trim())
  ) {
    initial.requesterKind = 'agent'
  }
  if (!initial.expiresIn?.trim()) initial.expiresIn = DEFAULT_EXPIRES_IN
  if (!initial.retainPrevious?.trim()) initial.retainPrevious = DEFAULT_RETAIN_PREVIOUS

  // One generated id per identity stem, so re-checking in the wizard does not reshuffle it.
  const generated = new Map<string, string>()
  const idFor = (a: Answers): string => {
    const given = a.id?.trim()
    if (given) return given
    const stem = idStem(a.identity?.trim())
    let id = generated.get(stem)
    if (!id) {
      id = generateId(
        a.identity?.trim(),
        created,
        (c) => ids.has(c) || existsSync(join(specsDir, `${c}.yaml`)),
        random,
      )
      generated.set(stem, id)
    }
    return id
  }

  const check = (a: Answers): CheckResult => {
    const missing = missingAnswers(a)
    const inputErrors = inputErrorsOf(a)
    const idGiven = a.id?.trim()
    const id = idGiven && !SAFE_ID.test(idGiven) ? undefined : idFor(a)
    // An unsafe id never becomes a path, not even a displayed one.
    const absPath = join(specsDir, `${id ?? 'invalid-id'}.yaml`)
    const file = displayPath(opts.cwd, absPath)
    if (missing.length > 0 || inputErrors.length > 0 || !id) {
      return { file, ...(id ? { id } : {}), missing, inputErrors, problems: [] }
    }
    const expires = new Date(created.getTime() + parseDuration(a.expiresIn?.trim() || DEFAULT_EXPIRES_IN))
    const text = renderSpecYaml(specData(a, id, { created: iso(created), expires: iso(expires) }), schemaRef)
    const problems = checkText(text, file, id, absPath)
    return { file, id, text, missing, inputErrors, problems }
  }

  const checkText = (text: string, file: string, id: string, absPath: string): Problem[] => {
    const limits = loaded.config.limits
    const problems: Problem[] = []
    const bytes = Buffer.byteLength(text)
    if (bytes > limits.maxSpecBytes) {
      problems.push({
        file,
        line: 0,
        col: 0,
        code: 'FILE_TOO_LARGE',
        message: `would be ${bytes} bytes, more than the limit of ${limits.maxSpecBytes} (limits.maxSpecBytes); shorten the reason`,
      })
    }
    const parsed = parseSource(RecoveryRequest, text, file, limits)
    if (parsed.ok) problems.push(...specSemanticProblems(parsed.parsed, loaded.config, opts.now))
    else problems.push(...parsed.problems)
    const owner = ids.get(id)
    if (owner) {
      problems.push({
        file,
        ...idPosition(text),
        code: 'DUPLICATE_ID',
        path: 'id',
        message: `"${id}" is also the id of ${displayPath(opts.cwd, owner)}; every request needs its own id`,
      })
    }
    if (lstatOrUndefined(absPath)) {
      problems.push({
        file,
        line: 0,
        col: 0,
        code: 'FILE_EXISTS',
        message: 'already exists; nhi-recover new never overwrites a file (choose another --id)',
      })
    }
    return problems.sort(byPosition)
  }

  return {
    config: loaded,
    given: { ...opts.answers },
    initial,
    choices: choicesOf(loaded),
    schemaRef,
    schemaInRepo,
    check,
  }
}

/** Creates one spec: asks for missing answers when it may, checks, then writes a new file. */
export async function createNewSpec(opts: NewSpecOptions): Promise<NewSpecResult> {
  const session = openNewSpecSession(opts)
  let answers = session.initial
  if (missingAnswers(answers).length > 0 && opts.ask) {
    const asked = await opts.ask(session)
    if (!asked) {
      throw new UserError('CANCELLED', 'Cancelled; nothing was written.', {
        next: 'Run nhi-recover new again, or pass every answer as a flag (see nhi-recover new --help).',
      })
    }
    answers = asked
  }
  return writeNewSpec(session, answers, opts)
}

/** Checks the answers once more and writes the spec, or throws and writes nothing. */
export function writeNewSpec(
  session: NewSpecSession,
  answers: Answers,
  opts: Pick<NewSpecOptions, 'cwd' | 'now'>,
): NewSpecResult {
  const result = session.check(answers)
  if (result.missing.length > 0) {
    const flags = result.missing.map((k) => `--${FIELDS[k].flag}`)
    throw new UserError('MISSING_FLAGS', `Missing required flag(s): ${flags.join(', ')}.`, {
      next: `Pass ${flags.join(', ')} (see nhi-recover new --help), or run nhi-recover new in a terminal to answer them in a wizard.`,
    })
  }
  if (result.inputErrors.length > 0) {
    const lines = result.inputErrors.map((e) => `  --${FIELDS[e.field].flag}: ${e.message}`)
    throw new UserError('INVALID_FLAGS', `Invalid flag value(s); nothing was written:\n${lines.join('\n')}`, {
      next: 'Correct those flags and run nhi-recover new again (see nhi-recover new --help).',
    })
  }
  if (result.problems.length > 0 || !result.text || !result.id) {
    throw new CheckFailedError(
      'SPEC_INVALID',
      `${result.problems.length} problem(s) in the new request; nothing was written to ${result.file}.`,
      {
        next: 'Fix the flags behind the problems listed above (each names the field) and run nhi-recover new again.',
        details: { file: result.file, problems: result.problems },
      },
    )
  }
  const specsDir = join(session.config.repoRoot, SPECS_DIR)
  const absPath = join(specsDir, `${result.id}.yaml`)
  mkdirSync(specsDir, { recursive: true })
  try {
    writeFileSync(absPath, result.text, { flag: 'wx', mode: 0o644 })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new CheckFailedError(
        'FILE_EXISTS',
        `${result.file} appeared while the request was being written; it was left untouched.`,
        {
          next: 'Run nhi-recover new again; it picks a fresh id.',
        },
      )
    }
    throw new UserError(
      'WRITE_FAILED',
      `Could not write ${result.file} (${(err as NodeJS.ErrnoException).code ?? 'unknown error'}).`,
      {
        next: `Check that ${SPECS_DIR}/ is writable.`,
      },
    )
  }
  // The written bytes go through validate's own file check; a difference would be our bug.
  const recheck = validateSpecFile(absPath, result.file, session.config, opts.now)
  if (recheck.problems.length > 0) {
    unlinkSync(absPath)
    throw new BugError(
      `the written spec failed validate (${recheck.problems.map((p) => p.code).join(', ')}); it was removed`,
    )
  }
  const spec = recheck.parsed!.value
  return {
    file: result.file,
    id: spec.id,
    requester: spec.requester.name,
    expires: spec.expires,
    schema: session.schemaRef,
    schemaInRepo: session.schemaInRepo,
  }
}

function iso(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z')
}

function idPosition(text: string): { line: number; col: number } {
  const line = text.split('\n').findIndex((l) => l.startsWith('id:'))
  return line === -1 ? { line: 0, col: 0 } : { line: line + 1, col: 5 }
}

function lstatOrUndefined(p: string) {
  try {
    return lstatSync(p)
  } catch {
    return undefined
  }
}

/** Problems with the answers themselves, before there is any YAML to check. Never echoes a value. */
function inputErrorsOf(a: Answers): InputError[] {
  const out: InputError[] = []
  const expiresIn = a.expiresIn?.trim()
  if (expiresIn && !DURATION.test(expiresIn)) {
    out.push({ field: 'expiresIn', message: 'must be a duration such as 30m, 24h or 7d' })
  }
  const id = a.id?.trim()
  if (id && !SAFE_ID.test(id)) {
    out.push({
      field: 'id',
      message:
        'must be 3–80 characters of a-z, 0-9 and single hyphens, starting and ending with a letter or digit',
    })
  }
  const mech = a.mechanism?.trim()
  if (mech && (MECHANISMS as readonly string[]).includes(mech)) {
    const used = new Set<AnswerKey>(TARGET_FIELDS[mech as Mechanism])
    if (MOUNT_MECHANISMS.has(mech)) used.add('mount')
    for (const k of ['path', 'role', 'secret', 'user', 'mount'] as const) {
      if (a[k]?.trim() && !used.has(k)) out.push({ field: k, message: `does not apply to mechanism ${mech}` })
    }
  }
  if (a.rollbackOf?.trim() && a.action !== 'rollback') {
    out.push({ field: 'rollbackOf', message: 'only applies with action rollback' })
  }
  return out
}

function choicesOf(loaded: LoadedConfig): Choices {
  const providers = Object.entries(loaded.config.providers).map(([name, p]) => ({ name, kind: p.kind }))
  const mechanismsFor = (type: string | undefined, provider: string | undefined): Mechanism[] => {
    const kind = providers.find((p) => p.name === provider)?.kind
    const forType = IDENTITY_MECHANISMS[type as keyof typeof IDENTITY_MECHANISMS] ?? MECHANISMS
    return forType.filter((m) => kind === undefined || MECHANISM_PROVIDERS[m] === kind)
  }
  return {
    types: IDENTITY_TYPES,
    risks: RISKS.filter((r) => loaded.config.policy.tiers[r] !== undefined),
    providers,
    actions: ACTIONS,
    requesterKinds: ['human', 'agent'],
    providersFor: (type) => providers.filter((p) => mechanismsFor(type, p.name).length > 0),
    mechanismsFor,
  }
}

/** recovery-specs/ must be a real directory inside the repo (or not exist yet). */
function assertSafeSpecsDir(repoRoot: string, specsDir: string): void {
  const st = lstatOrUndefined(specsDir)
  if (!st) return
  if (!st.isDirectory() || !isInside(realpathSync(repoRoot), realpathSync(specsDir))) {
    throw new UserError(
      'PATH_OUTSIDE_REPO',
      `${SPECS_DIR}/ in ${repoRoot} is not a directory inside the repo.`,
      {
        next: `Make ${SPECS_DIR}/ a plain directory of the recovery repo.`,
      },
    )
  }
}

/**
 * The $schema reference for a new spec, relative to recovery-specs/. The repo's own copy
 * (written by init) is portable and preferred; otherwise the file shipped in the installed
 * package, which resolves on this machine only.
 */
function schemaReference(
  repoRoot: string,
  specsDir: string,
  packageRoot: string,
): { ref: string; inRepo: boolean } {
  const inRepo = join(repoRoot, SPECS_DIR, 'schema', SCHEMA_FILE)
  const target = existsSync(inRepo) ? inRepo : join(packageRoot, SPECS_DIR, 'schema', SCHEMA_FILE)
  return { ref: relative(specsDir, target).split(sep).join('/'), inRepo: target === inRepo }
}
