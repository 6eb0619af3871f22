/**
 * The one interface every audit signing backend implements: an SSH key file or env var,
 * ssh-agent, or OpenBao/Vault transit. Each signs raw bytes with Ed25519; the ledger wraps
 * the result into an SSHSIG so that `ssh-keygen -Y verify` can check any entry.
 */
import type { SshPublicKey } from '../crypto/ssh-keys.js'

export interface AuditSigner {
  /** ssh, agent or transit; for messages. */
  readonly kind: 'ssh' | 'agent' | 'transit'
  /** The principal the allowed_signers file lists this key under. */
  readonly principal: string
  /** The Ed25519 public key of the signing key. */
  publicKey(): Promise<SshPublicKey>
  /** Raw Ed25519 signatures over each buffer, in order; remote backends batch them. */
  signRaw(data: readonly Buffer[]): Promise<Buffer[]>
}
