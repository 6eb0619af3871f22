import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { LocalSecretStore } from '../../providers/secret-stores/local.js'
import { createSecretStores } from '../../providers/registry.js'
import { loadRepoConfig } from '../../src/config/repo.js'
import { executeRequests, type ExecuteDeps } from '../../src/engine/execute.js'
import { GitRefLocks } from '../../src/engine/git-locks.js'
import type { ApprovalGate, AuditDraft, Ledger, LedgerRecord } from '../../src/engine/ports.js'
import { stages } from '../../src/engine/secret-store.js'
import { Secret } from '../../src/secret.js'
import { EXAMPLES } from '../helpers/temp-repo.js'

const sh = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim()

/** The ledger as the engine sees it, kept in memory: this test is about the engine, not the ledger. */
class MemoryLedger implements Ledger {
  entries: AuditDraft[] = []
  async records(): Promise<LedgerRecord[]> {
    return this.entries.map((d) => ({ ...d, time: '2026-11-22T12:00:00Z' }))
  }
  async append(drafts: AuditDraft[]) {
    this.entries.push(...drafts)
    return { entries: drafts.length }
  }
}

const approveAll: ApprovalGate = {
  async evaluate() {
    return {
      allowed: true,
      tier: 'low',
      reasons: [],
      evidence: [{ approver: 'bob', backend: 'ssh', commit: 'c', specBlob: 'b', at: 't' }],
    }
  },
}

describe('executeRequests', () => {
  let repo: string
  let key: Buffer
  let ledger: MemoryLedger
  const now = () => new Date()

  beforeEach(() => {
    repo = mkdtempSync(join(tmpdir(), 'nhi-exec-'))
    sh(repo, 'init', '-q', '-b', 'main')
    sh(repo, 'config', 'user.email', 't@example.com')
    sh(repo, 'config', 'user.name', 't')
    cpSync(join(EXAMPLES, 'nhi-recover.yaml'), join(repo, 'nhi-recover.yaml'))
    cpSync(join(EXAMPLES, 'local-api-key.yaml'), join(repo, 'recovery-specs', 'rr-local-demo-api-key.yaml'), {
      recursive: true,
    })
    writeFileSync(join(repo, '.gitignore'), '.nhi-recover/\n')
    sh(repo, 'add', '-A')
    sh(repo, 'commit', '-q', '-m', 'request')
    key = randomBytes(32)
    ledger = new MemoryLedger()
  })
  afterEach(() => rmSync(repo, { recursive: true, force: true }))

  const deps = (over: Partial<ExecuteDeps> = {}): ExecuteDeps => {
    const { config } = loadRepoConfig(repo)
    return {
      gate: approveAll,
      ledger,
      locks: new GitRefLocks({ cwd: repo, remote: '.', holder: 'test', leaseMs: 60_000 }),
      stores: createSecretStores({
        config,
        repoRoot: repo,
        env: { NHI_RECOVER_LOCAL_KEY: key.toString('base64') },
      }),
      crash: () => {},
      ...over,
    }
  }
  const seed = async () => {
    const store = new LocalSecretStore({ name: 'local', dir: join(repo, '.nhi-recover/local-store'), key })
    return (await store.put('demo/api-key', new Secret(`old-${randomBytes(8).toString('hex')}`))).id
  }

  it('rotates an approved request once, audits it, and skips it on the next run', async () => {
    const before = await seed()
    const first = await executeRequests({ cwd: repo, concurrency: 4, now, dryRun: false }, deps())
    expect(first.requests).toEqual([
      expect.objectContaining({
        requestId: 'rr-local-demo-api-key',
        outcome: 'succeeded',
        versionBefore: before,
      }),
    ])
    expect(ledger.entries).toHaveLength(1)
    expect(ledger.entries[0]).toMatchObject({
      outcome: 'succeeded',
      approvals: [expect.objectContaining({ approver: 'bob' })],
    })
    const second = await executeRequests({ cwd: repo, concurrency: 4, now, dryRun: false }, deps())
    expect(second.requests[0]).toMatchObject({
      outcome: 'skipped',
      reason: expect.stringContaining('already succeeded'),
    })
    expect(ledger.entries).toHaveLength(1)
  })

  it('refuses and audits a request the gate blocks, changing nothing', async () => {
    const before = await seed()
    const blocked: ApprovalGate = {
      evaluate: async () => ({
        allowed: false,
        tier: 'low',
        reasons: ['needs 1 more approval from team platform'],
        evidence: [],
      }),
    }
    const r = await executeRequests(
      { cwd: repo, concurrency: 4, now, dryRun: false },
      deps({ gate: blocked }),
    )
    expect(r.requests[0]).toMatchObject({
      outcome: 'refused',
      reason: expect.stringContaining('needs 1 more approval from team platform'),
    })
    expect(ledger.entries[0]).toMatchObject({ outcome: 'refused' })
    const store = new LocalSecretStore({ name: 'local', dir: join(repo, '.nhi-recover/local-store'), key })
    expect(
      stages(await store.describe({ provider: 'local', mechanism: 'local', path: 'demo/api-key' })).current
        ?.id,
    ).toBe(before)
  })

  it('fails closed when the gate itself errors', async () => {
    await seed()
    const broken: ApprovalGate = { evaluate: async () => Promise.reject(new Error('GitHub answered 502')) }
    const r = await executeRequests({ cwd: repo, concurrency: 4, now, dryRun: false }, deps({ gate: broken }))
    expect(r.requests[0]).toMatchObject({
      outcome: 'refused',
      reason: expect.stringContaining('approvals could not be checked'),
    })
  })

  it('--dry-run shows the steps and changes nothing: store, ledger and locks untouched', async () => {
    await seed()
    const storeDir = join(repo, '.nhi-recover/local-store')
    const files = execFileSync('find', [storeDir, '-type', 'f'], { encoding: 'utf8' }).trim().split('\n')
    const contents = files.map((f) => readFileSync(f, 'utf8'))
    const { recordingStore } = await import('../../src/engine/dry-run.js')
    const calls: Parameters<typeof recordingStore>[1] = []
    const { config } = loadRepoConfig(repo)
    const stores = createSecretStores({
      config,
      repoRoot: repo,
      env: { NHI_RECOVER_LOCAL_KEY: key.toString('base64') },
      wrap: (s) => recordingStore(s, calls),
    })
    const r = await executeRequests({ cwd: repo, concurrency: 4, now, dryRun: true }, deps({ stores }))
    expect(r.requests[0]).toMatchObject({ outcome: 'succeeded' })
    expect(calls.map((c) => c.call)).toEqual(['prepare', 'verify', 'promote'])
    expect(ledger.entries).toEqual([])
    expect(files.map((f) => readFileSync(f, 'utf8'))).toEqual(contents)
    expect(sh(repo, 'for-each-ref', 'refs/nhi-recover')).toBe('')
    expect(sh(repo, 'status', '--porcelain')).toBe('')
    expect(execFileSync('find', [storeDir, '-type', 'f'], { encoding: 'utf8' }).trim().split('\n')).toEqual(
      files,
    )
  })

  it('refuses to run specs that differ from the commit', async () => {
    await seed()
    writeFileSync(
      join(repo, 'recovery-specs', 'rr-local-demo-api-key.yaml'),
      readFileSync(join(EXAMPLES, 'local-api-key.yaml'), 'utf8') + '# edited\n',
    )
    await expect(
      executeRequests({ cwd: repo, concurrency: 4, now, dryRun: false }, deps()),
    ).rejects.toMatchObject({ code: 'WORKTREE_DIRTY' })
    expect(ledger.entries).toEqual([])
  })
})
