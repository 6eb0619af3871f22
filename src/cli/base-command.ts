/**
 * Every command extends this. It owns the one --json envelope, maps every error to its
 * documented exit code, and prints a stack trace only for bugs.
 */
import { Command, Errors } from '@oclif/core'
import { BugError, ExitCode, isNhiError, UserError, type NhiError } from '../errors.js'
import { SPEC_API_VERSION } from '../spec/schema.js'
import { scrubSecrets } from '../secret.js'

export interface Envelope<T> {
  apiVersion: typeof SPEC_API_VERSION
  command: string
  ok: boolean
  exitCode: number
  result?: T
  error?: { kind: NhiError['kind']; code: string; message: string; next?: string }
}

/** Commands override run(); the value it returns becomes `result` in the JSON envelope. */
export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true

  /** The only way commands write to stdout: scrubbed of any secret value this process holds. */
  protected out(text: string): void {
    process.stdout.write(scrubSecrets(text.endsWith('\n') ? text : text + '\n'))
  }

  protected err(text: string): void {
    process.stderr.write(scrubSecrets(text.endsWith('\n') ? text : text + '\n'))
  }

  override logJson(json: unknown): void {
    this.out(JSON.stringify(json, null, 2))
  }

  protected override toSuccessJson(result: unknown): Envelope<unknown> {
    return { apiVersion: SPEC_API_VERSION, command: this.id ?? '', ok: true, exitCode: ExitCode.ok, result }
  }

  protected override toErrorJson(err: unknown): Envelope<unknown> {
    const e = toNhiError(err)
    const details = (e as { details?: unknown }).details
    return {
      apiVersion: SPEC_API_VERSION,
      command: this.id ?? '',
      ok: false,
      exitCode: e.exitCode,
      ...(details === undefined ? {} : { result: details }),
      error: { kind: e.kind, code: e.code, message: e.message, ...(e.next ? { next: e.next } : {}) },
    }
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<never> {
    // oclif signals this.exit() with an ExitError; let it through untouched.
    if (err instanceof Errors.ExitError) throw err
    const e = toNhiError(err)
    if (this.jsonEnabled()) {
      this.logJson(this.toErrorJson(e))
    } else {
      this.err(`Error: ${e.message}`)
      if (e.next) this.err(`Next: ${e.next}`)
      if (e instanceof BugError && e.cause instanceof Error && e.cause.stack) this.err(`\n${e.cause.stack}`)
    }
    this.exit(e.exitCode)
  }
}

/** Classifies anything thrown: our typed errors pass through; oclif parse errors are usage errors; the rest are bugs. */
export function toNhiError(err: unknown): NhiError {
  if (isNhiError(err)) return err
  if (err instanceof Errors.CLIError) {
    const message = err.message.replace(/\n\s*See more help with --help$/, '')
    return new UserError('USAGE', message, {
      next: 'Run the command with --help to see its flags and arguments.',
    })
  }
  return new BugError(err instanceof Error ? `Unexpected error: ${err.message}` : 'Unexpected error', {
    cause: err,
  })
}
