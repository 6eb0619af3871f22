/**
 * OpenBao / Vault transit as the audit signer: an ed25519 transit key signs on the server and
 * never leaves it. Its public key goes into allowed_signers, so verification stays offline.
 */
import type { AuditSigner } from '../../src/audit/signer.js'
import { formatAllowedSigner } from '../../src/crypto/allowed-signers.js'
import { ed25519PublicKey, type SshPublicKey } from '../../src/crypto/ssh-keys.js'
import { AUDIT_NAMESPACE } from '../../src/crypto/sshsig.js'
import { ExternalError, UserError } from '../../src/errors.js'
import { apiPath, type VaultHttp } from '../vault-client.js'

export interface TransitSignerOptions {
  client: VaultHttp
  /** Mount path of the transit engine, e.g. "transit". */
  mount: string
  /** Name of the ed25519 transit key. */
  key: string
  principal: string
}

/** Signatures per request; transit takes a batch_input list. */
const BATCH = 250

interface KeyVersion {
  version: number
  publicKey: SshPublicKey
}

/** Every version of the transit key with its public key, newest last. */
export async function transitKeyVersions(o: Omit<TransitSignerOptions, 'principal'>): Promise<KeyVersion[]> {
  const res = await o.client.call({
    method: 'GET',
    path: apiPath(o.mount, 'keys', o.key),
    capability: 'read',
  })
  const data = res.body?.data
  if (data?.type !== 'ed25519')
    throw new UserError(
      'TRANSIT_KEY_TYPE',
      `The transit key ${o.mount}/keys/${o.key} is ${String(data?.type)}, not ed25519.`,
      {
        next: `Create an ed25519 key: bao write -f ${o.mount}/keys/${o.key} type=ed25519`,
      },
    )
  const out: KeyVersion[] = []
  for (const [v, info] of Object.entries((data.keys ?? {}) as Record<string, { public_key?: string }>)) {
    const raw = Buffer.from(info.public_key ?? '', 'base64')
    if (raw.length !== 32)
      throw new ExternalError(
        'vault',
        'TRANSIT_KEY_MALFORMED',
        `Transit key ${o.key} version ${v} has no ed25519 public key.`,
      )
    out.push({ version: Number(v), publicKey: ed25519PublicKey(raw, `transit:${o.mount}/${o.key}:v${v}`) })
  }
  return out.sort((a, b) => a.version - b.version)
}

/** The allowed_signers line for the newest version of the transit key. */
export async function transitAllowedSigner(
  o: TransitSignerOptions,
  window: { validAfter?: Date } = {},
): Promise<string> {
  const versions = await transitKeyVersions(o)
  const latest = versions[versions.length - 1]!
  return formatAllowedSigner({
    principals: o.principal,
    publicKey: latest.publicKey,
    namespaces: AUDIT_NAMESPACE,
    ...(window.validAfter ? { validAfter: window.validAfter } : {}),
    comment: latest.publicKey.comment ?? '',
  })
}

/** An audit signer that signs with the newest version of a transit key. */
export function transitSigner(o: TransitSignerOptions): AuditSigner {
  let current: Promise<KeyVersion> | undefined
  const latest = () =>
    (current ??= transitKeyVersions(o).then((v) => {
      const last = v[v.length - 1]
      if (!last)
        throw new ExternalError('vault', 'TRANSIT_KEY_MALFORMED', `Transit key ${o.key} has no versions.`)
      return last
    }))
  return {
    kind: 'transit',
    principal: o.principal,
    publicKey: async () => (await latest()).publicKey,
    async signRaw(data) {
      const { version } = await latest()
      const out: Buffer[] = []
      for (let i = 0; i < data.length; i += BATCH) {
        const part = data.slice(i, i + BATCH)
        const res = await o.client.call({
          method: 'POST',
          path: apiPath(o.mount, 'sign', o.key),
          capability: 'update',
          // Pinning the version keeps signatures and the public key we embed in step.
          json: { key_version: version, batch_input: part.map((d) => ({ input: d.toString('base64') })) },
        })
        const results = (res.body?.data?.batch_results ?? []) as { signature?: string; error?: string }[]
        if (results.length !== part.length)
          throw new ExternalError(
            'vault',
            'TRANSIT_SIGN_FAILED',
            `Transit returned ${results.length} signatures for ${part.length} inputs.`,
          )
        for (const r of results) {
          const m = /^vault:v(\d+):([A-Za-z0-9+/=]+)$/.exec(r.signature ?? '')
          if (!m || Number(m[1]) !== version)
            throw new ExternalError(
              'vault',
              'TRANSIT_SIGN_FAILED',
              `Transit could not sign an audit entry${r.error ? `: ${r.error}` : ''}.`,
              {
                next: `Check that the executor token may update ${o.mount}/sign/${o.key}.`,
              },
            )
          out.push(Buffer.from(m[2]!, 'base64'))
        }
      }
      return out
    },
  }
}
