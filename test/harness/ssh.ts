/** Real SSH keys for tests, generated at run time with ssh-keygen; never committed. */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface TestKey {
  /** Principal the key signs as. */
  principal: string
  /** Path of the unencrypted private key; the public key is beside it with .pub. */
  privatePath: string
  publicPath: string
  /** "ssh-ed25519 AAAA… comment" */
  publicLine: string
  privatePem: string
}

/** Generates an unencrypted ed25519 key under `dir`, named by its principal. */
export function generateKey(dir: string, principal: string, opts: { passphrase?: string } = {}): TestKey {
  const privatePath = join(dir, principal.replace(/[^A-Za-z0-9_.-]/g, '_'))
  execFileSync(
    'ssh-keygen',
    ['-q', '-t', 'ed25519', '-N', opts.passphrase ?? '', '-C', principal, '-f', privatePath],
    {
      stdio: 'ignore',
    },
  )
  return {
    principal,
    privatePath,
    publicPath: privatePath + '.pub',
    publicLine: readFileSync(privatePath + '.pub', 'utf8').trim(),
    privatePem: readFileSync(privatePath, 'utf8'),
  }
}

/** Runs ssh-keygen and returns its exit code and output, never throwing on a non-zero exit. */
export function sshKeygen(
  args: string[],
  input?: string | Buffer,
): { status: number; stdout: string; stderr: string } {
  try {
    const stdout = execFileSync('ssh-keygen', args, {
      input: input ?? '',
      stdio: ['pipe', 'pipe', 'pipe'],
      encoding: 'utf8',
    })
    return { status: 0, stdout, stderr: '' }
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string }
    return { status: e.status ?? -1, stdout: String(e.stdout ?? ''), stderr: String(e.stderr ?? '') }
  }
}
