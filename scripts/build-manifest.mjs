// Writes oclif.manifest.json so that startup reads one file instead of importing every
// command to discover its flags. This is what `oclif manifest` does, without pulling the
// whole oclif packaging toolchain into our dev dependencies.
import { Plugin } from '@oclif/core'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const plugin = new Plugin({
  root,
  type: 'core',
  ignoreManifest: true,
  errorOnManifestCreate: true,
  isRoot: true,
})
await plugin.load()
const manifest = plugin.manifest
if (Object.keys(manifest.commands).length === 0) {
  console.error('build-manifest: no commands found under dist/commands')
  process.exit(1)
}
writeFileSync(join(root, 'oclif.manifest.json'), JSON.stringify(manifest, null, 2) + '\n')
