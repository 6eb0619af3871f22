// Builds dist/ with esbuild. Each command becomes one ESM entry; our core plus the small
// libraries it always needs (zod, yaml) are bundled in, because loading one file is far
// faster than resolving hundreds of small modules. Heavy SDKs stay external and are
// imported lazily by the code that needs them, so they never load for validate or --version.
import { build } from 'esbuild'
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const bundled = new Set(['zod', 'yaml', 'fastest-levenshtein', 'canonicalize'])
const external = Object.keys(pkg.dependencies ?? {})
  .filter((name) => !bundled.has(name))
  .flatMap((name) => [name, `${name}/*`])

function entries(dir) {
  const out = {}
  for (const name of readdirSync(dir)) {
    const full = join(dir, name)
    if (statSync(full).isDirectory()) Object.assign(out, entries(full))
    else if (/\.tsx?$/.test(name) && !name.endsWith('.d.ts')) {
      out[relative(root, full).replace(/\.tsx?$/, '')] = full
    }
  }
  return out
}

rmSync(join(root, 'dist'), { recursive: true, force: true })
await build({
  entryPoints: entries(join(root, 'commands')),
  outdir: join(root, 'dist'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  jsx: 'automatic',
  chunkNames: 'chunks/[name]-[hash]',
  external,
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  // yaml's node build is CommonJS and requires node builtins at runtime.
  banner: {
    js: "import { createRequire as __nhiCreateRequire } from 'node:module'; const require = __nhiCreateRequire(import.meta.url);",
  },
})
