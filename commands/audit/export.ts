import { Flags } from '@oclif/core'
import { BaseCommand } from '../../src/cli/base-command.js'
import { auditExport, parseWhen, type AuditExportResult } from '../../src/audit/service.js'
import { UserError } from '../../src/errors.js'

export default class AuditExport extends BaseCommand {
  static override summary = 'Export audit entries as JSON lines or CSV.'
  static override description =
    'JSONL lines are the entries exactly as stored (canonical JSON). CSV has one row per entry; cells that a spreadsheet would run as a formula are prefixed with a quote. Takes the same filters as "audit log".'
  static override examples = [
    '<%= config.bin %> audit export --format jsonl > audit.jsonl',
    '<%= config.bin %> audit export --format csv --since 2025-01-01 --output audit-2025.csv',
  ]
  static override flags = {
    config: Flags.string({ char: 'c', description: 'Path of nhi-recover.yaml (default: the repo root)' }),
    format: Flags.string({ description: 'Output format', options: ['jsonl', 'csv'], required: true }),
    output: Flags.string({ char: 'o', description: 'Write to this file instead of stdout' }),
    request: Flags.string({ description: 'Only entries of this request id' }),
    identity: Flags.string({ description: 'Only entries of this identity' }),
    provider: Flags.string({ description: 'Only entries of this provider' }),
    since: Flags.string({ description: 'Only entries at or after this date or date-time (UTC)' }),
    until: Flags.string({ description: 'Only entries at or before this date or date-time (UTC)' }),
    rev: Flags.string({ description: 'Commit to read (default: HEAD)' }),
  }

  async run(): Promise<AuditExportResult> {
    const { flags } = await this.parse(AuditExport)
    if (this.jsonEnabled() && !flags.output)
      throw new UserError(
        'USAGE',
        '--json prints one JSON envelope on stdout, so the export needs --output FILE.',
        {
          next: 'Add --output FILE, or drop --json to stream the export to stdout.',
        },
      )
    return auditExport({
      cwd: process.cwd(),
      format: flags.format as 'jsonl' | 'csv',
      ...(flags.config ? { configPath: flags.config } : {}),
      ...(flags.output ? { output: flags.output } : {}),
      ...(flags.rev ? { rev: flags.rev } : {}),
      write: (line) => this.out(line),
      query: {
        ...(flags.request ? { request: flags.request } : {}),
        ...(flags.identity ? { identity: flags.identity } : {}),
        ...(flags.provider ? { provider: flags.provider } : {}),
        ...(flags.since ? { since: parseWhen('since', flags.since) } : {}),
        ...(flags.until ? { until: parseWhen('until', flags.until) } : {}),
      },
    })
  }
}
