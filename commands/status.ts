import { Flags } from '@oclif/core'
import { BaseCommand } from '../src/cli/base-command.js'
import { isInteractiveOutput } from '../src/cli/tty.js'
import { renderStatusTable } from '../src/engine/status-report.js'
import { requestStatus, type StatusResult } from '../src/engine/status.js'
import { resolveGitHubContext } from '../src/approvals/github-context.js'
import { githubForgeFactory } from '../providers/forge/github.js'

export default class Status extends BaseCommand {
  static override summary =
    'Show where every recovery request stands, and the last rotation of each identity.'
  static override description =
    'Reads the committed specs, the audit ledger, the request locks on the remote and the approvals (the same gate execute runs) and changes nothing. States: awaiting approval, approved (not yet executed), executing, done, failed, rolled back, expired, invalid. When approvals cannot be checked (GitHub unavailable), a request shows as "approvals unknown", never as approved. In a terminal it draws a dashboard; otherwise a plain table, or one JSON envelope with --json.'
  static override examples = ['<%= config.bin %> status', '<%= config.bin %> status --json']
  static override flags = {
    config: Flags.string({ char: 'c', description: 'Path of nhi-recover.yaml (default: the repo root)' }),
  }

  async run(): Promise<StatusResult> {
    const { flags } = await this.parse(Status)
    const cwd = process.cwd()
    const env = process.env
    const result = await requestStatus({
      cwd,
      ...(flags.config ? { configPath: flags.config } : {}),
      now: new Date(),
      // As in execute: the CI identity that runs it never counts as an approver.
      ...(env.GITHUB_ACTOR ? { executors: [env.GITHUB_ACTOR] } : {}),
      // Read only when the policy in force uses GitHub; any failure shows as "approvals unknown".
      forgeFactory: async (settings) =>
        githubForgeFactory(await resolveGitHubContext({ cwd, env, flags: {} }), env)(settings),
    })
    if (this.jsonEnabled()) return result
    if (isInteractiveOutput(process.stdout, process.env)) {
      // ink and React load only here, so no other path of the CLI pays for them.
      const { renderStatusDashboard } = await import('../src/ui/status-dashboard.js')
      this.out(renderStatusDashboard(result, { columns: process.stdout.columns || 100 }))
    } else this.out(renderStatusTable(result))
    return result
  }
}
