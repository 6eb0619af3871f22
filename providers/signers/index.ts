/** Builds the audit signer that nhi-recover.yaml configures (audit.signer); each backend loads lazily. */
import { readFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import type { AuditSigner } from '../../src/audit/signer.js'
import { parsePublicKey } from '../../src/crypto/ssh-keys.js'
import { UserError } from '../../src/errors.js'
import { Secret } from '../../src/secret.js'
import type { RepoConfig } from '../../src/spec/schema.js'

export interface SignerFactoryOptions {
  /** Relative key files are resolved against this directory. */
  repoRoot: string
  env?: NodeJS.ProcessEnv
}

/** The configured audit signer. Refuses clearly when none is configured or its key is unavailable. */
export async function createAuditSigner(
  config: RepoConfig,
  opts: SignerFactoryOptions,
): Promise<AuditSigner> {
  const env = opts.env ?? process.env
  const s = config.audit.signer
  if (!s)
    throw new UserError(
      'AUDIT_SIGNER_MISSING',
      'nhi-recover.yaml configures no audit signer (audit.signer).',
      {
        next: 'Add audit.signer with kind ssh (keyFile, keyEnv or agent) or kind transit.',
      },
    )
  if (s.kind === 'transit') {
    const provider = config.providers[s.provider]
    if (!provider || provider.kind !== 'vault')
      throw new UserError(
        'AUDIT_SIGNER_PROVIDER',
        `audit.signer.provider names "${s.provider}", which is not a vault provider.`,
        {
          next: 'Name a provider of kind vault.',
        },
      )
    const [{ connectVault }, { transitSigner }] = await Promise.all([
      import('../secret-stores/vault/auth.js'),
      import('./transit.js'),
    ])
    const client = await connectVault(provider, { name: s.provider, env })
    return transitSigner({ client, mount: s.mount, key: s.key, principal: s.principal })
  }
  const { sshAgentSigner, sshKeySigner } = await import('./ssh.js')
  const keyFile = s.keyFile ? (isAbsolute(s.keyFile) ? s.keyFile : join(opts.repoRoot, s.keyFile)) : undefined
  if (s.agent) {
    const publicKey = keyFile
      ? parsePublicKey(readText(keyFile + '.pub', 'audit.signer.keyFile (.pub)'), keyFile + '.pub')
      : undefined
    return sshAgentSigner({ principal: s.principal, ...(publicKey ? { publicKey } : {}) })
  }
  const fromEnv = s.keyEnv ? env[s.keyEnv] : undefined
  if (fromEnv)
    return sshKeySigner({ principal: s.principal, privateKey: new Secret(fromEnv), source: `$${s.keyEnv}` })
  if (keyFile)
    return sshKeySigner({
      principal: s.principal,
      privateKey: new Secret(readText(keyFile, 'audit.signer.keyFile')),
      source: keyFile,
    })
  throw new UserError(
    'AUDIT_SIGNER_KEY_MISSING',
    `The audit signing key is not available${s.keyEnv ? `: $${s.keyEnv} is not set` : ''}.`,
    {
      next: s.keyEnv
        ? `Set ${s.keyEnv} to the OpenSSH private key of the executor.`
        : 'Set audit.signer.keyFile, keyEnv or agent.',
    },
  )
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    throw new UserError('AUDIT_SIGNER_KEY_MISSING', `${what} ${path} cannot be read.`, {
      next: 'Check the path and its permissions.',
    })
  }
}
