/**
 * Hostile input (issue 2, point 5): every case gets a clear, positioned problem, never a crash
 * or a stack trace, in bounded time, and validate changes nothing in the repo. Most cases run
 * through the validate service; a representative subset runs through the built CLI.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { validateSpecs, type ValidateResult } from '../../src/spec/validate.js'
import { renderValidateReport } from '../../src/spec/report.js'
import { UserError } from '../../src/errors.js'
import { envelope, runCli } from '../helpers/cli.js'
import { tempRepo, type TempRepo } from '../helpers/temp-repo.js'
import {
  configWith,
  expectNoStack,
  expectUnchanged,
  NOW,
  posOf,
  specWith,
  VALID_SPEC,
  withOwnId,
} from './fixtures.js'

let repo: TempRepo
let outside: string

beforeAll(() => {
  repo = tempRepo()
  outside = mkdtempSync(join(tmpdir(), 'nhi-outside-'))
})
afterAll(() => {
  repo.cleanup()
  rmSync(outside, { recursive: true, force: true })
})

/** Writes recovery-specs/<name>, validates only that path, and proves the repo is unchanged. */
async function validateOne(name: string, content?: string | Buffer): Promise<ValidateResult> {
  if (content !== undefined) repo.write(`recovery-specs/${name}`, withOwnId(content, name))
  return expectUnchanged(repo.root, () =>
    validateSpecs({ cwd: repo.root, paths: [`recovery-specs/${name}`], now: NOW }),
  )
}

/** The single problem of one file, checked field by field. */
function onlyProblem(result: ValidateResult) {
  expect(result.invalid).toBe(1)
  expect(result.problems).toHaveLength(1)
  return result.problems[0]!
}

/** Milliseconds `fn` takes. */
function timed<T>(fn: () => T): [T, number] {
  const start = performance.now()
  const value = fn()
  return [value, performance.now() - start]
}

describe('duplicate keys', () => {
  it('refuses a top-level key given twice, pointing at the second and naming the first line', async () => {
    const text = specWith('ticket: SEC-1002', 'ticket: SEC-1002\nreason: a second reason')
    const p = onlyProblem(await validateOne('dup-top.yaml', text))
    expect(p).toMatchObject({
      file: 'recovery-specs/dup-top.yaml',
      code: 'DUPLICATE_KEY',
      ...posOf(text, 'reason:', 1),
    })
    expect(p.message).toBe(
      `duplicate key "reason": it already appears on line ${posOf(text, 'reason:').line} of this mapping; each key may appear once`,
    )
  })

  it('refuses a nested duplicate and a quoted spelling of the same key', async () => {
    const text = specWith('  path: payments/gateway', '  path: payments/gateway\n  "path": payments/other')
    const p = onlyProblem(await validateOne('dup-nested.yaml', text))
    expect(p).toMatchObject({ code: 'DUPLICATE_KEY', ...posOf(text, '"path"') })
    expect(p.message).toContain('duplicate key "path"')
  })

  it('finds duplicates among 20,000 keys in linear time', async () => {
    const keys = Array.from({ length: 20_000 }, (_, i) => `k${i}: 1`)
    const text = [...keys, 'k7: 2'].join('\n') + '\n'
    const [result, ms] = timed(() =>
      validateSpecs({ cwd: repo.root, paths: [repo.write('recovery-specs/wide.yaml', text)], now: NOW }),
    )
    const p = onlyProblem(result)
    expect(p).toMatchObject({ code: 'DUPLICATE_KEY', line: 20_001, col: 1 })
    expect(ms).toBeLessThan(3000)
  })
})

describe('YAML alias-expansion bombs', () => {
  const laughs = (levels: number) => {
    const lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for (let i = 1; i < levels; i++)
      lines.push(
        `a${i}: &a${i} [${Array(9)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      )
    return lines.join('\n') + '\n'
  }

  it('refuses a billion-laughs document quickly, pointing at the first alias', async () => {
    const text = laughs(10) // 9^10 ≈ 3.5 billion strings if expanded
    const [result, ms] = timed(() => {
      repo.write('recovery-specs/laughs.yaml', text)
      return validateSpecs({ cwd: repo.root, paths: ['recovery-specs/laughs.yaml'], now: NOW })
    })
    const p = onlyProblem(result)
    expect(p).toMatchObject({ code: 'ALIAS_LIMIT', ...posOf(text, '*a0') })
    expect(p.message).toContain('YAML aliases expand too much (limit 50, limits.maxAliases)')
    expect(ms).toBeLessThan(1000)
  })

  it('accepts a spec that reuses one anchor within the limit', async () => {
    const text = specWith('    - kind: provider', '    - &check { kind: provider }\n    - *check')
    const result = await validateOne('alias-ok.yaml', text)
    expect(result.problems).toEqual([])
  })

  it('refuses an alias to an anchor that is not defined', async () => {
    const text = specWith('ticket: SEC-1002', 'ticket: *nowhere')
    const p = onlyProblem(await validateOne('alias-missing.yaml', text))
    expect(p).toMatchObject({ code: 'BAD_ALIAS', ...posOf(text, '*nowhere') })
    expect(p.message).toBe('this alias (*name) refers to no anchor (&name) defined before it')
  })
})

describe('files over the size limit', () => {
  /** A valid spec padded with a comment to exactly `size` bytes. */
  const padTo = (size: number, name: string) => {
    const text = withOwnId(VALID_SPEC, name) + '# '
    return text + 'x'.repeat(size - Buffer.byteLength(text) - 1) + '\n'
  }

  it('refuses a file one byte over the default 256 KiB, and accepts one exactly at it', async () => {
    repo.write('recovery-specs/big.yaml', padTo(256 * 1024 + 1, 'big'))
    const p = onlyProblem(await validateOne('big.yaml'))
    expect(p).toEqual({
      file: 'recovery-specs/big.yaml',
      line: 0,
      col: 0,
      code: 'FILE_TOO_LARGE',
      message: 'is larger than the limit of 262144 bytes (limits.maxSpecBytes); a recovery spec is a few KiB',
    })
    repo.write('recovery-specs/big.yaml', padTo(256 * 1024, 'big'))
    expect((await validateOne('big.yaml')).problems).toEqual([])
  })

  it('refuses a 1 GiB sparse file at once, without reading it', async () => {
    const abs = repo.write('recovery-specs/huge.yaml', '')
    truncateSync(abs, 1024 ** 3)
    const [result, ms] = timed(() => validateSpecs({ cwd: repo.root, paths: [abs], now: NOW }))
    expect(onlyProblem(result).code).toBe('FILE_TOO_LARGE')
    expect(ms).toBeLessThan(500)
    rmSync(abs)
  })

  it('honours a smaller limits.maxSpecBytes from the repo config', async () => {
    const small = tempRepo()
    try {
      small.write(
        'nhi-recover.yaml',
        configWith('  maxRequestLifetime: 3660d', '  maxRequestLifetime: 3660d\n  maxSpecBytes: 2048'),
      )
      small.write('recovery-specs/a.yaml', padTo(2049, 'a'))
      small.write('recovery-specs/b.yaml', padTo(2048, 'b'))
      const result = validateSpecs({ cwd: small.root, paths: [], now: NOW })
      expect(result.problems).toEqual([
        {
          file: 'recovery-specs/a.yaml',
          line: 0,
          col: 0,
          code: 'FILE_TOO_LARGE',
          message:
            'is larger than the limit of 2048 bytes (limits.maxSpecBytes); a recovery spec is a few KiB',
        },
      ])
      expect(result.specs.map((s) => [s.file, s.valid])).toEqual([
        ['recovery-specs/a.yaml', false],
        ['recovery-specs/b.yaml', true],
      ])
    } finally {
      small.cleanup()
    }
  })
})

describe('binary and non-UTF-8 files', () => {
  it('refuses a PNG as binary at the position of its first NUL byte', async () => {
    // \x89 P N G \r \n \x1a \n NUL: the NUL starts the third line.
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49])
    const p = onlyProblem(await validateOne('image.yaml', png))
    expect(p).toEqual({
      file: 'recovery-specs/image.yaml',
      line: 3,
      col: 1,
      code: 'BINARY_FILE',
      message: 'is binary (it contains a NUL byte here); a spec must be UTF-8 YAML text',
    })
  })

  it('refuses a NUL byte hidden in the middle of a spec line', async () => {
    const text = specWith('ticket: SEC-1002', 'ticket: SEC-\u00001002')
    const p = onlyProblem(await validateOne('nul.yaml', Buffer.from(text)))
    expect(p).toMatchObject({ code: 'BINARY_FILE', ...posOf(text, '\u0000') })
  })

  it('refuses Latin-1 text, naming the line and column of the bad byte', async () => {
    const text = specWith('ticket: SEC-1002', 'ticket: Café-1002')
    const bytes = Buffer.from(text, 'latin1')
    const p = onlyProblem(await validateOne('latin1.yaml', bytes))
    expect(p).toEqual({
      file: 'recovery-specs/latin1.yaml',
      ...posOf(text, 'é'),
      code: 'NOT_UTF8',
      message: 'is not valid UTF-8 (byte 0xE9 here is not part of a valid character); save the file as UTF-8',
    })
  })

  it('counts columns in characters after multi-byte text, and catches surrogates and truncation', async () => {
    // "— é " is valid UTF-8 (2 characters before the space); ED A0 80 encodes a lone surrogate.
    const head = 'reason: "— é '
    const bytes = Buffer.concat([Buffer.from(head), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"\n')])
    const p = onlyProblem(await validateOne('surrogate.yaml', bytes))
    expect(p).toMatchObject({ code: 'NOT_UTF8', line: 1, col: head.length + 1 })
    expect(p.message).toContain('0xED')

    const cut = Buffer.concat([Buffer.from('a: b\nc: d'), Buffer.from([0xe2, 0x82])])
    expect(onlyProblem(await validateOne('truncated.yaml', cut))).toMatchObject({
      code: 'NOT_UTF8',
      line: 2,
      col: 5,
    })

    const overlong = Buffer.concat([Buffer.from('a: '), Buffer.from([0xc0, 0xaf])])
    expect(onlyProblem(await validateOne('overlong.yaml', overlong))).toMatchObject({
      code: 'NOT_UTF8',
      line: 1,
      col: 4,
    })
  })

  it('refuses UTF-16 with a hint, and accepts UTF-8 with a byte-order mark', async () => {
    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(VALID_SPEC, 'utf16le')])
    const p = onlyProblem(await validateOne('utf16.yaml', utf16))
    expect(p).toMatchObject({
      code: 'NOT_UTF8',
      line: 1,
      col: 1,
      message: 'is UTF-16 text; save it as UTF-8',
    })

    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(VALID_SPEC)])
    expect((await validateOne('bom.yaml', bom)).problems).toEqual([])
  })
})

describe('very deep nesting', () => {
  const tooDeep = 'nesting is deeper than 32 levels (limits.maxDepth); a spec needs only a few'

  // Each case nests 100,000 collections (a `[a: ` opens a sequence and a one-pair mapping).
  it.each([
    ['flow sequences', '['.repeat(100_000) + ']'.repeat(100_000), 1, 33],
    ['flow mappings', '{'.repeat(100_000) + '}'.repeat(100_000), 1, 33],
    ['flow pairs', '[a: '.repeat(50_000) + ']'.repeat(50_000), 1, 4 * 32 + 1],
    ['unclosed flow sequences', '['.repeat(100_000), 1, 33],
    ['compact block sequences', '- '.repeat(100_000) + 'x\n', 1, 65],
  ])('refuses 100,000 levels of %s in bounded time at level 33', async (name, text, line, col) => {
    const [result, ms] = timed(() => {
      repo.write('recovery-specs/deep.yaml', text)
      return validateSpecs({ cwd: repo.root, paths: ['recovery-specs/deep.yaml'], now: NOW })
    })
    expect(onlyProblem(result)).toEqual({
      file: 'recovery-specs/deep.yaml',
      line,
      col,
      code: 'NESTING_TOO_DEEP',
      message: tooDeep,
    })
    console.log(`100k levels of ${name}: ${ms.toFixed(0)} ms`)
    expect(ms).toBeLessThan(1500)
  })

  it('refuses 8 million levels in a 16 MiB file (the largest limits.maxSpecBytes) in bounded time', async () => {
    const big = tempRepo()
    try {
      big.write(
        'nhi-recover.yaml',
        configWith('  maxRequestLifetime: 3660d', '  maxRequestLifetime: 3660d\n  maxSpecBytes: 16777216'),
      )
      big.write('recovery-specs/deep.yaml', '['.repeat(8 * 1024 * 1024) + ']'.repeat(8 * 1024 * 1024))
      const [result, ms] = timed(() => validateSpecs({ cwd: big.root, paths: [], now: NOW }))
      expect(onlyProblem(result)).toMatchObject({ code: 'NESTING_TOO_DEEP', line: 1, col: 33 })
      console.log(`8M levels in 16 MiB: ${ms.toFixed(0)} ms`)
      expect(ms).toBeLessThan(3000)
    } finally {
      big.cleanup()
    }
  })

  it('refuses indented block mappings at the 33rd level', async () => {
    const text = Array.from({ length: 400 }, (_, i) => `${' '.repeat(i)}k:`).join('\n') + ' x\n'
    const p = onlyProblem(await validateOne('deep-block.yaml', text))
    expect(p).toMatchObject({ code: 'NESTING_TOO_DEEP', line: 33, col: 33 })
  })

  it('allows exactly 32 levels and refuses 33', async () => {
    const nested = (n: number) => 'reason: ' + '['.repeat(n - 1) + ']'.repeat(n - 1) + '\n'
    const at32 = await validateOne(
      'depth-32.yaml',
      specWith('reason: Payments gateway API key found in a public gist.', nested(32)),
    )
    expect(at32.problems.map((p) => p.code)).not.toContain('NESTING_TOO_DEEP')
    const at33 = await validateOne(
      'depth-33.yaml',
      specWith('reason: Payments gateway API key found in a public gist.', nested(33)),
    )
    expect(at33.problems.map((p) => p.code)).toEqual(['NESTING_TOO_DEEP'])
  })
})

describe('unknown fields', () => {
  it('refuses a misspelt top-level field with "did you mean"', async () => {
    const text = specWith('ticket: SEC-1002', 'tikcet: SEC-1002')
    const result = await validateOne('typo.yaml', text)
    expect(result.problems).toContainEqual({
      file: 'recovery-specs/typo.yaml',
      ...posOf(text, 'tikcet'),
      code: 'UNKNOWN_FIELD',
      path: 'tikcet',
      message: 'unknown field "tikcet"; did you mean "ticket"?',
    })
    expect(result.problems).toContainEqual(expect.objectContaining({ code: 'REQUIRED', path: 'ticket' }))
  })

  it('suggests the field of the right target kind in a nested mapping', async () => {
    const text = specWith('  path: payments/gateway', '  pth: payments/gateway')
    const result = await validateOne('typo-nested.yaml', text)
    expect(result.problems).toContainEqual(
      expect.objectContaining({
        code: 'UNKNOWN_FIELD',
        path: 'target.pth',
        ...posOf(text, 'pth:'),
        message: 'unknown field "pth"; did you mean "path"?',
      }),
    )
  })

  it('lists the allowed fields when nothing is close', async () => {
    const text = specWith('action: rotate', 'action: rotate\ncolour: blue')
    const p = onlyProblem(await validateOne('unrelated.yaml', text))
    expect(p).toMatchObject({ code: 'UNKNOWN_FIELD', path: 'colour', ...posOf(text, 'colour') })
    expect(p.message).toBe(
      'unknown field "colour"; allowed here: apiVersion, kind, id, requester, reason, ticket, created, expires, identity, target, action, rollbackOf, rotation',
    )
  })
})

describe('documents that are not one mapping', () => {
  it('refuses a multi-document file at the second document marker', async () => {
    const text = VALID_SPEC + '---\n' + VALID_SPEC
    const p = onlyProblem(await validateOne('multi.yaml', text))
    expect(p).toEqual({
      file: 'recovery-specs/multi.yaml',
      ...posOf(text, '---'),
      code: 'MULTIPLE_DOCUMENTS',
      message: 'holds 2 YAML documents (separated by ---); put each request in its own file',
    })
  })

  it.each([
    ['an empty file', 'empty.yaml', ''],
    [
      'a comments-only file',
      'comments.yaml',
      '# yaml-language-server: $schema=../schema/recovery-request.v1.json\n# TODO\n',
    ],
    ['a blank file', 'blank.yaml', '\n   \n\n'],
    ['a bare document marker', 'marker.yaml', '---\n'],
  ])('refuses %s as empty', async (_name, file, content) => {
    expect(onlyProblem(await validateOne(file, content))).toEqual({
      file: `recovery-specs/${file}`,
      line: 0,
      col: 0,
      code: 'EMPTY_FILE',
      message: 'holds no YAML content (it is empty or only comments); a spec must contain one YAML mapping',
    })
  })

  it('refuses a scalar or a list where the mapping belongs', async () => {
    expect(onlyProblem(await validateOne('scalar.yaml', 'just some words\n'))).toMatchObject({
      code: 'SCHEMA',
      path: '(root)',
      line: 1,
      col: 1,
      message: 'must be a mapping (key: value lines), not text',
    })
    expect(onlyProblem(await validateOne('list.yaml', '- a\n- b\n'))).toMatchObject({
      message: 'must be a mapping (key: value lines), not a list',
    })
  })
})

describe('symlinks and paths outside the repo', () => {
  it('refuses a symlink inside recovery-specs/ that points outside, without reading it', async () => {
    writeFileSync(join(outside, 'elsewhere.yaml'), VALID_SPEC)
    symlinkSync(join(outside, 'elsewhere.yaml'), join(repo.root, 'recovery-specs', 'linked.yaml'))
    const p = onlyProblem(await validateOne('linked.yaml'))
    expect(p).toEqual({
      file: 'recovery-specs/linked.yaml',
      line: 0,
      col: 0,
      code: 'PATH_OUTSIDE_REPO',
      message: 'is a symbolic link that points outside the repository; refusing to read it',
    })
    rmSync(join(repo.root, 'recovery-specs', 'linked.yaml'))
  })

  it('refuses a file reached through a symlinked directory that leaves the repo', async () => {
    writeFileSync(join(outside, 'via-dir.yaml'), VALID_SPEC)
    symlinkSync(outside, join(repo.root, 'recovery-specs', 'ext'))
    const p = onlyProblem(await validateOne('ext/via-dir.yaml'))
    expect(p).toMatchObject({ code: 'PATH_OUTSIDE_REPO', line: 0, col: 0 })
    expect(p.message).toContain('outside the repository')
    rmSync(join(repo.root, 'recovery-specs', 'ext'))
  })

  it('accepts a symlink to a spec elsewhere inside the repo, and refuses a symlink loop', async () => {
    repo.write('archive/kept.yaml', withOwnId(VALID_SPEC, 'kept'))
    symlinkSync(join(repo.root, 'archive', 'kept.yaml'), join(repo.root, 'recovery-specs', 'inside.yaml'))
    expect((await validateOne('inside.yaml')).problems).toEqual([])
    rmSync(join(repo.root, 'recovery-specs', 'inside.yaml'))

    symlinkSync('loop.yaml', join(repo.root, 'recovery-specs', 'loop.yaml'))
    expect(onlyProblem(await validateOne('loop.yaml'))).toMatchObject({
      code: 'BAD_SYMLINK',
      message: 'is a symbolic link loop',
    })
    rmSync(join(repo.root, 'recovery-specs', 'loop.yaml'))
  })

  it.each([['/etc/passwd'], ['../outside.yaml'], [join(tmpdir(), 'x.yaml')]])(
    'refuses the path argument %s as a usage error with a next step',
    async (path) => {
      await expectUnchanged(repo.root, () => {
        let thrown: unknown
        try {
          validateSpecs({ cwd: repo.root, paths: [path], now: NOW })
        } catch (err) {
          thrown = err
        }
        expect(thrown).toBeInstanceOf(UserError)
        expect(thrown).toMatchObject({ code: 'PATH_OUTSIDE_REPO', exitCode: 2 })
        expect((thrown as UserError).message).toBe(`${path} lies outside the recovery repo at ${repo.root}.`)
        expect((thrown as UserError).next).toMatch(/^Pass paths inside the repo/)
      })
    },
  )
})

describe('other hostile shapes', () => {
  it('refuses custom tags such as !!js/function, naming the tag', async () => {
    const text = specWith('ticket: SEC-1002', 'ticket: !!js/function "function () { return 1 }"')
    const p = onlyProblem(await validateOne('tag.yaml', text))
    expect(p).toEqual({
      file: 'recovery-specs/tag.yaml',
      ...posOf(text, '!!js/function'),
      code: 'TAG_RESOLVE_FAILED',
      message: 'the YAML tag !!js/function is not allowed; specs use plain YAML without custom tags',
    })
  })

  it('refuses the YAML 1.1 tags that would turn text into binary data or dates', async () => {
    const text = specWith('ticket: SEC-1002', 'ticket: !!binary U0VDLTEwMDI=')
    expect(onlyProblem(await validateOne('binary-tag.yaml', text))).toMatchObject({
      code: 'TAG_RESOLVE_FAILED',
      message: 'the YAML tag !!binary is not allowed; specs use plain YAML without custom tags',
    })
  })

  it('refuses tabs used for indentation at the tab', async () => {
    const text = specWith('  provider: bao', '\tprovider: bao')
    const result = await validateOne('tabs.yaml', text)
    expect(result.problems[0]).toEqual({
      file: 'recovery-specs/tabs.yaml',
      ...posOf(text, '\t'),
      code: 'TAB_AS_INDENT',
      message: 'tabs are not allowed as indentation in YAML; indent with spaces',
    })
    expect(result.problems.every((p) => /^[A-Z_]+$/.test(p.code))).toBe(true)
  })

  it('refuses a directory named like a spec, whether named or found by the walk', async () => {
    mkdirSync(join(repo.root, 'recovery-specs', 'folder.yaml'))
    const expected = {
      file: 'recovery-specs/folder.yaml',
      line: 0,
      col: 0,
      code: 'NOT_A_FILE',
      message: 'is a directory, not a spec file',
    }
    expect(onlyProblem(await validateOne('folder.yaml'))).toEqual(expected)
    const walked = await expectUnchanged(repo.root, () =>
      validateSpecs({ cwd: repo.root, paths: [], now: NOW }),
    )
    expect(walked.problems).toContainEqual(expected)
    rmSync(join(repo.root, 'recovery-specs', 'folder.yaml'), { recursive: true })
  })

  it('refuses a named pipe named like a spec at once instead of blocking on it', async () => {
    const fifo = join(repo.root, 'recovery-specs', 'pipe.yaml')
    execFileSync('mkfifo', [fifo])
    symlinkSync('pipe.yaml', join(repo.root, 'recovery-specs', 'to-pipe.yaml'))
    const [result, ms] = timed(() =>
      validateSpecs({
        cwd: repo.root,
        paths: ['recovery-specs/pipe.yaml', 'recovery-specs/to-pipe.yaml'],
        now: NOW,
      }),
    )
    expect(result.problems.map((p) => [p.file, p.code, p.message])).toEqual([
      ['recovery-specs/pipe.yaml', 'NOT_A_FILE', 'is not a regular file (a device, pipe or socket)'],
      ['recovery-specs/to-pipe.yaml', 'NOT_A_FILE', 'is not a regular file (a device, pipe or socket)'],
    ])
    expect(ms).toBeLessThan(1000)
    rmSync(fifo)
    rmSync(join(repo.root, 'recovery-specs', 'to-pipe.yaml'))
  })

  it('caps the problems of one file so a hostile file cannot flood the log', async () => {
    const text = Array.from({ length: 5000 }, (_, i) => `field${i}: x`).join('\n') + '\n'
    const result = await validateOne('flood.yaml', text)
    expect(result.problems).toHaveLength(26)
    expect(result.problems[0]).toMatchObject({
      code: 'TOO_MANY_PROBLEMS',
      line: 0,
      message: 'has more than 25 problems; only the first 25 are shown',
    })
  })
})

describe('hostile file names', () => {
  it('cannot forge or hide output lines with a newline, escapes or bidi controls in the name', async () => {
    const name = 'evil\n::error file=forged.yaml::all good\u001b[2K\u202e.yaml'
    const result = await validateOne(name, '')
    expect(onlyProblem(result)).toMatchObject({ file: `recovery-specs/${name}`, code: 'EMPTY_FILE' })
    for (const githubActions of [false, true]) {
      const lines = renderValidateReport(result, { githubActions }).split('\n')
      expect(lines.some((l) => l.startsWith('::error file=forged.yaml'))).toBe(false)
      expect(lines.join('\n')).not.toContain('\u001b')
      expect(lines.join('\n')).not.toContain('\u202e')
      expect(lines[0]).toBe(
        'recovery-specs/evil\\u000a::error file=forged.yaml::all good\\u001b[2K\\u202e.yaml: holds no YAML content (it is empty or only comments); a spec must contain one YAML mapping [EMPTY_FILE]',
      )
    }
    rmSync(join(repo.root, 'recovery-specs', name))
  })
})

describe('hostile input through the built CLI', () => {
  let cli: TempRepo
  const dupText = specWith('ticket: SEC-1002', 'ticket: SEC-1002\nreason: again')
  const dup = posOf(dupText, 'reason:', 1)
  const dupFirst = posOf(dupText, 'reason:').line
  beforeAll(() => {
    cli = tempRepo()
    cli.write('recovery-specs/ok.yaml', VALID_SPEC)
    cli.write('recovery-specs/dup.yaml', dupText)
    cli.write('recovery-specs/deep.yaml', '['.repeat(100_000) + ']'.repeat(100_000))
    cli.write(
      'recovery-specs/latin1.yaml',
      Buffer.from(specWith('ticket: SEC-1002', 'ticket: Café'), 'latin1'),
    )
    cli.write('recovery-specs/empty.yaml', '')
    cli.write('recovery-specs/multi.yaml', VALID_SPEC + '---\n' + VALID_SPEC)
    mkdirSync(join(cli.root, 'recovery-specs', 'folder.yaml'))
    writeFileSync(join(outside, 'cli-elsewhere.yaml'), VALID_SPEC)
    symlinkSync(join(outside, 'cli-elsewhere.yaml'), join(cli.root, 'recovery-specs', 'linked.yaml'))
  })
  afterAll(() => cli.cleanup())

  const run = (args: string[], env: Record<string, string> = {}) =>
    expectUnchanged(cli.root, () => runCli(args, { cwd: cli.root, env }))

  it('reports every hostile file with file:line:col, exits 1 and prints no stack trace', async () => {
    const start = performance.now()
    const r = await run(['validate'])
    const ms = performance.now() - start
    expect(r.exitCode).toBe(1)
    expectNoStack(r)
    const lines = r.stdout.split('\n')
    expect(lines).toEqual(
      expect.arrayContaining([
        'recovery-specs/deep.yaml:1:33: nesting is deeper than 32 levels (limits.maxDepth); a spec needs only a few [NESTING_TOO_DEEP]',
        `recovery-specs/dup.yaml:${dup.line}:${dup.col}: duplicate key "reason": it already appears on line ${dupFirst} of this mapping; each key may appear once [DUPLICATE_KEY]`,
        'recovery-specs/empty.yaml: holds no YAML content (it is empty or only comments); a spec must contain one YAML mapping [EMPTY_FILE]',
        'recovery-specs/folder.yaml: is a directory, not a spec file [NOT_A_FILE]',
        'recovery-specs/latin1.yaml:9:12: is not valid UTF-8 (byte 0xE9 here is not part of a valid character); save the file as UTF-8 [NOT_UTF8]',
        'recovery-specs/linked.yaml: is a symbolic link that points outside the repository; refusing to read it [PATH_OUTSIDE_REPO]',
        `recovery-specs/multi.yaml:${posOf(VALID_SPEC + '---', '---').line}:1: holds 2 YAML documents (separated by ---); put each request in its own file [MULTIPLE_DOCUMENTS]`,
        '✖ 7 of 8 specs invalid, 7 problem(s)',
      ]),
    )
    expect(r.stderr).toContain('Error: 7 problem(s) in 7 of 8 spec(s).')
    expect(r.stderr).toMatch(/^Next: /m)
    expect(ms).toBeLessThan(10_000)
  })

  it('puts the same problems in the --json envelope', async () => {
    const r = await run(['validate', '--json'])
    expect(r.exitCode).toBe(1)
    expectNoStack(r)
    const env = envelope<ValidateResult>(r)
    expect(env).toMatchObject({
      ok: false,
      exitCode: 1,
      error: { kind: 'check-failed', code: 'SPEC_INVALID' },
    })
    expect(env.result!.problems).toContainEqual({
      file: 'recovery-specs/dup.yaml',
      ...dup,
      code: 'DUPLICATE_KEY',
      message: `duplicate key "reason": it already appears on line ${dupFirst} of this mapping; each key may appear once`,
    })
    expect(env.result!.specs.find((s) => s.file === 'recovery-specs/ok.yaml')).toMatchObject({ valid: true })
  })

  it('emits GitHub annotations with file, line and col under GITHUB_ACTIONS=true', async () => {
    const r = await run(['validate', 'recovery-specs/latin1.yaml', 'recovery-specs/deep.yaml'], {
      GITHUB_ACTIONS: 'true',
    })
    expect(r.exitCode).toBe(1)
    expect(r.stdout).toContain(
      '::error file=recovery-specs/latin1.yaml,line=9,col=12,title=NOT_UTF8::is not valid UTF-8 (byte 0xE9 here is not part of a valid character); save the file as UTF-8',
    )
    expect(r.stdout).toContain('::error file=recovery-specs/deep.yaml,line=1,col=33,title=NESTING_TOO_DEEP::')
  })

  it.each([
    [
      'a path outside the repo',
      ['validate', '/etc/passwd'],
      'Error: /etc/passwd lies outside the recovery repo at ',
      'Next: Pass paths inside the repo',
    ],
    [
      'a missing path',
      ['validate', 'recovery-specs/nope.yaml'],
      'Error: recovery-specs/nope.yaml does not exist.',
      'Next: Pass spec files or directories under recovery-specs/',
    ],
    [
      'a missing --config',
      ['validate', '--config', 'nope.yaml'],
      'Error: No repo config found at nope.yaml (from --config).',
      'Next: Check the --config path, or run "nhi-recover init"',
    ],
  ])('exits 2 with a Next: line for %s', async (_name, args, error, next) => {
    const r = await run(args)
    expect(r.exitCode).toBe(2)
    expectNoStack(r)
    expect(r.stdout).toBe('')
    expect(r.stderr).toContain(error)
    expect(r.stderr).toContain(next)
    const json = envelope(await run([...args, '--json']))
    expect(json).toMatchObject({ ok: false, exitCode: 2, error: { kind: 'user' } })
    expect(json.error?.next).toBeTruthy()
  })

  it('exits 2 for a broken --config, naming the config file:line:col', async () => {
    const broken =
      'apiVersion: nhi-recover/v1\nkind: RepoConfig\nproviders:\n  local: { kind: lokal }\npolicy: { tiers: {} }\n'
    cli.write('broken.yaml', broken)
    const at = posOf(broken, 'lokal')
    const r = await run(['validate', '--config', 'broken.yaml'])
    expect(r.exitCode).toBe(2)
    expectNoStack(r)
    expect(r.stderr).toContain('Error: The repo config broken.yaml is invalid:')
    expect(r.stderr).toContain(
      `  broken.yaml:${at.line}:${at.col}: providers.local.kind: must be one of: local, vault, aws-secrets-manager, aws-iam [INVALID_VALUE]`,
    )
    expect(r.stderr).toMatch(/^Next: Fix broken\.yaml/m)
  })
})
