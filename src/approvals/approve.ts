/**
 * `nhi-recover approve`: signs an approval statement for the committed content of one spec
 * (or policy file) with an SSH key, writes it beside the spec and commits it on the current
 * branch. The signature is SSHSIG in the namespace nhi-recover-approval, the same bytes
 * `ssh-keygen -Y sign -n nhi-recover-approval` would produce.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync, mkdirSync, writeFileSync, existsSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { CONFIG_FILE } from '../config/repo.js'
import { UserError, isNhiError } from '../errors.js'
import { git, runGit } from '../git/git.js'
import { readFileAt, sha256 } from '../git/history.js'
import { parsePrivateKey, fingerprint, parsePublicKey, type SshPrivateKey } from '../crypto/ssh-keys.js'
import { APPROVAL_NAMESPACE, sign, verify } from '../crypto/sshsig.js'
import { checkSigner, parseAllowedSigners } from '../crypto/allowed-signers.js'
import { parseSource } from '../spec/parse.js'
import { DEFAULT_LIMITS, RecoveryRequest, RepoConfig } from '../spec/schema.js'
import type { ApprovalStatement } from '../policy/types.js'
import { formatStatementFile, statementBytes, statementPath, STATEMENT_TYPE } from './statement.js'

const PRINCIPAL = /^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,127}$/

export interface ApproveOptions {
  cwd: string
  /** The spec (or nhi-recover.yaml, or allowed_signers) to approve. */
  path: string
  /** Private key file; with a .pub file, ssh-keygen signs with the key in ssh-agent. */
  keyFile: string
  /** Principal to sign as; defaults to the key's comment. */
  principal?: string | undefined
  now: Date
  /** Commit the statement (default true). */
  commit?: boolean
}

export interface ApproveResult {
  statement: ApprovalStatement
  /** Repo-relative path of the statement file. */
  file: string
  commit: string | undefined
  fingerprint: string
  /** Things that will make the approval not count, found locally. */
  warnings: string[]
}

/** Signs and commits one approval statement. */
export async function approve(opts: ApproveOptions): Promise<ApproveResult> {
  const root = await git(opts.cwd, ['rev-parse', '--show-toplevel']).catch(() => {
    throw new UserError('NOT_A_CLONE', `${opts.cwd} is not inside a git clone of the recovery repo.`, {
      next: 'Run approve in a clone of the recovery repo, on the pull request branch.',
    })
  })
  const abs = resolve(opts.cwd, opts.path)
  const rel = relative(root, abs).split(sep).join('/')
  if (rel.startsWith('..') || rel === '') {
    throw new UserError('PATH_OUTSIDE_REPO', `${opts.path} is outside the repo at ${root}.`, {
      next: 'Pass a spec inside the repo.',
    })
  }
  if (!existsSync(abs))
    throw new UserError('PATH_NOT_FOUND', `${opts.path} does not exist.`, {
      next: 'Pass the spec file to approve.',
    })
  const content = readFileSync(abs)
  const committed = await readFileAt(root, 'HEAD', rel)
  if (!committed || !committed.equals(content)) {
    throw new UserError(
      'SPEC_NOT_COMMITTED',
      `${rel} differs from its committed version, so there is no fixed content to approve.`,
      {
        next: 'Commit (or discard) the changes to the spec first; an approval is for one exact committed version.',
      },
    )
  }
  const config = loadWorkingConfig(root)
  const signersPath = config?.approvals.ssh?.allowedSigners
  let requestId: string
  if (rel === CONFIG_FILE || rel === signersPath) requestId = `policy:${rel}`
  else {
    const parsed = parseSource(
      RecoveryRequest,
      content.toString('utf8'),
      rel,
      config?.limits ?? DEFAULT_LIMITS,
    )
    if (!parsed.ok) {
      throw new UserError(
        'SPEC_INVALID',
        `${rel} is not a valid recovery request, so it cannot be approved.`,
        {
          next: `Run "nhi-recover validate ${rel}" and fix what it reports.`,
        },
      )
    }
    requestId = parsed.parsed.value.id
  }

  const signer = loadSigner(resolve(opts.cwd, opts.keyFile))
  const principal = opts.principal ?? signer.comment
  if (!principal || !PRINCIPAL.test(principal)) {
    throw new UserError(
      'PRINCIPAL_REQUIRED',
      `The key's comment ("${principal ?? ''}") is not a usable principal.`,
      {
        next: 'Pass --principal with the name your key has in allowed_signers.',
      },
    )
  }
  const statement: ApprovalStatement = {
    type: STATEMENT_TYPE,
    requestId,
    specPath: rel,
    specSha256: sha256(content),
    approver: principal,
    time: opts.now.toISOString(),
  }
  const message = statementBytes(statement)
  const signature = signer.sign(message)
  const check = verify(message, signature, APPROVAL_NAMESPACE)
  if (!check.ok)
    throw new UserError('SIGNING_FAILED', `The signature just made does not verify: ${check.detail}.`)

  const warnings: string[] = []
  if (signersPath) {
    const path = join(root, signersPath)
    if (!existsSync(path))
      warnings.push(
        `${signersPath} does not exist here; the approval counts only if the base branch lists this key`,
      )
    else {
      const c = checkSigner(parseAllowedSigners(readFileSync(path, 'utf8'), signersPath), {
        publicKey: check.signature.publicKey,
        namespace: APPROVAL_NAMESPACE,
        time: opts.now,
        principal,
      })
      if (!c.ok)
        warnings.push(`${c.detail}; the approval counts only once the base branch's ${signersPath} allows it`)
    }
  } else warnings.push(`${CONFIG_FILE} has no approvals.ssh, so signed approvals are not checked`)

  const file = statementPath(rel, principal)
  mkdirSync(dirname(join(root, file)), { recursive: true })
  writeFileSync(join(root, file), formatStatementFile(statement, signature))
  let commit: string | undefined
  if (opts.commit !== false) {
    await runGit(root, ['add', '--', file])
    await runGit(root, [
      'commit',
      '-q',
      '-m',
      `Approve ${requestId} as ${principal}`,
      '-m',
      `spec sha256 ${statement.specSha256}`,
      '--',
      file,
    ])
    commit = await git(root, ['rev-parse', 'HEAD'])
  }
  return { statement, file, commit, fingerprint: fingerprint(check.signature.publicKey), warnings }
}

interface Signer {
  comment: string | undefined
  sign(message: Buffer): string
}

/** An unencrypted ed25519 key signs in-process; anything else goes through ssh-keygen (passphrase prompt, agent). */
function loadSigner(keyFile: string): Signer {
  if (!existsSync(keyFile))
    throw new UserError('KEY_NOT_FOUND', `No key file at ${keyFile}.`, {
      next: 'Pass --key with your SSH private key.',
    })
  const text = readFileSync(keyFile, 'utf8')
  if (keyFile.endsWith('.pub')) {
    const pub = parsePublicKey(text.trim(), keyFile)
    return { comment: pub.comment, sign: (m) => sshKeygenSign(keyFile, m) }
  }
  let key: SshPrivateKey
  try {
    key = parsePrivateKey(text, keyFile)
  } catch (err) {
    if (isNhiError(err) && /encrypted/.test(err.message)) {
      const pub = existsSync(keyFile + '.pub')
        ? parsePublicKey(readFileSync(keyFile + '.pub', 'utf8').trim())
        : undefined
      return { comment: pub?.comment, sign: (m) => sshKeygenSign(keyFile, m) }
    }
    throw err
  }
  return { comment: key.comment || undefined, sign: (m) => sign(m, key, APPROVAL_NAMESPACE) }
}

function sshKeygenSign(keyFile: string, message: Buffer): string {
  try {
    return execFileSync('ssh-keygen', ['-q', '-Y', 'sign', '-f', keyFile, '-n', APPROVAL_NAMESPACE], {
      input: message,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'inherit'],
    })
  } catch {
    throw new UserError('SIGNING_FAILED', `ssh-keygen could not sign with ${keyFile}.`, {
      next: 'Check the passphrase, or load the key into ssh-agent and pass its .pub file.',
    })
  }
}

function loadWorkingConfig(root: string): RepoConfig | undefined {
  const path = join(root, CONFIG_FILE)
  if (!existsSync(path)) return undefined
  const r = parseSource(RepoConfig, readFileSync(path, 'utf8'), CONFIG_FILE, DEFAULT_LIMITS)
  return r.ok ? r.parsed.value : undefined
}
