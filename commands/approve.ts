import { Args, Flags } from '@oclif/core'
import { BaseCommand } from '../src/cli/base-command.js'
import { approve, type ApproveResult } from '../src/approvals/approve.js'

export default class Approve extends BaseCommand {
  static override summary =
    'Sign an approval of a recovery request with your SSH key and commit it beside the spec.'
  static override description = `Signs {request id, spec path, spec sha256, approver, time} in the SSHSIG namespace nhi-recover-approval (what "ssh-keygen -Y sign -n nhi-recover-approval" makes) and commits it as <spec>.approvals/<principal>.json on the current branch. It counts only for this exact committed content, and only if the base branch's allowed_signers lists your key for your principal.`
  static override examples = [
    '<%= config.bin %> approve recovery-specs/rr-payments-key.yaml --key ~/.ssh/id_ed25519 --principal alice@example.com',
  ]
  static override args = {
    spec: Args.string({
      description: 'The spec (or nhi-recover.yaml, or allowed_signers) to approve',
      required: true,
    }),
  }
  static override flags = {
    key: Flags.string({
      char: 'k',
      description: 'SSH private key (ed25519); a .pub file signs through ssh-agent',
      required: true,
    }),
    principal: Flags.string({ description: 'Your principal in allowed_signers (default: the key comment)' }),
    commit: Flags.boolean({ description: 'Commit the statement', default: true, allowNo: true }),
  }

  async run(): Promise<ApproveResult> {
    const { args, flags } = await this.parse(Approve)
    const result = await approve({
      cwd: process.cwd(),
      path: args.spec,
      keyFile: flags.key,
      principal: flags.principal,
      now: new Date(),
      commit: flags.commit,
    })
    if (!this.jsonEnabled()) {
      const s = result.statement
      this.out(
        `Signed an approval of ${s.requestId} (${s.specPath}, sha256 ${s.specSha256.slice(0, 12)}…) as ${s.approver} with key ${result.fingerprint}.`,
      )
      this.out(
        result.commit
          ? `Committed ${result.file} (${result.commit.slice(0, 7)}).`
          : `Wrote ${result.file} (not committed).`,
      )
      for (const w of result.warnings) this.out(`Warning: ${w}`)
      this.out('Next: push the branch so the pull request has the approval.')
    }
    return result
  }
}
