/**
 * A throwaway PostgreSQL cluster for integration tests: Debian's postgresql package (installed by
 * scripts/setup-test-env.sh), initdb into a temp dir, listening on a free loopback port only.
 * PostgreSQL refuses to run as root, so as root the cluster runs as the `postgres` system user.
 * Password logins over TCP use scram-sha-256, so a wrong password really fails.
 */
import { execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, waitFor } from './free-port.js'

export interface PostgresServer {
  host: string
  port: number
  /** The superuser nhi-recover tests give to the database secrets engine. */
  user: string
  password: string
  /** Runs SQL as the superuser through psql; returns stdout. */
  sql(query: string): Promise<string>
  stop(): Promise<void>
}

/** The bin directory of the newest installed PostgreSQL, or undefined. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql'
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
      .sort((a, b) => Number(b) - Number(a))
    if (versions[0]) return join(root, versions[0], 'bin')
  }
  try {
    return execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim() || undefined
  } catch {
    return undefined
  }
}

function runAs(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
  return { uid, gid }
}

function run(
  bin: string,
  args: string[],
  opts: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv },
): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '', LANG: 'C.UTF-8', ...opts.env },
      ...(opts.uid !== undefined ? { uid: opts.uid, gid: opts.gid } : {}),
    })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => (err += d.toString()))
    p.on('error', reject)
    p.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${bin} exited ${code}: ${err.slice(-2000)}`)),
    )
  })
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir()
  if (!bin)
    throw new Error(
      'PostgreSQL is not installed: run "bash scripts/setup-test-env.sh" (npm test does it first)',
    )
  const owner = runAs()
  const base = mkdtempSync(join(tmpdir(), 'nhi-pg-'))
  const data = join(base, 'data')
  const pwfile = join(base, 'pw')
  const user = 'nhi_admin'
  const password = `pg-${randomBytes(12).toString('hex')}`
  writeFileSync(pwfile, password)
  chmodSync(base, 0o700)
  if (owner) {
    chownSync(base, owner.uid, owner.gid)
    chownSync(pwfile, owner.uid, owner.gid)
  }
  const as = owner ?? {}
  await run(
    join(bin, 'initdb'),
    [
      '-D',
      data,
      '-U',
      user,
      `--pwfile=${pwfile}`,
      '--auth-host=scram-sha-256',
      '--auth-local=trust',
      '-E',
      'UTF8',
      '--no-sync',
    ],
    as,
  )
  rmSync(pwfile)

  const port = await freePort()
  const options = `-p ${port} -k ${base} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`
  await run(
    join(bin, 'pg_ctl'),
    ['-D', data, '-o', options, '-l', join(base, 'log'), '-w', '-t', '30', 'start'],
    as,
  )

  const sql = (query: string) =>
    run(
      join(bin, 'psql'),
      [
        '-h',
        base,
        '-p',
        String(port),
        '-U',
        user,
        '-d',
        'postgres',
        '-v',
        'ON_ERROR_STOP=1',
        '-At',
        '-c',
        query,
      ],
      as,
    )
  await waitFor(`PostgreSQL on port ${port}`, async () => (await sql('SELECT 1')).trim() === '1', 20_000)

  let stopped = false
  return {
    host: '127.0.0.1',
    port,
    user,
    password,
    sql,
    async stop() {
      if (stopped) return
      stopped = true
      await run(join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop'], as).catch(() => undefined)
      rmSync(base, { recursive: true, force: true })
    },
  }
}
