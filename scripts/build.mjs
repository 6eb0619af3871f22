// Builds dist/ with esbuild. Each command becomes one ESM entry; our core plus the small
// libraries it always needs (zod, yaml) are bundled in, because loading one file is far
// faster than resolving hundreds of small modules. Heavy SDKs stay external and are
// imported lazily by the code that needs them, so they never load for validate or --version.
import { build } from 'esbuild'
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
// oclif is bundled too: loaded from node_modules it costs ~70 ms of startup in module resolution.
const bundled = new Set(['zod', 'yaml', 'fastest-levenshtein', 'canonicalize', '@oclif/core'])
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

// yaml's parser reads process.env.LOG_TOKENS on every token and its composer reads LOG_STREAM on
// every document: each read is a native call, about a tenth of validate's time on many specs.
// Those are debugging switches of the library, so the bundle fixes them to off. The build
// fails if the pattern disappears, so an upgrade cannot silently drop the fix.
const yamlDebugSwitches = {
  name: 'yaml-debug-switches-off',
  setup(b) {
    b.onLoad(
      { filter: /[\\/]node_modules[\\/]yaml[\\/]dist[\\/](parse[\\/]parser|compose[\\/]composer)\.js$/ },
      (args) => {
        const src = readFileSync(args.path, 'utf8')
        const out = src.replace(/node_process\.env\.LOG_(TOKENS|STREAM)/g, 'false')
        if (out === src)
          throw new Error(`yaml debug switch not found in ${args.path}; re-check the yaml upgrade`)
        return { contents: out, loader: 'js' }
      },
    )
  },
}

rmSync(join(root, 'dist'), { recursive: true, force: true })
await build({
  entryPoints: { ...entries(join(root, 'commands')), main: join(root, 'src', 'cli', 'main.ts') },
  outdir: join(root, 'dist'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  jsx: 'automatic',
  chunkNames: 'chunks/[name]-[hash]',
  // typescript and ts-node are oclif's optional development-mode helpers; never needed at runtime.
  external: [...external, 'typescript', 'ts-node'],
  sourcemap: 'linked',
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [yamlDebugSwitches],
  // yaml's node build is CommonJS and requires node builtins at runtime.
  banner: {
    js: "import { createRequire as __nhiCreateRequire } from 'node:module'; const require = __nhiCreateRequire(import.meta.url);",
  },
})
