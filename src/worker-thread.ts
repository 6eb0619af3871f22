/**
 * Starts a worker thread that runs the calling module itself: in the bundled CLI that is the
 * chunk holding the module; under the test runner the module is TypeScript, so the worker
 * registers tsx first. The module serves when it sees its own tag in workerData.
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'

export function spawnModuleWorker(moduleUrl: string, workerData: unknown): Worker {
  const url = new URL(moduleUrl)
  if (!url.pathname.endsWith('.ts')) return new Worker(url, { workerData })
  const tsxRoot = dirname(createRequire(moduleUrl).resolve('tsx/package.json'))
  const tsx = pathToFileURL(join(tsxRoot, 'dist', 'esm', 'api', 'index.mjs')).href
  const boot = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(url.href)}) })`
  return new Worker(boot, { eval: true, workerData })
}
