import { Args } from '@oclif/core'
import { mkdtempSync, realpathSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BaseCommand } from '../src/cli/base-command.js'
import { runDemo, type DemoResult } from '../src/demo/demo.js'

export default class Demo extends BaseCommand {
  static override summary =
    'Run the whole recovery routine offline: request, two signed approvals, merge, execute, verify.'
  static override description =
    'Builds a recovery repo with a bare "remote" in DIR (default: a new temporary directory), with real SSH keys for a requester, two reviewers and the executor under DIR/keys/, and runs every step against the embedded local provider. No server and no network is needed. Afterwards, go on by hand in DIR/repo.'
  static override examples = ['<%= config.bin %> demo', '<%= config.bin %> demo ./nhi-demo']
  static override args = {
    dir: Args.string({ description: 'Empty or new directory for the demo', required: false }),
  }

  async run(): Promise<DemoResult> {
    const { args } = await this.parse(Demo)
    const dir = args.dir ?? mkdtempSync(join(tmpdir(), 'nhi-recover-demo-'))
    const json = this.jsonEnabled()
    const result = await runDemo({
      dir,
      packageRoot: this.config.root,
      version: this.config.version,
      log: (line) => {
        if (!json) this.out(line)
      },
    })
    if (!json) {
      // After a local install nhi-recover is not on PATH; show the entry that ran this demo.
      // The real path of this CLI: npx runs it through a link in its cache, which can go away.
      const cli = process.argv[1] ? `node ${realpathSync(process.argv[1])}` : 'nhi-recover'
      this.out(
        [
          '',
          `Done: ${result.requestId} rotated demo-api-key from version ${result.versionBefore} to ${result.versionAfter},`,
          `recorded in signed audit commit ${result.auditCommit.slice(0, 12)}; the ledger holds ${result.ledgerEntries} verified entr${result.ledgerEntries === 1 ? 'y' : 'ies'}.`,
          '',
          'Go on by hand:',
          `  cd ${result.repo}`,
          `  ${cli} audit log`,
          `  ${cli} audit verify`,
          `  ${cli} status`,
          `  Keys are in ${result.keys}/ (one file per principal).`,
        ].join('\n'),
      )
    }
    return result
  }
}
