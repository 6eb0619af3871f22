import { Flags } from '@oclif/core'
import { BaseCommand } from '../../src/cli/base-command.js'
import { auditLog, parseWhen, renderLogTable, type AuditLogResult } from '../../src/audit/service.js'

export default class AuditLog extends BaseCommand {
  static override summary = 'List audit entries, filtered by request, identity, provider or date.'
  static override description =
    'Reads the committed ledger. It does not verify it: run "audit verify" for that.'
  static override examples = [
    '<%= config.bin %> audit log --identity payments-api',
    '<%= config.bin %> audit log --since 2025-06-01 --until 2025-06-30 --json',
  ]
  static override flags = {
    config: Flags.string({ char: 'c', description: 'Path of nhi-recover.yaml (default: the repo root)' }),
    request: Flags.string({ description: 'Only entries of this request id' }),
    identity: Flags.string({ description: 'Only entries of this identity' }),
    provider: Flags.string({ description: 'Only entries of this provider' }),
    since: Flags.string({ description: 'Only entries at or after this date or date-time (UTC)' }),
    until: Flags.string({ description: 'Only entries at or before this date or date-time (UTC)' }),
    rev: Flags.string({ description: 'Commit to read (default: HEAD)' }),
  }

  async run(): Promise<AuditLogResult> {
    const { flags } = await this.parse(AuditLog)
    const result = await auditLog({
      cwd: process.cwd(),
      ...(flags.config ? { configPath: flags.config } : {}),
      ...(flags.rev ? { rev: flags.rev } : {}),
      query: {
        ...(flags.request ? { request: flags.request } : {}),
        ...(flags.identity ? { identity: flags.identity } : {}),
        ...(flags.provider ? { provider: flags.provider } : {}),
        ...(flags.since ? { since: parseWhen('since', flags.since) } : {}),
        ...(flags.until ? { until: parseWhen('until', flags.until) } : {}),
      },
    })
    if (!this.jsonEnabled()) this.out(renderLogTable(result.entries))
    return result
  }
}
