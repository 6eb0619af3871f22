/**
 * Wires the execute service to the real world: the approval gate, the audit ledger in git,
 * git-ref locks, the configured providers and the crash test hooks. Commands call this.
 */
import { hostname, userInfo } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { loadRepoConfig } from '../config/repo.js'
import { loadAllowedSigners } from '../audit/verify.js'
import { runGit } from '../git/git.js'
import { executeRequests, type ExecuteEvent, type ExecuteResult } from './execute.js'
import { GitLedger } from './git-ledger.js'
import { GitRefLocks } from './git-locks.js'
import { crashHookFromEnv } from './test-hooks.js'
import { recordingStore, type RecordedCall } from './dry-run.js'
import { httpCheck } from './http-check.js'
import { executeTimer, type ExecuteTiming } from './timing.js'

export interface RunExecuteOptions {
  cwd: string
  configPath?: string
  commit?: string
  concurrency: number
  dryRun: boolean
  only?: string[]
  env?: NodeJS.ProcessEnv
  onEvent?: (e: ExecuteEvent) => void
  /** Lease of the request locks; a dead executor's locks expire after this. */
  leaseMs?: number
}

export interface RunExecuteResult extends ExecuteResult {
  /** With --dry-run: every change that would have been made. */
  wouldChange?: RecordedCall[]
  /** Where the run's time went; provider, gate, ledger and lock times are summed over concurrent calls. */
  timing: ExecuteTiming
}

export async function runExecute(opts: RunExecuteOptions): Promise<RunExecuteResult> {
  const timer = executeTimer()
  const env = opts.env ?? process.env
  const crash = crashHookFromEnv(env)
  const loaded = loadRepoConfig(opts.cwd, opts.configPath)
  const { config, repoRoot } = loaded
  const executor = {
    runId: env.GITHUB_RUN_ID
      ? `${env.GITHUB_RUN_ID}.${env.GITHUB_RUN_ATTEMPT ?? '1'}`
      : `local-${process.pid}-${Date.now()}`,
    actor: env.GITHUB_ACTOR || safeUser(),
  }
  const remote = (await hasRemote(repoRoot, 'origin')) ? 'origin' : '.'
  const [{ createSecretStores }, { executionGate }, { createAuditSigner }] = await Promise.all([
    import('../../providers/registry.js'),
    import('../approvals/execution-gate.js'),
    import('../../providers/signers/index.js'),
  ])
  const calls: RecordedCall[] = []
  const stores = createSecretStores({
    config,
    repoRoot,
    env,
    wrap: (s) => timer.store(opts.dryRun ? recordingStore(s, calls) : s),
  })
  const signersPath = config.approvals.ssh?.allowedSigners ?? '.nhi-recover/allowed_signers'
  const ledger = new GitLedger({
    repoRoot,
    auditPath: config.audit.path,
    configSha256: loaded.sha256,
    executor,
    signer: () => createAuditSigner(config, { repoRoot, env }),
    allowedSigners: () =>
      loadAllowedSigners(isAbsolute(signersPath) ? signersPath : join(repoRoot, signersPath), signersPath)
        .signers,
    remote: remote === '.' ? false : remote,
  })
  const executors = [executor.actor, ...(config.audit.signer ? [config.audit.signer.principal] : [])]
  const result = await executeRequests(
    {
      cwd: opts.cwd,
      ...(opts.configPath ? { configPath: opts.configPath } : {}),
      ...(opts.commit ? { commit: opts.commit } : {}),
      ...(opts.only ? { only: opts.only } : {}),
      concurrency: opts.concurrency,
      now: () => new Date(),
      dryRun: opts.dryRun,
    },
    {
      gate: timer.gate(
        executionGate({
          cwd: opts.cwd,
          ...(opts.commit ? { commit: opts.commit } : {}),
          now: () => new Date(),
          executors,
          // GitHub is reached only when the policy in force uses it; Octokit loads only then.
          forgeFactory: async (settings) => {
            const [{ githubForgeFactory }, { resolveGitHubContext }] = await Promise.all([
              import('../../providers/forge/github.js'),
              import('../approvals/github-context.js'),
            ])
            return githubForgeFactory(
              await resolveGitHubContext({ cwd: opts.cwd, env, flags: {} }),
              env,
            )(settings)
          },
        }),
      ),
      ledger: timer.ledger(ledger),
      locks: timer.locks(
        new GitRefLocks({
          cwd: repoRoot,
          remote,
          holder: `${executor.actor}@${hostname()}:${executor.runId}`,
          leaseMs: opts.leaseMs ?? 15 * 60_000,
        }),
      ),
      stores,
      crash,
      httpCheck: opts.dryRun ? async () => {} : (check, credential) => httpCheck(check, credential),
      ...(opts.onEvent ? { onEvent: opts.onEvent } : {}),
    },
  )
  const timing = timer.read()
  return opts.dryRun ? { ...result, wouldChange: calls, timing } : { ...result, timing }
}

async function hasRemote(cwd: string, name: string): Promise<boolean> {
  const r = await runGit(cwd, ['remote'], { allowFail: true })
  return r.stdout.toString().split('\n').includes(name)
}

function safeUser(): string {
  try {
    return userInfo().username.replace(/[^A-Za-z0-9_.@+-]/g, '_') || 'unknown'
  } catch {
    return 'unknown'
  }
}
