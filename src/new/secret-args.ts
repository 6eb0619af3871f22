/**
 * Defence in depth for flags: a value on the command line that looks like a credential is
 * registered as a Secret before anything parses it, so every output path (including
 * oclif's own parse errors) scrubs it even if some message were to quote it.
 */
import { detectSecret } from '../spec/inline-secrets.js'
import { Secret } from '../secret.js'

const WORD_SPLIT = /[\s"'`,;()<>[\]{}|\\]+/

/** Registers every secret-looking argument (or the value of --flag=value) for scrubbing. */
export function guardSecretArgs(argv: readonly string[]): void {
  for (const arg of argv) {
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1
    for (const value of eq === -1 ? [arg] : [arg, arg.slice(eq + 1)]) {
      if (!detectSecret(value)) continue
      new Secret(value)
      // Also each word, so the credential alone is scrubbed when quoted without its sentence.
      for (const word of value.split(WORD_SPLIT)) if (detectSecret(word)) new Secret(word)
    }
  }
}
