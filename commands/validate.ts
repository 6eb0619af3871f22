import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../src/cli/base-command.js'
import { CheckFailedError } from '../src/errors.js'
import type { ValidateResult } from '../src/spec/validate.js'
import { validateSpecsParallel } from '../src/spec/validate-pool.js'
import { renderValidateReport } from '../src/spec/report.js'

export default class Validate extends BaseCommand {
  static override summary = 'Check recovery specs against the schema, the repo config and the clock.'
  static override description =
    'Every problem names file:line:col. Inline secrets are refused without echoing them. In GitHub Actions, problems are also emitted as annotations.'
  static override examples = [
    '<%= config.bin %> validate',
    '<%= config.bin %> validate recovery-specs/rr-payments-key.yaml --json',
  ]
  static override strict = false
  static override args = {
    paths: Args.string({
      description: 'Spec files or directories (default: recovery-specs/)',
      required: false,
    }),
  }
  static override flags = {
    config: Flags.string({ char: 'c', description: 'Path of nhi-recover.yaml (default: the repo root)' }),
  }

  async run(): Promise<ValidateResult> {
    const { argv, flags } = await this.parse(Validate)
    const result = await validateSpecsParallel({
      cwd: process.cwd(),
      paths: argv as string[],
      ...(flags.config ? { configPath: flags.config } : {}),
      now: new Date(),
    })
    if (!this.jsonEnabled()) {
      this.out(renderValidateReport(result, { githubActions: process.env.GITHUB_ACTIONS === 'true' }))
    }
    if (result.invalid > 0) {
      throw new CheckFailedError(
        'SPEC_INVALID',
        `${result.problems.length} problem(s) in ${result.invalid} of ${result.specs.length} spec(s).`,
        {
          next: 'Fix the problems listed above (each names file:line:col) and run validate again.',
          details: result,
        },
      )
    }
    return result
  }
}
