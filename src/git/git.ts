/**
 * Git plumbing over the git binary: run a command, stream objects through one
 * `git cat-file --batch`, and read commits including their SSH signatures. Spawning git
 * directly keeps startup cheap and lets the ledger stream 100,000 blobs through one process.
 */
import { spawn } from 'node:child_process'
import { ExternalError } from '../errors.js'

export interface GitResult {
  code: number
  stdout: Buffer
  stderr: string
}

export interface GitOptions {
  input?: string | Buffer
  env?: Record<string, string | undefined>
  /** Return a non-zero exit instead of throwing. */
  allowFail?: boolean
}

/** Environment that makes git's output stable and never prompts. */
function gitEnv(extra?: Record<string, string | undefined>): NodeJS.ProcessEnv {
  return { ...process.env, LC_ALL: 'C', GIT_TERMINAL_PROMPT: '0', GIT_PAGER: 'cat', ...extra }
}

/** Runs git in `cwd`. Throws an ExternalError naming the command when git fails, unless allowFail. */
export function runGit(cwd: string, args: string[], opts: GitOptions = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', args, { cwd, env: gitEnv(opts.env), stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    child.stdout.on('data', (b: Buffer) => out.push(b))
    child.stderr.on('data', (b: Buffer) => err.push(b))
    child.on('error', (e: NodeJS.ErrnoException) =>
      reject(
        new ExternalError('git', 'GIT_UNAVAILABLE', `Could not run git: ${e.code ?? e.message}.`, {
          next: 'Install git 2.34 or later and make sure it is on PATH.',
        }),
      ),
    )
    child.on('close', (code) => {
      const r = { code: code ?? -1, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') }
      if (r.code !== 0 && !opts.allowFail) reject(gitFailed(args, r))
      else resolve(r)
    })
    child.stdin.on('error', () => {}) // git may exit before reading all input; the exit code tells.
    child.stdin.end(opts.input ?? '')
  })
}

/** git's stdout as trimmed text. */
export async function git(cwd: string, args: string[], opts: GitOptions = {}): Promise<string> {
  return (await runGit(cwd, args, opts)).stdout.toString('utf8').trim()
}

export function gitFailed(args: string[], r: GitResult): ExternalError {
  const why = r.stderr.trim().split('\n').slice(-3).join(' ') || `exit code ${r.code}`
  return new ExternalError('git', 'GIT_FAILED', `git ${args[0]} failed: ${why}`, {
    next: 'Check that the directory is a git clone of the recovery repo and that its remote is reachable.',
  })
}

/** The commit a revision names, or undefined when it does not exist (e.g. an unborn branch). */
export async function resolveCommit(cwd: string, rev: string): Promise<string | undefined> {
  const r = await runGit(cwd, ['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], { allowFail: true })
  return r.code === 0 ? r.stdout.toString().trim() : undefined
}

export interface GitObject {
  oid: string
  type: string
  data: Buffer
}

/**
 * Streams objects through one `git cat-file --batch`: feeds the ids as git reads them and
 * yields each object in order, so memory stays bounded however many objects there are.
 */
export async function* catFileBatch(cwd: string, oids: Iterable<string>): AsyncGenerator<GitObject> {
  const child = spawn('git', ['cat-file', '--batch'], { cwd, env: gitEnv(), stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()))
  const spawnError = new Promise<never>((_, reject) => child.on('error', reject))
  spawnError.catch(() => {})
  child.stdin.on('error', () => {})
  // Feed ids with backpressure; git answers in the same order.
  const feeding = (async () => {
    let chunk = ''
    for (const oid of oids) {
      chunk += oid + '\n'
      if (chunk.length >= 64 * 1024) {
        if (!child.stdin.write(chunk)) await new Promise((r) => child.stdin.once('drain', r))
        chunk = ''
      }
    }
    child.stdin.end(chunk)
  })()
  feeding.catch(() => {})

  let buf: Buffer = Buffer.alloc(0)
  // Pieces of a large object wait here until it is complete, so it is copied once, not per piece.
  let pending: Buffer[] = []
  /** Bytes held in buf and pending; need: bytes the next object takes, 0 while unknown. */
  let held = 0
  let need = 0
  try {
    for await (const piece of child.stdout as AsyncIterable<Buffer>) {
      if (need > 0 && held + piece.length < need) {
        pending.push(piece)
        held += piece.length
        continue
      }
      buf = pending.length || buf.length ? Buffer.concat([buf, ...pending, piece]) : piece
      pending = []
      need = 0
      let pos = 0
      for (;;) {
        const nl = buf.indexOf(10, pos)
        if (nl < 0) break
        const header = buf.toString('latin1', pos, nl)
        const parts = header.split(' ')
        if (parts[1] === 'missing')
          throw new ExternalError('git', 'GIT_OBJECT_MISSING', `git object ${parts[0]} is missing.`)
        const size = Number(parts[2])
        if (parts.length !== 3 || !Number.isInteger(size))
          throw new ExternalError(
            'git',
            'GIT_FAILED',
            `unexpected git cat-file output: ${header.slice(0, 80)}`,
          )
        if (buf.length < nl + 1 + size + 1) {
          need = nl + 1 + size + 1 - pos
          break
        }
        yield { oid: parts[0]!, type: parts[1]!, data: buf.subarray(nl + 1, nl + 1 + size) }
        pos = nl + 1 + size + 1
      }
      buf = buf.subarray(pos)
      held = buf.length
    }
    await feeding
  } finally {
    if (child.exitCode === null) child.kill()
  }
  if (stderr.trim()) throw new ExternalError('git', 'GIT_FAILED', `git cat-file failed: ${stderr.trim()}`)
}

/** A parsed commit object. */
export interface Commit {
  oid: string
  tree: string
  parents: string[]
  committerTime: Date
  message: string
  /** The armored signature from the gpgsig header, if any. */
  signature?: string
  /** The bytes the signature covers: the commit object without its gpgsig header. */
  payload: Buffer
}

/** Parses a raw commit object the way git does for verify-commit. */
export function parseCommit(oid: string, data: Buffer): Commit {
  // latin1 round-trips every byte, so the payload is exactly what was signed.
  const text = data.toString('latin1')
  const end = text.indexOf('\n\n')
  const headerText = end < 0 ? text : text.slice(0, end)
  const rawMessage = end < 0 ? '' : text.slice(end + 2)
  const message = Buffer.from(rawMessage, 'latin1').toString('utf8')
  const lines = headerText.split('\n')
  const kept: string[] = []
  const sig: string[] = []
  let inSig = false
  let tree = ''
  const parents: string[] = []
  let committerTime = new Date(0)
  for (const line of lines) {
    if (inSig && line.startsWith(' ')) {
      sig.push(line.slice(1))
      continue
    }
    inSig = false
    if (line.startsWith('gpgsig ')) {
      inSig = true
      sig.push(line.slice('gpgsig '.length))
      continue
    }
    kept.push(line)
    if (line.startsWith('tree ')) tree = line.slice(5)
    else if (line.startsWith('parent ')) parents.push(line.slice(7))
    else if (line.startsWith('committer ')) {
      const m = / (\d+) [+-]\d{4}$/.exec(line)
      if (m) committerTime = new Date(Number(m[1]) * 1000)
    }
  }
  const payload = Buffer.from(kept.join('\n') + (end < 0 ? '' : '\n\n' + rawMessage), 'latin1')
  return {
    oid,
    tree,
    parents,
    committerTime,
    message,
    ...(sig.length ? { signature: sig.join('\n') + '\n' } : {}),
    payload,
  }
}

/** One change in a commit's diff against its first parent (git diff --raw). */
export interface RawChange {
  status: string
  oldOid: string
  newOid: string
  newMode: string
  path: string
}

export interface CommitChanges {
  oid: string
  parents: string[]
  changes: RawChange[]
}

/**
 * Every commit on the first-parent chain of `rev` that touched `path`, newest first, with
 * its raw diff against its first parent. First-parent diffs add up exactly to the tree at
 * `rev`, so nothing that reached the tree escapes the walk.
 */
export async function firstParentChanges(cwd: string, rev: string, path: string): Promise<CommitChanges[]> {
  const r = await runGit(cwd, [
    'log',
    '--first-parent',
    '--diff-merges=first-parent',
    '--no-renames',
    '--raw',
    '-z',
    '--no-abbrev',
    '--format=%x01%H %P',
    rev,
    '--',
    path,
  ])
  const tokens = r.stdout.toString('utf8').split('\0')
  const out: CommitChanges[] = []
  let cur: CommitChanges | undefined
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!.replace(/^\n/, '')
    if (t === '') continue
    if (t.startsWith('\x01')) {
      const [oid, ...parents] = t.slice(1).trim().split(' ')
      cur = { oid: oid!, parents: parents.filter(Boolean), changes: [] }
      out.push(cur)
    } else if (t.startsWith(':') && cur) {
      const [, newMode, oldOid, newOid, status] = t.slice(1).split(' ')
      const p = tokens[++i] ?? ''
      cur.changes.push({
        status: status ?? '?',
        oldOid: oldOid ?? '',
        newOid: newOid ?? '',
        newMode: newMode ?? '',
        path: p,
      })
    }
  }
  return out
}
