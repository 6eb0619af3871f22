/**
 * validate over many specs: the files are split between worker threads (one per core), each
 * checking its share and sending back only the per-file summaries. Small runs stay on the
 * calling thread, where starting workers would cost more than it saves.
 */
import { availableParallelism } from 'node:os'
import { isMainThread, parentPort, workerData } from 'node:worker_threads'
import { displayPath, loadRepoConfig } from '../config/repo.js'
import { spawnModuleWorker } from '../worker-thread.js'
import {
  checkSpecFile,
  collectSpecFiles,
  summarizeChecks,
  type SpecCheck,
  type ValidateOptions,
  type ValidateResult,
} from './validate.js'

const TAG = 'nhi-recover-validate/v1'
/** Below this many files the work is done inline. */
export const PARALLEL_THRESHOLD = 1000

interface Job {
  tag: typeof TAG
  cwd: string
  configPath?: string
  now: string
  files: Array<[abs: string, shown: string]>
}

if (!isMainThread && (workerData as Job | undefined)?.tag === TAG) {
  const job = workerData as Job
  const loaded = loadRepoConfig(job.cwd, job.configPath)
  const now = new Date(job.now)
  parentPort!.postMessage(job.files.map(([abs, shown]) => checkSpecFile(abs, shown, loaded, now)))
}

/** NHI_RECOVER_WORKERS overrides the worker count (0 or 1: inline); else one per core for big runs. */
export function defaultWorkers(files: number, env: NodeJS.ProcessEnv = process.env): number {
  const forced = env.NHI_RECOVER_WORKERS
  if (forced !== undefined && /^\d{1,2}$/.test(forced)) return Number(forced)
  return files >= PARALLEL_THRESHOLD ? availableParallelism() : 0
}

export async function validateSpecsParallel(
  opts: ValidateOptions & { workers?: number },
): Promise<ValidateResult> {
  const loaded = loadRepoConfig(opts.cwd, opts.configPath)
  const files = collectSpecFiles(opts.cwd, loaded.repoRoot, opts.paths)
  const workers = opts.workers ?? defaultWorkers(files.length)
  if (workers <= 1) {
    return summarizeChecks(
      opts.cwd,
      loaded,
      files.map((abs) => checkSpecFile(abs, displayPath(opts.cwd, abs), loaded, opts.now)),
    )
  }
  const size = Math.ceil(files.length / workers)
  const slices = Array.from({ length: workers }, (_, i) => files.slice(i * size, (i + 1) * size)).filter(
    (s) => s.length > 0,
  )
  const parts = await Promise.all(
    slices.map(
      (slice) =>
        new Promise<SpecCheck[]>((resolve, reject) => {
          const job: Job = {
            tag: TAG,
            cwd: opts.cwd,
            ...(opts.configPath ? { configPath: opts.configPath } : {}),
            now: opts.now.toISOString(),
            files: slice.map((abs) => [abs, displayPath(opts.cwd, abs)]),
          }
          const w = spawnModuleWorker(import.meta.url, job)
          w.once('message', (m: SpecCheck[]) => {
            resolve(m)
            void w.terminate()
          })
          w.once('error', reject)
          w.once('exit', (code) => {
            if (code !== 0) reject(new Error(`validate worker exited with code ${code}`))
          })
        }),
    ),
  )
  return summarizeChecks(opts.cwd, loaded, parts.flat())
}
