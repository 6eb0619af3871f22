/** Shared fixtures for the spec tests: a valid spec text, tree snapshots, positions, no-stack checks. */
import { createHash } from 'node:crypto'
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import { join, relative } from 'node:path'
import { expect } from 'vitest'
import { EXAMPLES } from '../helpers/temp-repo.js'
import type { CliRun } from '../helpers/cli.js'

/** A fixed clock inside the examples' validity window (created 2026-11-20, expires 2036). */
export const NOW = new Date('2026-12-01T00:00:00Z')

/** The text of a valid spec under the example config (kv-v2 on the "bao" provider). */
export const VALID_SPEC = readFileSync(join(EXAMPLES, 'vault-kv-api-key.yaml'), 'utf8')

/** The example repo config, under which VALID_SPEC is valid. */
export const CONFIG_TEXT = readFileSync(join(EXAMPLES, 'nhi-recover.yaml'), 'utf8')

/** VALID_SPEC with one line replaced; fails loudly when the line is not there. */
export function specWith(line: string, replacement: string, base = VALID_SPEC): string {
  const lines = base.split('\n')
  const i = lines.findIndex((l) => l === line)
  if (i === -1) throw new Error(`fixture: no line ${JSON.stringify(line)}`)
  lines.splice(i, 1, ...replacement.split('\n'))
  return lines.join('\n')
}

/** CONFIG_TEXT with one line replaced. */
export function configWith(line: string, replacement: string): string {
  return specWith(line, replacement, CONFIG_TEXT)
}

/** Gives a spec text or bytes its own id, so specs in one repo do not collide as duplicates. */
export function withOwnId<T extends string | Buffer>(content: T, name: string): T {
  const id =
    'rr-' +
    name
      .replace(/\.ya?ml$/, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
  const from = 'id: rr-payments-kv-api-key\n'
  if (typeof content === 'string') return content.replace(from, `id: ${id}\n`) as T
  const at = content.indexOf(from)
  if (at === -1) return content
  return Buffer.concat([
    content.subarray(0, at),
    Buffer.from(`id: ${id}\n`),
    content.subarray(at + from.length),
  ]) as T
}

/** 1-based line and column (UTF-16 units, as reported) of the nth occurrence of `needle`. */
export function posOf(text: string, needle: string, nth = 0): { line: number; col: number } {
  let at = -1
  for (let k = 0; k <= nth; k++) {
    at = text.indexOf(needle, at + 1)
    if (at === -1) throw new Error(`fixture: ${JSON.stringify(needle)} occurs fewer than ${nth + 1} times`)
  }
  const before = text.slice(0, at)
  const line = before.split('\n').length
  return { line, col: at - (before.lastIndexOf('\n') + 1) + 1 }
}

/** Every path below `root` with its kind, size, mode, mtime and content hash (or link target). */
export function treeSnapshot(root: string): Map<string, string> {
  const out = new Map<string, string>()
  const visit = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const full = join(dir, name)
      const st = lstatSync(full)
      const rel = relative(root, full)
      if (st.isSymbolicLink()) out.set(rel, `link:${readlinkSync(full)}`)
      else if (st.isDirectory()) {
        out.set(rel, `dir:${st.mode}:${st.mtimeMs}`)
        visit(full)
      } else if (st.isFile()) {
        const sha = createHash('sha256').update(readFileSync(full)).digest('hex')
        out.set(rel, `file:${st.size}:${st.mode}:${st.mtimeMs}:${sha}`)
      } else out.set(rel, `other:${st.mode}`)
    }
  }
  visit(root)
  return out
}

/** Runs `fn` and asserts that nothing under `root` was created, changed or removed. */
export async function expectUnchanged<T>(root: string, fn: () => T | Promise<T>): Promise<T> {
  const before = treeSnapshot(root)
  const result = await fn()
  expect(treeSnapshot(root)).toEqual(before)
  return result
}

/** A user error or failed check: no stack trace on either stream. */
export function expectNoStack(run: CliRun): void {
  expect(run.stderr).not.toMatch(/^\s+at /m)
  expect(run.stdout).not.toMatch(/^\s+at /m)
  expect(run.stderr).not.toMatch(/\bBUG\b|Unexpected error/)
}
