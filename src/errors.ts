/**
 * Typed errors. Every failure the CLI reports is one of these kinds, and each kind maps to
 * one documented exit code (see README "Exit codes"). Only a BugError prints a stack trace.
 */

export const ExitCode = {
  ok: 0,
  /** A check failed: invalid spec, blocked approval, tampered ledger, failed rotation. */
  checkFailed: 1,
  /** Usage or configuration error: fix the command line or the config and retry. */
  usage: 2,
  /** An external system (forge, secret store, git remote) was unavailable. */
  external: 3,
  /** A bug in nhi-recover itself. */
  bug: 4,
} as const
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode]

export type ErrorKind = 'check-failed' | 'user' | 'external' | 'bug'

/** Base class: a message a person can act on, plus the next step to try. */
export abstract class NhiError extends Error {
  abstract readonly kind: ErrorKind
  abstract readonly exitCode: ExitCode
  /** Stable machine-readable code, e.g. SPEC_INVALID. */
  readonly code: string
  /** What to try next, in words. */
  readonly next: string | undefined

  constructor(code: string, message: string, options: { next?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.next = options.next
    this.name = new.target.name
  }
}

/** The user or the environment must change something: a bad flag, a missing file, bad config. */
export class UserError extends NhiError {
  readonly kind = 'user' as const
  readonly exitCode = ExitCode.usage
}

/** A check ran and said no. Carries the details that made it fail. */
export class CheckFailedError<D = unknown> extends NhiError {
  readonly kind = 'check-failed' as const
  readonly exitCode = ExitCode.checkFailed
  readonly details: D | undefined

  constructor(code: string, message: string, options: { next?: string; details?: D } = {}) {
    super(code, message, options)
    this.details = options.details
  }
}

/** Another system failed or could not be reached. Nothing was changed on our side. */
export class ExternalError extends NhiError {
  readonly kind = 'external' as const
  readonly exitCode = ExitCode.external
  readonly system: string

  constructor(
    system: string,
    code: string,
    message: string,
    options: { next?: string; cause?: unknown } = {},
  ) {
    super(code, message, options)
    this.system = system
  }
}

/** Something that should be impossible happened. This is ours to fix. */
export class BugError extends NhiError {
  readonly kind = 'bug' as const
  readonly exitCode = ExitCode.bug

  constructor(message: string, options: { cause?: unknown } = {}) {
    super('BUG', message, {
      next: 'This is a bug in nhi-recover. Please report it with the command you ran.',
      ...options,
    })
  }
}

export function isNhiError(value: unknown): value is NhiError {
  return value instanceof NhiError
}
