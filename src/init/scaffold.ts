/**
 * The init service. It plans every file first and writes only when the whole plan is
 * clear, so a refused init leaves the directory exactly as it was.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, lstatSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { UserError } from '../errors.js'
import { CONFIG_FILE, findRepoRoot } from '../config/repo.js'
import { jsonSchemas } from '../spec/schema.js'
import { SPECS_DIR } from '../spec/validate.js'
import {
  ALLOWED_SIGNERS_TEMPLATE,
  AUDIT_GITKEEP,
  RECOVERY_SPECS_README,
  codeownersTemplate,
  NHI_DIR_GITIGNORE,
  executeWorkflowTemplate,
  pullRequestWorkflowTemplate,
  repoConfigTemplate,
  type TemplateOptions,
} from './templates.js'

/** A CODEOWNERS owner: @user or @org/team. */
export const OWNER = /^@[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})(?:\/[A-Za-z0-9][A-Za-z0-9_.-]{0,99})?$/

export interface InitOptions {
  /** Directory to scaffold; created when missing. */
  dir: string
  /** Overwrite files that already exist. */
  force: boolean
  version: string
  securityTeam: string
}

export interface PlannedFile {
  /** Path relative to the scaffolded directory, with "/" separators. */
  path: string
  content: string
  exists: boolean
}

export interface InitResult {
  dir: string
  created: string[]
  overwritten: string[]
  /** Whether the directory is already the root of a git repository. */
  gitRepo: boolean
  /** Root of an enclosing git repository, when DIR lies inside one without being its root. */
  enclosingRepo?: string
}

/** Every file init writes, relative to the repo root. */
export function scaffoldFiles(opts: TemplateOptions): Array<{ path: string; content: string }> {
  const schemas = Object.entries(jsonSchemas()).map(([name, schema]) => ({
    path: `${SPECS_DIR}/schema/${name}`,
    content: JSON.stringify(schema, null, 2) + '\n',
  }))
  return [
    { path: CONFIG_FILE, content: repoConfigTemplate(opts) },
    { path: `${SPECS_DIR}/README.md`, content: RECOVERY_SPECS_README },
    ...schemas,
    { path: 'audit/.gitkeep', content: AUDIT_GITKEEP },
    { path: '.nhi-recover/allowed_signers', content: ALLOWED_SIGNERS_TEMPLATE },
    { path: '.nhi-recover/.gitignore', content: NHI_DIR_GITIGNORE },
    { path: '.github/workflows/nhi-recover-pr.yml', content: pullRequestWorkflowTemplate(opts) },
    { path: '.github/workflows/nhi-recover-execute.yml', content: executeWorkflowTemplate(opts) },
    { path: '.github/CODEOWNERS.suggested', content: codeownersTemplate(opts) },
  ]
}

function lstatOrUndefined(p: string) {
  try {
    return lstatSync(p)
  } catch (err) {
    // ENOTDIR: a parent is a file, which planInit reports as the blocker.
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined
    throw err
  }
}

/** Like lstatOrUndefined but follows a symlink: DIR itself may be a link to a directory. */
function statOrUndefined(p: string) {
  try {
    return statSync(p)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/**
 * Checks the target directory against the files to write. Returns the plan; throws when
 * something is in the way that even --force must not replace (a directory where a file
 * goes, a file or symlink where a directory goes).
 */
export function planInit(root: string, files: Array<{ path: string; content: string }>): PlannedFile[] {
  const blockers: string[] = []
  const checkedDirs = new Set<string>()
  const planned = files.map((f) => {
    const parts = f.path.split('/')
    for (let i = 1; i < parts.length; i++) {
      const rel = parts.slice(0, i).join('/')
      if (checkedDirs.has(rel)) continue
      checkedDirs.add(rel)
      const st = lstatOrUndefined(join(root, rel))
      // A symlinked directory could lead the writes outside the target; refuse it.
      if (st && !st.isDirectory()) blockers.push(`${rel} exists but is not a directory`)
    }
    const st = lstatOrUndefined(join(root, f.path))
    if (st?.isDirectory()) blockers.push(`${f.path} exists and is a directory`)
    return { ...f, exists: st !== undefined }
  })
  if (blockers.length > 0) {
    throw new UserError(
      'PATH_CONFLICT',
      `Cannot scaffold in ${root}: ${blockers.join('; ')}. Nothing was written.`,
      {
        next: 'Move those paths aside and run nhi-recover init again.',
      },
    )
  }
  return planned
}

/** Scaffolds a recovery repo in opts.dir. */
export function initRepo(opts: InitOptions): InitResult {
  if (!OWNER.test(opts.securityTeam)) {
    throw new UserError('INVALID_OWNER', '--security-team must be a GitHub owner such as @acme/security.', {
      next: 'Pass the team that reviews recovery requests, e.g. --security-team @acme/security.',
    })
  }
  const root = resolve(opts.dir)
  const st = statOrUndefined(root)
  if (st && !st.isDirectory()) {
    throw new UserError('DIR_IS_FILE', `${opts.dir} exists and is not a directory.`, {
      next: 'Pass a new or existing directory to nhi-recover init.',
    })
  }
  const planned = planInit(root, scaffoldFiles(opts))
  const existing = planned.filter((f) => f.exists).map((f) => f.path)
  if (existing.length > 0 && !opts.force) {
    throw new UserError(
      'FILES_EXIST',
      `Refusing to overwrite ${existing.length} existing file(s) in ${opts.dir}: ${existing.join(', ')}. Nothing was written.`,
      { next: 'Move those files aside, or run again with --force to overwrite them.' },
    )
  }

  const created: string[] = []
  const overwritten: string[] = []
  for (const f of planned) {
    try {
      writePlanned(root, f)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'unknown error'
      const done = [...created, ...overwritten]
      throw new UserError(
        'WRITE_FAILED',
        `Could not write ${f.path} (${code}). ${done.length > 0 ? `Already written: ${done.join(', ')}.` : 'Nothing was written.'}`,
        {
          next: 'Fix the cause (permissions, a file created meanwhile) and run nhi-recover init again, with --force to replace what was written.',
        },
      )
    }
    ;(f.exists ? overwritten : created).push(f.path)
  }
  const gitRepo = existsSync(join(root, '.git'))
  const enclosing = gitRepo ? root : findRepoRoot(root)
  return {
    dir: root,
    created,
    overwritten,
    gitRepo,
    ...(enclosing !== root ? { enclosingRepo: enclosing } : {}),
  }
}

function writePlanned(root: string, f: PlannedFile): void {
  const abs = join(root, f.path)
  mkdirSync(dirname(abs), { recursive: true })
  if (f.exists) {
    // Write beside and rename over: the old file (or a symlink in its place) is replaced, never followed.
    const tmp = `${abs}.nhi-tmp-${randomBytes(4).toString('hex')}`
    try {
      writeFileSync(tmp, f.content, { flag: 'wx' })
      renameSync(tmp, abs)
    } catch (err) {
      rmSync(tmp, { force: true })
      throw err
    }
  } else {
    // 'wx' fails rather than clobber a file that appeared after the plan was made.
    writeFileSync(abs, f.content, { flag: 'wx' })
  }
}
