import { Flags } from '@oclif/core'
import { BaseCommand } from '../src/cli/base-command.js'
import { CheckFailedError } from '../src/errors.js'
import { ACTIONS, IDENTITY_TYPES, MECHANISMS, RISKS } from '../src/spec/schema.js'
import { formatProblem, type Problem } from '../src/spec/problems.js'
import { createNewSpec, type NewSpecResult, type NewSpecSession } from '../src/new/new-spec.js'
import type { Answers } from '../src/new/fields.js'
import { readGitIdentity } from '../src/new/git-identity.js'
import { guardSecretArgs } from '../src/new/secret-args.js'
import { renderNewSpecReport } from '../src/new/report.js'

export default class New extends BaseCommand {
  static override summary = 'Create a recovery request under recovery-specs/.'
  static override description = `With flags it runs without asking anything (CI, --json). In a terminal, answers that no flag gives are asked in a wizard; without a terminal it never prompts and names the missing flags.
The id is generated (rr-<identity>-<yyyymmdd>-<4 hex>) unless --id is given, and is unique in the repo. The spec runs through the same checks as validate before it is written, and an existing file is never overwritten.`
  static override examples = [
    '<%= config.bin %> new',
    '<%= config.bin %> new --identity payments-api-key --type api-key --owner team-payments --risk low --provider local --mechanism local --path payments/api-key --action rotate --reason "Key leaked in a log" --ticket SEC-42',
  ]
  static override flags = {
    config: Flags.string({ char: 'c', description: 'Path of nhi-recover.yaml (default: the repo root)' }),
    identity: Flags.string({ description: 'Name of the non-human identity' }),
    type: Flags.string({ description: 'Identity type', options: [...IDENTITY_TYPES] }),
    owner: Flags.string({ description: 'Team or person that owns the identity' }),
    risk: Flags.string({ description: 'Risk tier', options: [...RISKS] }),
    provider: Flags.string({ description: 'Provider in nhi-recover.yaml that holds the credential' }),
    mechanism: Flags.string({ description: 'Rotation mechanism', options: [...MECHANISMS] }),
    path: Flags.string({
      description: 'Secret path (local, kv-v2) or KV v2 path that receives the secret-id (approle-secret-id)',
    }),
    role: Flags.string({ description: 'Role name (approle-secret-id, database-static-role)' }),
    secret: Flags.string({
      description: 'Secrets Manager secret name or ARN (secrets-manager, iam-access-key)',
    }),
    user: Flags.string({ description: 'IAM user name (iam-access-key)' }),
    mount: Flags.string({ description: 'Mount path (kv-v2, approle-secret-id, database-static-role)' }),
    action: Flags.string({ description: 'What to do', options: [...ACTIONS] }),
    'rollback-of': Flags.string({ description: 'With --action rollback: id of the request to undo' }),
    reason: Flags.string({
      description: 'Why the credential must be recovered (never the credential itself)',
    }),
    ticket: Flags.string({ description: 'Incident or change ticket' }),
    requester: Flags.string({
      description: 'Your login or principal (default: git user.email or user.name)',
    }),
    'requester-kind': Flags.string({
      description:
        'human or agent (default: agent for logins under agents in the config, human for the git identity)',
      options: ['human', 'agent'],
    }),
    'expires-in': Flags.string({
      description: 'How long the request stays valid, e.g. 24h or 7d (default: 7d)',
    }),
    'retain-previous': Flags.string({
      description: 'How long the previous credential stays valid after promotion (default: 24h)',
    }),
    id: Flags.string({ description: 'Request id (default: generated)' }),
  }

  async run(): Promise<NewSpecResult> {
    guardSecretArgs(this.argv)
    const { flags } = await this.parse(New)
    const cwd = process.cwd()
    const answers: Answers = {
      identity: flags.identity,
      type: flags.type,
      owner: flags.owner,
      risk: flags.risk,
      provider: flags.provider,
      mechanism: flags.mechanism,
      path: flags.path,
      role: flags.role,
      secret: flags.secret,
      user: flags.user,
      mount: flags.mount,
      action: flags.action,
      rollbackOf: flags['rollback-of'],
      reason: flags.reason,
      ticket: flags.ticket,
      requester: flags.requester,
      requesterKind: flags['requester-kind'],
      expiresIn: flags['expires-in'],
      retainPrevious: flags['retain-previous'],
      id: flags.id,
    }
    for (const k of Object.keys(answers) as (keyof Answers)[]) if (answers[k] === undefined) delete answers[k]

    try {
      const result = await createNewSpec({
        cwd,
        ...(flags.config ? { configPath: flags.config } : {}),
        answers,
        now: new Date(),
        packageRoot: this.config.root,
        gitIdentity: () => readGitIdentity(cwd),
        ...(this.mayPrompt() ? { ask: askInWizard } : {}),
      })
      if (!this.jsonEnabled()) this.out(renderNewSpecReport(result))
      return result
    } catch (err) {
      if (!this.jsonEnabled() && err instanceof CheckFailedError && err.code === 'SPEC_INVALID') {
        const details = err.details as { problems: Problem[] }
        this.out(details.problems.map(formatProblem).join('\n'))
      }
      throw err
    }
  }

  /** Only a person at a terminal is asked; CI and --json never are. */
  private mayPrompt(): boolean {
    const ci = process.env.CI
    return (
      process.stdin.isTTY === true &&
      process.stdout.isTTY === true &&
      !this.jsonEnabled() &&
      (ci === undefined || ci === '' || ci === 'false' || ci === '0')
    )
  }
}

/** Loads ink and React only now, so no other path of the CLI pays for them. */
async function askInWizard(session: NewSpecSession): Promise<Answers | undefined> {
  const { renderNewSpecWizard } = await import('../src/ui/new-spec-wizard.js')
  return renderNewSpecWizard(session)
}
