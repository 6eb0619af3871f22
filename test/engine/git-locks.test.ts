import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { GitRefLocks, LOCK_REF, readRemoteLocks } from '../../src/engine/git-locks.js'

const sh = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim()

describe('git ref locks', () => {
  let root: string
  let a: string
  let b: string
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'nhi-locks-'))
    sh(root, 'init', '-q', '--bare', 'remote.git')
    for (const name of ['a', 'b']) sh(root, 'clone', '-q', join(root, 'remote.git'), name)
    a = join(root, 'a')
    b = join(root, 'b')
  })
  afterEach(() => rmSync(root, { recursive: true, force: true }))

  const locks = (cwd: string, holder: string, now = () => new Date()) =>
    new GitRefLocks({ cwd, remote: 'origin', holder, leaseMs: 60_000, now })

  it('lets only one executor hold a request; the other sees who holds it and until when', async () => {
    const first = await locks(a, 'run-a').acquire(['rr-one', 'rr-two'])
    expect(first.leases.map((l) => l.requestId)).toEqual(['rr-one', 'rr-two'])
    const second = await locks(b, 'run-b').acquire(['rr-two', 'rr-three'])
    expect(second.leases.map((l) => l.requestId)).toEqual(['rr-three'])
    expect(second.held).toEqual([{ requestId: 'rr-two', holder: 'run-a', expires: expect.any(String) }])
  })

  it('takes over a lock whose lease expired (a dead executor) and reports whose it was', async () => {
    await locks(a, 'run-dead').acquire(['rr-one'])
    const later = () => new Date(Date.now() + 120_000)
    const r = await locks(b, 'run-b', later).acquire(['rr-one'])
    expect(r.held).toEqual([])
    expect(r.leases).toEqual([
      { requestId: 'rr-one', tookOverFrom: { holder: 'run-dead', expired: expect.any(String) } },
    ])
  })

  it('releases its own locks so the next run can take them at once', async () => {
    const mine = locks(a, 'run-a')
    const { leases } = await mine.acquire(['rr-one'])
    expect(await readRemoteLocks(b, 'origin', new Date())).toEqual([
      { requestId: 'rr-one', holder: 'run-a', expires: expect.any(String), expired: false },
    ])
    await mine.release(leases)
    expect(await readRemoteLocks(b, 'origin', new Date())).toEqual([])
    expect((await locks(b, 'run-b').acquire(['rr-one'])).leases).toHaveLength(1)
  })

  it("keeps the other executors' locks when releasing its own, and the table's history says who held what", async () => {
    const la = locks(a, 'run-a')
    const { leases } = await la.acquire(['rr-one'])
    await locks(b, 'run-b').acquire(['rr-two'])
    await la.release(leases)
    expect((await readRemoteLocks(a, 'origin', new Date())).map((l) => [l.requestId, l.holder])).toEqual([
      ['rr-two', 'run-b'],
    ])
    const log = sh(join(root, 'remote.git'), 'log', '--format=%s', LOCK_REF).split('\n')
    expect(log).toEqual([
      'nhi-recover: release 1 request(s) of run-a',
      'nhi-recover: lock 1 request(s) for run-b',
      'nhi-recover: lock 1 request(s) for run-a',
    ])
  })

  it('lets executors on different requests all win, retrying when another changed the table first', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => locks(i % 2 ? a : b, `run-${i}`).acquire([`rr-${i}`])),
    )
    expect(results.map((r) => r.leases.map((l) => l.requestId))).toEqual(
      Array.from({ length: 6 }, (_, i) => [`rr-${i}`]),
    )
    expect((await readRemoteLocks(a, 'origin', new Date())).map((l) => l.requestId).sort()).toEqual(
      Array.from({ length: 6 }, (_, i) => `rr-${i}`),
    )
  })

  it('works beside the per-request lock refs of earlier versions (no ref/folder clash)', async () => {
    const tree = sh(a, 'mktree')
    const old = sh(a, 'commit-tree', tree, '-m', 'old per-request lock')
    sh(a, 'push', '-q', 'origin', `${old}:refs/nhi-recover/locks/rr-old`)
    sh(a, 'update-ref', 'refs/nhi-recover/seen-locks/rr-old', old)
    const l = locks(a, 'run-a')
    const { leases } = await l.acquire(['rr-one'])
    expect(leases).toHaveLength(1)
    await l.release(leases)
    expect(await readRemoteLocks(a, 'origin', new Date())).toEqual([])
  })

  it('fails closed on a lock table it cannot read, naming the way out', async () => {
    const tree = sh(a, 'mktree') // empty: no locks.json
    const commit = sh(a, 'commit-tree', tree, '-m', 'not a lock table')
    sh(a, 'push', '-q', 'origin', `${commit}:${LOCK_REF}`)
    await expect(locks(b, 'run-b').acquire(['rr-one'])).rejects.toMatchObject({
      code: 'LOCK_TABLE_UNREADABLE',
      next: expect.stringContaining(`:${LOCK_REF}`),
    })
  })

  it('gives a contested request to exactly one of two executors racing for it', async () => {
    const results = await Promise.all([
      locks(a, 'run-a').acquire(['rr-race']),
      locks(b, 'run-b').acquire(['rr-race']),
    ])
    expect(results.map((r) => r.leases.length).sort()).toEqual([0, 1])
  })

  it('never lets a late acquirer overwrite a lock taken after it read the refs: eight racing, one wins', async () => {
    // Each reads "no lock", then pushes; every push after the first must be refused, not forced.
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => locks(i % 2 ? a : b, `run-${i}`).acquire(['rr-race'])),
    )
    expect(results.map((r) => r.leases.length).sort()).toEqual([0, 0, 0, 0, 0, 0, 0, 1])
    const winner = results.findIndex((r) => r.leases.length === 1)
    for (const r of results.filter((_, i) => i !== winner)) {
      expect(r.held).toEqual([{ requestId: 'rr-race', holder: `run-${winner}`, expires: expect.any(String) }])
    }
  })

  it('works in a clone without a remote by locking in the clone itself', async () => {
    const solo = join(root, 'solo')
    sh(root, 'init', '-q', 'solo')
    const l = new GitRefLocks({ cwd: solo, remote: '.', holder: 'x', leaseMs: 60_000 })
    expect((await l.acquire(['rr-one'])).leases).toHaveLength(1)
    expect(
      (await new GitRefLocks({ cwd: solo, remote: '.', holder: 'y', leaseMs: 60_000 }).acquire(['rr-one']))
        .held,
    ).toHaveLength(1)
  })
})
