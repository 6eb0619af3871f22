/**
 * The batched history reads must answer exactly as one git call per path would: they are what
 * the approval gate decides on. Each batch is compared with git's own per-path answer on a
 * real repo with merges, a symbolic link, a subfolder, deletions and a folder large enough
 * to take the read-the-whole-folder path.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  blobIdsAt,
  commitsChangingMany,
  lastFirstParentChanges,
  listFilesIn,
  readFilesAt,
} from '../../src/git/history.js'

const sh = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@t',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@t',
    },
  }).trim()

describe('batched history reads', () => {
  let repo: string
  const specs = Array.from({ length: 40 }, (_, i) => `recovery-specs/rr-${String(i).padStart(2, '0')}.yaml`)
  const write = (rel: string, text: string) => {
    mkdirSync(dirname(join(repo, rel)), { recursive: true })
    writeFileSync(join(repo, rel), text)
  }

  beforeAll(() => {
    repo = mkdtempSync(join(tmpdir(), 'nhi-history-'))
    sh(repo, 'init', '-q', '-b', 'main')
    sh(repo, 'config', 'commit.gpgsign', 'false')
    write('README', 'x\n')
    sh(repo, 'add', '-A')
    sh(repo, 'commit', '-q', '-m', 'root')
    // Three merged branches, each touching a different slice of the specs.
    for (const [b, slice] of [
      ['one', specs.slice(0, 20)],
      ['two', specs.slice(10, 30)],
      ['three', specs.slice(25)],
    ] as const) {
      sh(repo, 'checkout', '-q', '-b', b)
      for (const p of slice) write(p, `${b} ${p}\n`)
      write(`recovery-specs/sub/${b}.yaml`, `${b}\n`)
      sh(repo, 'add', '-A')
      sh(repo, 'commit', '-q', '-m', `${b}`)
      sh(repo, 'checkout', '-q', 'main')
      sh(repo, 'merge', '-q', '--no-ff', '-m', `merge ${b}`, b)
    }
    symlinkSync('rr-00.yaml', join(repo, 'recovery-specs/link.yaml'))
    unlinkSync(join(repo, specs[39]!))
    sh(repo, 'add', '-A')
    sh(repo, 'commit', '-q', '-m', 'link and delete')
  })
  afterAll(() => rmSync(repo, { recursive: true, force: true }))

  const paths = () => [
    ...specs,
    'recovery-specs/link.yaml',
    'recovery-specs/sub/two.yaml',
    'recovery-specs/sub',
    'recovery-specs/absent.yaml',
    'README',
  ]

  it('lastFirstParentChanges gives each path the merge git log -1 --first-parent names', async () => {
    const got = await lastFirstParentChanges(repo, 'HEAD', paths())
    // Files only: a folder is never matched (git log would name the last change inside it).
    expect(got.has('recovery-specs/sub')).toBe(false)
    for (const p of paths().filter((x) => x !== 'recovery-specs/sub')) {
      const want = sh(repo, 'log', '-1', '--first-parent', '--format=%H', 'HEAD', '--', p) || undefined
      expect([p, got.get(p)]).toEqual([p, want])
    }
    // The merges really differ: the batch is not answering one commit for everything.
    expect(new Set(specs.slice(0, 39).map((p) => got.get(p))).size).toBe(3)
  })

  it('blobIdsAt answers as cat-file does, for many paths in one folder and for single ones', async () => {
    const commits = sh(repo, 'rev-list', 'HEAD').split('\n')
    const queries = commits.flatMap((commit) => paths().map((path) => ({ commit, path })))
    queries.push({ commit: 'HEAD', path: 'recovery-specs/./rr-01.yaml' }, { commit: 'nope', path: 'README' })
    const got = await blobIdsAt(repo, queries)
    const check = execFileSync('git', ['cat-file', '--batch-check=%(objectname) %(objecttype)'], {
      cwd: repo,
      input: queries.map((q) => `${q.commit}:${q.path}\n`).join(''),
      encoding: 'utf8',
    }).split('\n')
    const want = queries.map((_q, i) => {
      const [oid, type] = check[i]!.split(' ')
      return type === 'blob' ? oid : null
    })
    expect(got).toEqual(want)
    expect(got.filter((x) => x !== null).length).toBeGreaterThan(100)
  })

  it("commitsChangingMany, readFilesAt and listFilesIn match git's own per-path answers", async () => {
    const base = sh(repo, 'rev-list', '--max-parents=0', 'HEAD')
    const many = await commitsChangingMany(repo, base, 'HEAD', paths())
    expect(many.get('recovery-specs/sub')).toEqual([]) // a folder is not a blob
    for (const p of paths().filter((x) => x !== 'recovery-specs/sub')) {
      const want = sh(repo, 'log', '--format=%H', '--full-history', '--reverse', `${base}..HEAD`, '--', p)
        .split('\n')
        .filter(Boolean)
      // git log --full-history lists merges that took one side unchanged too; drop those as the gate does.
      const changing = want.filter((c) => {
        const parents = sh(repo, 'rev-list', '--parents', '-n1', c).split(' ').slice(1)
        const blob = (rev: string) => {
          try {
            return sh(repo, 'rev-parse', '--verify', '--quiet', `${rev}:${p}`)
          } catch {
            return null
          }
        }
        const mine = blob(c)
        return parents.every((q) => blob(q) !== mine)
      })
      expect([p, many.get(p)!.map((c) => c.oid)]).toEqual([p, changing])
    }

    const files = await readFilesAt(repo, 'HEAD', paths())
    expect(files.get('recovery-specs/rr-05.yaml')?.toString()).toBe('one recovery-specs/rr-05.yaml\n')
    expect(files.get('recovery-specs/rr-12.yaml')?.toString()).toBe('two recovery-specs/rr-12.yaml\n')
    expect(files.get(specs[39]!)).toBeUndefined()
    expect(files.get('recovery-specs/sub')).toBeUndefined()

    const listed = await listFilesIn(repo, 'HEAD', ['recovery-specs/sub', 'recovery-specs/sub/', 'nowhere'])
    expect(listed.get('recovery-specs/sub')!.map((f) => f.path)).toEqual([
      'recovery-specs/sub/one.yaml',
      'recovery-specs/sub/three.yaml',
      'recovery-specs/sub/two.yaml',
    ])
    expect(listed.get('recovery-specs/sub/')).toEqual(listed.get('recovery-specs/sub'))
    expect(listed.get('nowhere')).toEqual([])
  })
})
