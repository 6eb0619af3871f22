#!/usr/bin/env node
// dist/main.js bundles oclif into the same chunk the commands use, so startup reads a few
// files instead of resolving hundreds of modules. `npm run build` (run by npm ci) makes it.
import { existsSync } from 'node:fs'

const main = new URL('../dist/main.js', import.meta.url)
if (!existsSync(main)) {
  process.stderr.write('nhi-recover is not built yet: run "npm run build" (npm ci does it for you).\n')
  process.exit(2)
}
const { execute } = await import(main.href)
await execute({ dir: import.meta.url })
