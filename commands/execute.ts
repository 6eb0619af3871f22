import { Flags } from '@oclif/core'
import { BaseCommand } from '../src/cli/base-command.js'
import { CheckFailedError, UserError } from '../src/errors.js'
import { DURATION } from '../src/spec/schema.js'
import { parseDuration } from '../src/time.js'
import { allSucceeded } from '../src/engine/execute.js'
import { progressLine, renderExecuteSummary } from '../src/engine/report.js'
import { runExecute, type RunExecuteResult } from '../src/engine/run-execute.js'
import type { ExecuteEvent } from '../src/engine/execute.js'
import { isInteractiveOutput } from '../src/cli/tty.js'

function leaseMs(text: string): number {
  if (!DURATION.test(text) || parseDuration(text) < 1000) {
    throw new UserError(
      'USAGE',
      `--lock-lease must be a duration of at least 1s, such as 15m (got "${text}").`,
      {
        next: 'Pass --lock-lease 15m, or leave it out.',
      },
    )
  }
  return parseDuration(text)
}

export default class Execute extends BaseCommand {
  static override aliases = ['apply']
  static override summary = 'Run the approved recovery requests that have not run yet.'
  static override description =
    'Runs on the default branch after merge. It checks the approvals again itself and fails closed, then for each request: lock, prepare, verify, promote, retire (now or after retainPrevious), and one signed audit commit for the run. Safe to re-run: an interrupted run resumes, and nothing rotates twice.'
  static override examples = [
    '<%= config.bin %> execute',
    '<%= config.bin %> execute --dry-run',
    '<%= config.bin %> execute --commit 4f2a9c1 --json',
  ]
  static override flags = {
    config: Flags.string({ char: 'c', description: 'Path of nhi-recover.yaml (default: the repo root)' }),
    commit: Flags.string({ description: 'Commit whose specs run; it must be checked out (default: HEAD)' }),
    'dry-run': Flags.boolean({ description: 'Show exactly what would happen and change nothing' }),
    concurrency: Flags.integer({ description: 'Requests run at once', default: 8, min: 1, max: 64 }),
    only: Flags.string({ description: 'Run only this request id (repeatable)', multiple: true }),
    'lock-lease': Flags.string({
      description:
        "How long this run's request locks stay valid if it dies, e.g. 15m; a later run takes over expired locks",
      default: '15m',
    }),
  }

  async run(): Promise<RunExecuteResult> {
    const { flags } = await this.parse(Execute)
    const json = this.jsonEnabled()
    const lease = leaseMs(flags['lock-lease'])
    // In a terminal an ink view shows each request's current step; elsewhere one line per step.
    // ink and React load only for the view, and never with --json.
    const live =
      !json && isInteractiveOutput(process.stdout, process.env)
        ? (await import('../src/ui/execute-progress.js')).renderExecuteProgress()
        : undefined
    const onEvent = live
      ? (e: ExecuteEvent) => live.onEvent(e)
      : (e: ExecuteEvent) => {
          const line = progressLine(e)
          if (line) this.out(line)
        }
    let result: RunExecuteResult
    try {
      result = await runExecute({
        cwd: process.cwd(),
        ...(flags.config ? { configPath: flags.config } : {}),
        ...(flags.commit ? { commit: flags.commit } : {}),
        ...(flags.only ? { only: flags.only } : {}),
        concurrency: flags.concurrency,
        dryRun: flags['dry-run'],
        leaseMs: lease,
        ...(json ? {} : { onEvent }),
      })
    } finally {
      await live?.stop()
    }
    if (!json) this.out(renderExecuteSummary(result))
    if (!allSucceeded(result)) {
      throw new CheckFailedError('EXECUTION_FAILED', 'Not every request succeeded; see the lines above.', {
        next: 'Failed and refused requests run again on the next execute; rolled-back ones need a new request.',
        details: result,
      })
    }
    return result
  }
}
