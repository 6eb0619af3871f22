/** Real temporary directories laid out as recovery repos. */
import { mkdtempSync, mkdirSync, writeFileSync, rmSync, cpSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { PROJECT_ROOT } from './cli.js'

export const EXAMPLES = join(PROJECT_ROOT, 'recovery-specs', 'examples')

export interface TempRepo {
  root: string
  write(rel: string, content: string | Buffer): string
  cleanup(): void
}

/** A repo with a .git marker, the example config at its root and an empty recovery-specs/. */
export function tempRepo(opts: { withExampleConfig?: boolean } = {}): TempRepo {
  const root = mkdtempSync(join(tmpdir(), 'nhi-test-'))
  mkdirSync(join(root, '.git'))
  mkdirSync(join(root, 'recovery-specs'))
  if (opts.withExampleConfig !== false)
    cpSync(join(EXAMPLES, 'nhi-recover.yaml'), join(root, 'nhi-recover.yaml'))
  return {
    root,
    write(rel, content) {
      const abs = join(root, rel)
      mkdirSync(dirname(abs), { recursive: true })
      writeFileSync(abs, content)
      return abs
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true })
    },
  }
}
