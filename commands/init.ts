import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../src/cli/base-command.js'
import { initRepo, type InitResult } from '../src/init/scaffold.js'
import { renderInitReport } from '../src/init/report.js'

export default class Init extends BaseCommand {
  static override summary = 'Scaffold a recovery repo: config, spec and audit folders, CI workflows.'
  static override description =
    'Writes nhi-recover.yaml with commented defaults, recovery-specs/ with its JSON Schemas, audit/, GitHub workflows that validate, plan and gate pull requests and execute on the default branch, and a CODEOWNERS suggestion. It refuses to overwrite any existing file unless --force is given, and then writes nothing at all.'
  static override examples = [
    '<%= config.bin %> init',
    '<%= config.bin %> init ./recovery --security-team @acme/security',
    '<%= config.bin %> init --force --json',
  ]
  static override args = {
    dir: Args.string({
      description: 'Directory to scaffold (default: the current directory)',
      required: false,
    }),
  }
  static override flags = {
    force: Flags.boolean({ description: 'Overwrite files that already exist', default: false }),
    'security-team': Flags.string({
      description: 'GitHub team that owns recovery specs and the config (CODEOWNERS, policy teams)',
      default: '@your-org/security',
    }),
  }

  async run(): Promise<InitResult> {
    const { args, flags } = await this.parse(Init)
    const result = initRepo({
      dir: args.dir ?? process.cwd(),
      force: flags.force,
      version: this.config.version,
      securityTeam: flags['security-team'],
    })
    if (!this.jsonEnabled()) this.out(renderInitReport(result, process.cwd()))
    return result
  }
}
