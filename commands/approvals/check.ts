import { Flags } from '@oclif/core'
import { BaseCommand } from '../../src/cli/base-command.js'
import { CheckFailedError } from '../../src/errors.js'
import { checkApprovals, type GateResult } from '../../src/approvals/gate.js'
import { resolveGitHubContext } from '../../src/approvals/github-context.js'
import { renderGateReport } from '../../src/approvals/report.js'
import { githubForgeFactory } from '../../providers/forge/github.js'

export default class ApprovalsCheck extends BaseCommand {
  static override summary = 'Check that a pull request or commit has every approval its tier needs.'
  static override description = `Exit 0 when everything is approved, 1 when something is blocked (every reason is listed), 3 when GitHub could not be asked (blocked: nothing counts as approved).
The policy in force is always the base branch's nhi-recover.yaml and allowed_signers. In GitHub Actions the pull request, repository and token come from the environment; in a terminal pass --pr or --commit.`
  static override examples = [
    '<%= config.bin %> approvals check --pr 42',
    '<%= config.bin %> approvals check --commit HEAD --json',
  ]
  static override flags = {
    pr: Flags.integer({ description: 'Pull request number (default in Actions: the event’s)', min: 1 }),
    commit: Flags.string({ description: 'Commit to check, e.g. the merge commit on the default branch' }),
    base: Flags.string({
      description: 'Base branch or commit (default: the pull request’s base, or the first parent)',
    }),
    repo: Flags.string({
      description: 'GitHub repository owner/name (default: GITHUB_REPOSITORY or origin)',
    }),
  }

  async run(): Promise<GateResult> {
    const { flags } = await this.parse(ApprovalsCheck)
    const cwd = process.cwd()
    const ctx = await resolveGitHubContext({ cwd, env: process.env, flags })
    const result = await checkApprovals({
      cwd,
      ...(ctx.pr !== undefined ? { pr: ctx.pr } : {}),
      ...(ctx.commit !== undefined ? { commit: ctx.commit } : {}),
      ...(ctx.base ? { base: ctx.base } : {}),
      now: new Date(),
      forgeFactory: githubForgeFactory(ctx, process.env),
    })
    if (!this.jsonEnabled()) this.out(renderGateReport(result))
    if (!result.allowed) {
      throw new CheckFailedError('APPROVALS_MISSING', result.summary, {
        next: 'Get the approvals listed above (a new review, or "nhi-recover approve" for signed ones), then run the check again.',
        details: result,
      })
    }
    return result
  }
}
