/** Entry of the bundled CLI: bin/run.js imports this, so oclif loads as one bundled chunk. */
export { execute } from '@oclif/core'
