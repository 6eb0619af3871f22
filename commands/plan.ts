import { Flags } from '@oclif/core'
import { BaseCommand } from '../src/cli/base-command.js'
import { UserError } from '../src/errors.js'
import { planPullRequest, type PlanResult, type TargetStateReader } from '../src/approvals/plan.js'
import { resolveGitHubContext } from '../src/approvals/github-context.js'
import { renderGateReport } from '../src/approvals/report.js'
import { githubForgeFactory } from '../providers/forge/github.js'
import { readTargetVersions } from '../providers/target-versions.js'

export default class Plan extends BaseCommand {
  static override summary =
    'Show what a pull request would change and what approvals it still needs, on the PR itself.'
  static override description = `Reads each target's current version ids (never a value), keeps one sticky comment on the pull request up to date, and sets the commit status nhi-recover/approvals. Exit 0 once published, whether approved or not; 3 when GitHub could not be reached.`
  static override examples = ['<%= config.bin %> plan --pr 42']
  static override flags = {
    pr: Flags.integer({ description: 'Pull request number (default in Actions: the event’s)', min: 1 }),
    base: Flags.string({ description: 'Base branch or commit to read GitHub settings from first' }),
    repo: Flags.string({
      description: 'GitHub repository owner/name (default: GITHUB_REPOSITORY or origin)',
    }),
  }

  async run(): Promise<PlanResult> {
    const { flags } = await this.parse(Plan)
    const cwd = process.cwd()
    const ctx = await resolveGitHubContext({ cwd, env: process.env, flags })
    if (ctx.pr === undefined) {
      throw new UserError('PR_REQUIRED', 'plan needs a pull request.', {
        next: 'Pass --pr N, or run it on a pull_request event.',
      })
    }
    const readState: TargetStateReader = (spec, config) =>
      readTargetVersions({ spec, config, cwd, env: process.env })
    const result = await planPullRequest({
      cwd,
      pr: ctx.pr,
      ...(ctx.base ? { base: ctx.base } : {}),
      now: new Date(),
      forgeFactory: githubForgeFactory(ctx, process.env),
      readState,
    })
    if (!this.jsonEnabled()) {
      this.out(renderGateReport(result.gate))
      this.out(`\nPlan comment ${result.comment.action}: ${result.comment.url}`)
      this.out(`Status ${result.status.context}: ${result.status.state} (${result.status.description})`)
    }
    return result
  }
}
