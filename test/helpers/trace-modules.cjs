// Preloaded with --require into a CLI run: records every module file the process loaded,
// CommonJS and ESM alike, so tests can prove heavy SDKs stay unloaded.
const { appendFileSync } = require('node:fs')
const { register } = require('node:module')
const { pathToFileURL } = require('node:url')

const file = process.env.NHI_TRACE_FILE
if (file) {
  register(pathToFileURL(`${__dirname}/trace-modules-hooks.mjs`).href, { data: { file } })
  process.on('exit', () => appendFileSync(file, Object.keys(require.cache).join('\n') + '\n'))
}
