import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../src/cli/base-command.js'
import { CheckFailedError } from '../src/errors.js'
import { allSucceeded } from '../src/engine/execute.js'
import { progressLine, renderExecuteSummary } from '../src/engine/report.js'
import { findRollbackSpec } from '../src/engine/rollback.js'
import { runExecute, type RunExecuteResult } from '../src/engine/run-execute.js'

export default class Rollback extends BaseCommand {
  static override summary =
    'Restore the credential that a request replaced, through its approved rollback spec.'
  static override description =
    'Runs only through a merged spec with action: rollback and rollbackOf: REQUEST-ID, behind the same approval gate as execute. Create one with: nhi-recover new --action rollback --rollback-of REQUEST-ID.'
  static override examples = ['<%= config.bin %> rollback rr-payments-kv-api-key']
  static override args = {
    requestId: Args.string({ description: 'Id of the request whose rotation is undone', required: true }),
  }
  static override flags = {
    config: Flags.string({ char: 'c', description: 'Path of nhi-recover.yaml (default: the repo root)' }),
    'dry-run': Flags.boolean({ description: 'Show exactly what would happen and change nothing' }),
  }

  async run(): Promise<RunExecuteResult> {
    const { args, flags } = await this.parse(Rollback)
    const spec = findRollbackSpec(process.cwd(), args.requestId, flags.config)
    const result = await runExecute({
      cwd: process.cwd(),
      ...(flags.config ? { configPath: flags.config } : {}),
      only: [spec.id],
      concurrency: 1,
      dryRun: flags['dry-run'],
      ...(this.jsonEnabled()
        ? {}
        : {
            onEvent: (e) => {
              const line = progressLine(e)
              if (line) this.out(line)
            },
          }),
    })
    if (!this.jsonEnabled()) this.out(renderExecuteSummary(result))
    const ran = result.requests.find((r) => r.requestId === spec.id)
    if (!allSucceeded(result) || ran?.outcome !== 'succeeded') {
      throw new CheckFailedError(
        'ROLLBACK_NOT_DONE',
        `Rollback ${spec.id} did not run: ${ran?.reason ?? 'not executed'}.`,
        {
          next: 'Check that the rollback spec is merged and approved.',
          details: result,
        },
      )
    }
    return result
  }
}
