/**
 * A real moto server for AWS integration tests: moto's own `moto_server` from the PyPI package
 * moto[server] (pinned in scripts/setup-test-env.sh, installed into .venv). One server per test
 * file on a free loopback port; reset() between tests wipes every backend.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../helpers/cli.js'
import { freePort, waitFor } from './free-port.js'

export const MOTO_BIN = join(PROJECT_ROOT, '.venv', 'bin', 'moto_server')

/** moto's default account: every ARN it makes carries it. */
export const MOTO_ACCOUNT = '123456789012'

/** Dummy credentials and region for the SDK; moto accepts any signature until auth is enforced. */
export const MOTO_ENV = {
  AWS_ACCESS_KEY_ID: 'testing',
  AWS_SECRET_ACCESS_KEY: 'testing',
  AWS_SESSION_TOKEN: 'testing',
  AWS_REGION: 'us-east-1',
  AWS_DEFAULT_REGION: 'us-east-1',
  // Never read a developer's real AWS files or instance metadata from a test.
  AWS_CONFIG_FILE: '/nonexistent/nhi-recover-test-aws-config',
  AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/nhi-recover-test-aws-credentials',
  AWS_EC2_METADATA_DISABLED: 'true',
} as const

export interface MotoServer {
  /** http://127.0.0.1:PORT */
  endpoint: string
  /** Wipes every backend (POST /moto-api/reset). */
  reset(): Promise<void>
  /**
   * Makes moto enforce IAM authentication and policies from the next request on
   * (POST /moto-api/reset-auth); `afterRequests` requests are still let through first.
   */
  enforceAuth(afterRequests?: number): Promise<void>
  /** Records every AWS request moto receives from now on (moto's own recorder). */
  startRecording(): Promise<void>
  /** Stops recording and returns what was recorded, oldest first. */
  stopRecording(): Promise<RecordedRequest[]>
  stop(): Promise<void>
}

export interface RecordedRequest {
  method: string
  headers: Record<string, string>
  /** The request body as text (form-encoded for IAM and STS, JSON for Secrets Manager). */
  body: string
  /** The AWS operation: "secretsmanager.GetSecretValue", or "iam.CreateAccessKey" for query APIs. */
  operation: string
}

/** Sets the dummy credentials and region in this test process, so the SDK never finds real ones. */
export function useMotoEnv(): void {
  for (const [k, v] of Object.entries(MOTO_ENV)) process.env[k] = v
  for (const k of ['AWS_PROFILE', 'AWS_ROLE_ARN', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ENDPOINT_URL']) {
    delete process.env[k]
  }
}

export async function startMoto(opts: { env?: Record<string, string> } = {}): Promise<MotoServer> {
  if (!existsSync(MOTO_BIN)) {
    throw new Error(`${MOTO_BIN} is missing: run "bash scripts/setup-test-env.sh" (npm test does it first)`)
  }
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(opts.env ?? {})
    } catch (err) {
      lastError = err
    }
  }
  throw lastError
}

async function startOnce(extraEnv: Record<string, string>): Promise<MotoServer> {
  const port = await freePort()
  const endpoint = `http://127.0.0.1:${port}`
  // The recording holds request bodies (test values only); it lives in a temp dir removed at stop.
  const work = mkdtempSync(join(tmpdir(), 'nhi-moto-'))
  const recording = join(work, 'recording.jsonl')
  const log = join(work, 'moto.log')
  const logFd = openSync(log, 'a')
  const child: ChildProcess = spawn(MOTO_BIN, ['-H', '127.0.0.1', '-p', String(port)], {
    cwd: work,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: work,
      MOTO_RECORDER_FILEPATH: recording,
      ...extraEnv,
    },
    // moto logs one line per request on stderr. It goes to a file, not a pipe: a pipe needs
    // this process to keep reading it, and a caller blocked in spawnSync (a bench running the
    // CLI) would stop moto dead once ~64 KB of log lines filled the pipe.
    stdio: ['ignore', 'ignore', logFd],
  })
  closeSync(logFd)
  const stderrTail = () => {
    try {
      return readFileSync(log, 'utf8').slice(-4000)
    } catch {
      return ''
    }
  }
  let exited = false
  // A runner that exits without calling stop() must not leave moto behind.
  const reap = () => child.kill('SIGKILL')
  process.once('exit', reap)
  child.on('exit', () => {
    exited = true
    process.off('exit', reap)
  })

  const stop = async () => {
    if (!exited) {
      const gone = new Promise((r) => child.once('exit', r))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await gone
      clearTimeout(timer)
    }
    rmSync(work, { recursive: true, force: true })
  }
  try {
    await waitFor(
      `moto at ${endpoint}`,
      async () => {
        if (exited) throw new Error(`moto_server exited early: ${stderrTail()}`)
        const r = await fetch(`${endpoint}/moto-api/data.json`)
        await r.arrayBuffer()
        return r.status === 200
      },
      30_000,
    )
  } catch (err) {
    await stop()
    throw err instanceof Error ? new Error(`${err.message}\n${stderrTail()}`) : err
  }

  const post = async (path: string, body?: string) => {
    const r = await fetch(`${endpoint}${path}`, { method: 'POST', ...(body === undefined ? {} : { body }) })
    const text = await r.text()
    if (r.status !== 200) throw new Error(`POST ${path} answered ${r.status}: ${text}`)
    return text
  }
  return {
    endpoint,
    reset: async () => void (await post('/moto-api/reset')),
    enforceAuth: async (afterRequests = 0) =>
      void (await post('/moto-api/reset-auth', String(afterRequests))),
    startRecording: async () => {
      await post('/moto-api/recorder/reset-recording')
      await post('/moto-api/recorder/start-recording')
    },
    stopRecording: async () => {
      await post('/moto-api/recorder/stop-recording')
      const r = await fetch(`${endpoint}/moto-api/recorder/download-recording`)
      return parseRecording(await r.text())
    },
    stop,
  }
}

function parseRecording(text: string): RecordedRequest[] {
  return text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const e = JSON.parse(line) as {
        method: string
        headers: Record<string, string>
        body?: string | null
        body_encoded?: boolean
      }
      const body = e.body_encoded ? Buffer.from(e.body ?? '', 'base64').toString('utf8') : (e.body ?? '')
      const header = (name: string) =>
        Object.entries(e.headers).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1]
      const target = header('X-Amz-Target')
      const action = new URLSearchParams(body).get('Action')
      const service = /Credential=[^/]+\/\d+\/[^/]+\/([^/]+)\//.exec(header('Authorization') ?? '')?.[1]
      const operation = target ?? (action ? `${service ?? 'query'}.${action}` : `${e.method}`)
      return { method: e.method, headers: e.headers, body, operation }
    })
}
