import { Flags } from '@oclif/core'
import { BaseCommand } from '../../src/cli/base-command.js'
import { auditVerify, ledgerTamperedError, renderVerifyReport } from '../../src/audit/service.js'
import type { VerifyLedgerResult } from '../../src/audit/verify.js'

export default class AuditVerify extends BaseCommand {
  static override summary = 'Verify the signed, hash-chained audit ledger offline.'
  static override description =
    'Checks every entry (hash, SSH signature, signer validity window), the chain, that only signed audit commits ever added entries and none was modified or deleted, and that the tail matches the newest audit commit. Needs only the clone and the public keys. Exits 1 naming the first bad entry.'
  static override examples = [
    '<%= config.bin %> audit verify',
    '<%= config.bin %> audit verify --allowed-signers ~/trusted/allowed_signers --json',
  ]
  static override flags = {
    config: Flags.string({ char: 'c', description: 'Path of nhi-recover.yaml (default: the repo root)' }),
    'allowed-signers': Flags.string({
      description: 'Trusted allowed_signers file (default: approvals.ssh.allowedSigners in the repo)',
    }),
    rev: Flags.string({ description: 'Commit to verify (default: HEAD)' }),
    checkpoint: Flags.boolean({
      description: 'Compare with and record the tail this clone verified last, to catch force-pushes',
      default: true,
      allowNo: true,
    }),
  }

  async run(): Promise<VerifyLedgerResult> {
    const { flags } = await this.parse(AuditVerify)
    const result = await auditVerify({
      cwd: process.cwd(),
      ...(flags.config ? { configPath: flags.config } : {}),
      ...(flags['allowed-signers'] ? { allowedSignersPath: flags['allowed-signers'] } : {}),
      ...(flags.rev ? { rev: flags.rev } : {}),
      checkpoint: flags.checkpoint,
    })
    if (!this.jsonEnabled()) this.out(renderVerifyReport(result))
    if (!result.ok) throw ledgerTamperedError(result)
    return result
  }
}
