/**
 * SSH audit signers: an unencrypted OpenSSH ed25519 key from a file or an env var, or a key
 * held by ssh-agent (spoken to directly over SSH_AUTH_SOCK, so the key never leaves the agent).
 */
import { sign as nodeSign } from 'node:crypto'
import { createConnection } from 'node:net'
import type { AuditSigner } from '../../src/audit/signer.js'
import {
  ED25519,
  WireReader,
  fingerprint,
  parsePrivateKey,
  publicKeyFromBlob,
  wireStrings,
  type SshPublicKey,
} from '../../src/crypto/ssh-keys.js'
import { ExternalError, UserError } from '../../src/errors.js'
import type { Secret } from '../../src/secret.js'

/** Signs with a private key held in memory; `source` names where it came from, for messages. */
export function sshKeySigner(o: { principal: string; privateKey: Secret; source: string }): AuditSigner {
  const key = parsePrivateKey(o.privateKey.reveal(), o.source)
  return {
    kind: 'ssh',
    principal: o.principal,
    publicKey: async () => key.publicKey,
    signRaw: async (data) => data.map((d) => nodeSign(null, d, key.keyObject)),
  }
}

const SSH_AGENT_FAILURE = 5
const SSH2_AGENTC_REQUEST_IDENTITIES = 11
const SSH2_AGENT_IDENTITIES_ANSWER = 12
const SSH2_AGENTC_SIGN_REQUEST = 13
const SSH2_AGENT_SIGN_RESPONSE = 14

/** A minimal ssh-agent client: list identities and sign. */
class AgentClient {
  #socket: string
  constructor(socket: string) {
    this.#socket = socket
  }

  /** Sends requests in order on one connection and returns the replies. */
  async exchange(requests: Buffer[]): Promise<{ type: number; body: Buffer }[]> {
    return new Promise((resolve, reject) => {
      const conn = createConnection(this.#socket)
      const replies: { type: number; body: Buffer }[] = []
      let buf = Buffer.alloc(0)
      const fail = (e: Error) => {
        conn.destroy()
        reject(
          new ExternalError(
            'ssh-agent',
            'SSH_AGENT_UNAVAILABLE',
            `ssh-agent at SSH_AUTH_SOCK did not answer: ${e.message}`,
            {
              next: 'Start ssh-agent, load the key with ssh-add, and export SSH_AUTH_SOCK.',
            },
          ),
        )
      }
      conn.on('error', fail)
      conn.on('connect', () => {
        for (const r of requests) {
          const len = Buffer.alloc(4)
          len.writeUInt32BE(r.length, 0)
          conn.write(Buffer.concat([len, r]))
        }
      })
      conn.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk])
        while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
          const len = buf.readUInt32BE(0)
          replies.push({ type: buf[4]!, body: buf.subarray(5, 4 + len) })
          buf = buf.subarray(4 + len)
        }
        if (replies.length === requests.length) {
          conn.end()
          resolve(replies)
        }
      })
      conn.on('close', () => {
        if (replies.length < requests.length) fail(new Error('connection closed'))
      })
    })
  }

  async identities(): Promise<SshPublicKey[]> {
    const [r] = await this.exchange([Buffer.from([SSH2_AGENTC_REQUEST_IDENTITIES])])
    if (!r || r.type !== SSH2_AGENT_IDENTITIES_ANSWER) throw new Error('unexpected reply to list identities')
    const rd = new WireReader(r.body)
    const n = rd.uint32()
    const out: SshPublicKey[] = []
    for (let i = 0; i < n; i++) {
      const blob = rd.string()
      const comment = rd.text()
      out.push(publicKeyFromBlob(blob, comment))
    }
    return out
  }
}

/**
 * Signs with a key in ssh-agent. `publicKey` picks the key (as git's user.signingkey does);
 * without it the agent must hold exactly one ed25519 key.
 */
export function sshAgentSigner(o: {
  principal: string
  socket?: string
  publicKey?: SshPublicKey
}): AuditSigner {
  const socket = o.socket ?? process.env.SSH_AUTH_SOCK
  if (!socket)
    throw new UserError(
      'SSH_AGENT_UNAVAILABLE',
      'The audit signer uses ssh-agent, but SSH_AUTH_SOCK is not set.',
      {
        next: 'Start ssh-agent, load the key with ssh-add, and export SSH_AUTH_SOCK.',
      },
    )
  const agent = new AgentClient(socket)
  let chosen: Promise<SshPublicKey> | undefined
  const publicKey = () =>
    (chosen ??= agent.identities().then((ids) => {
      const ed = ids.filter((k) => k.type === ED25519)
      const match = o.publicKey
        ? ed.find((k) => k.blob.equals(o.publicKey!.blob))
        : ed.length === 1
          ? ed[0]
          : undefined
      if (!match)
        throw new UserError(
          'SSH_AGENT_KEY_MISSING',
          o.publicKey
            ? `ssh-agent does not hold the audit key ${fingerprint(o.publicKey)}.`
            : `ssh-agent holds ${ed.length} ed25519 keys; name the audit key with audit.signer.keyFile (its .pub).`,
          { next: 'Load the audit key with ssh-add.' },
        )
      return match
    }))
  return {
    kind: 'agent',
    principal: o.principal,
    publicKey,
    async signRaw(data) {
      const pk = await publicKey()
      const flags = Buffer.alloc(4)
      const replies = await agent.exchange(
        data.map((d) =>
          Buffer.concat([Buffer.from([SSH2_AGENTC_SIGN_REQUEST]), wireStrings(pk.blob, d), flags]),
        ),
      )
      return replies.map((r) => {
        if (r.type === SSH_AGENT_FAILURE || r.type !== SSH2_AGENT_SIGN_RESPONSE)
          throw new ExternalError(
            'ssh-agent',
            'SSH_AGENT_REFUSED',
            'ssh-agent refused to sign with the audit key.',
            {
              next: 'Check that the key is loaded and not restricted (ssh-add -l).',
            },
          )
        const sig = new WireReader(new WireReader(r.body).string())
        if (sig.text() !== ED25519)
          throw new ExternalError(
            'ssh-agent',
            'SSH_AGENT_REFUSED',
            'ssh-agent returned a non-ed25519 signature.',
          )
        return Buffer.from(sig.string())
      })
    },
  }
}
