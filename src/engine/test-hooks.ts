/**
 * Crash points for the engine's crash tests. NHI_RECOVER_TEST_CRASH_AT=<point>[@<request-id>]
 * makes the executor SIGKILL itself at that step boundary. It is honoured only with
 * NHI_RECOVER_TEST_MODE=1, and refused (before anything runs) without it, so a stray variable
 * can never crash a real execution halfway.
 */
import { UserError } from '../errors.js'

export const CRASH_POINTS = [
  'after-lock',
  'after-prepare',
  'after-verify',
  'after-promote',
  'after-retire',
  'before-audit',
  'after-audit',
] as const
export type CrashPoint = (typeof CRASH_POINTS)[number]

export type CrashHook = (point: CrashPoint, requestId?: string) => void

export function crashHookFromEnv(env: NodeJS.ProcessEnv = process.env): CrashHook {
  const spec = env.NHI_RECOVER_TEST_CRASH_AT
  if (!spec) return () => {}
  if (env.NHI_RECOVER_TEST_MODE !== '1') {
    throw new UserError(
      'TEST_HOOK_REFUSED',
      'NHI_RECOVER_TEST_CRASH_AT is a test hook and is refused outside test mode.',
      {
        next: 'Unset NHI_RECOVER_TEST_CRASH_AT.',
      },
    )
  }
  const [point, only] = spec.split('@') as [string, string | undefined]
  if (!(CRASH_POINTS as readonly string[]).includes(point)) {
    throw new UserError(
      'TEST_HOOK_REFUSED',
      `Unknown crash point "${point}"; known: ${CRASH_POINTS.join(', ')}.`,
    )
  }
  return (at, requestId) => {
    if (at === point && (!only || only === requestId)) process.kill(process.pid, 'SIGKILL')
  }
}
