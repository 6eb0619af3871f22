/** Configured verification: call an endpoint with the new credential and expect a status. */
import { CheckFailedError, ExternalError } from '../errors.js'
import type { Secret } from '../secret.js'
import type { HttpCheck } from './run-request.js'

export async function httpCheck(check: HttpCheck, credential: Secret, timeoutMs = 10_000): Promise<void> {
  const value = check.scheme ? `${check.scheme} ${credential.reveal()}` : credential.reveal()
  let res: Response
  try {
    res = await fetch(check.url, {
      method: 'GET',
      headers: { [check.header]: value },
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    })
  } catch (err) {
    // The error text of fetch never contains headers, but say only what we know is safe.
    const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name
    throw new ExternalError(
      'verification',
      'VERIFY_UNREACHABLE',
      `Verification endpoint ${check.url} could not be reached (${code}).`,
      {
        next: 'Check the endpoint; the request resumes at verification when run again.',
      },
    )
  }
  await res.body?.cancel()
  if (res.status !== check.expectStatus) {
    throw new CheckFailedError(
      'VERIFY_FAILED',
      `Verification endpoint ${check.url} answered ${res.status}, expected ${check.expectStatus}.`,
    )
  }
}
