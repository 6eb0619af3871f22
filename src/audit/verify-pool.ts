/**
 * Runs checkEntry over batches of entries, in worker threads when there are enough entries to
 * pay for them. One Ed25519 verification costs far more than everything else per entry, so
 * spreading the checks over the cores is what makes 100,000 entries verify in seconds.
 */
import { availableParallelism } from 'node:os'
import { isMainThread, parentPort, workerData, type Worker } from 'node:worker_threads'
import { spawnModuleWorker } from '../worker-thread.js'
import { parseAllowedSigners } from '../crypto/allowed-signers.js'
import { fastRawVerify } from '../crypto/ed25519.js'
import { checkEntry, type EntryCheckContext, type EntrySummary } from './check-entry.js'

const WORKER_TAG = 'nhi-recover-audit-verify'

interface BatchMessage {
  id: number
  seqs: number[]
  offsets: number[]
  data: Uint8Array
}

interface WorkerInit {
  tag: typeof WORKER_TAG
  signersText: string
  signersFile: string
}

function contextFrom(signersText: string, signersFile: string): EntryCheckContext {
  return { signers: parseAllowedSigners(signersText, signersFile), rawVerify: fastRawVerify().verify }
}

function runBatch(msg: Omit<BatchMessage, 'id'>, ctx: EntryCheckContext): EntrySummary[] {
  const buf = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength)
  return msg.seqs.map((seq, i) => checkEntry(seq, buf.subarray(msg.offsets[i], msg.offsets[i + 1]), ctx))
}

// Inside a worker started by createEntryChecker: serve batches until the parent closes us.
if (!isMainThread && (workerData as WorkerInit | undefined)?.tag === WORKER_TAG) {
  const init = workerData as WorkerInit
  const ctx = contextFrom(init.signersText, init.signersFile)
  parentPort!.on('message', (msg: BatchMessage) => {
    parentPort!.postMessage({ id: msg.id, results: runBatch(msg, ctx) })
  })
  parentPort!.postMessage({ ready: true })
}

export interface EntryChecker {
  /** Worker threads in use; 0 means checks run on the calling thread. */
  readonly workers: number
  check(batch: readonly { seq: number; bytes: Buffer }[]): Promise<EntrySummary[]>
  close(): Promise<void>
}

/** How many workers suit `entries` entries on this machine (0 = check inline). */
export function defaultWorkers(entries: number): number {
  if (entries < 2000) return 0
  return Math.max(1, Math.min(4, availableParallelism()))
}

function pack(batch: readonly { seq: number; bytes: Buffer }[]): Omit<BatchMessage, 'id'> {
  let total = 0
  for (const b of batch) total += b.bytes.length
  // Its own ArrayBuffer, so it can be transferred without detaching Buffer's shared pool.
  const data = Buffer.allocUnsafeSlow(total)
  const offsets = [0]
  let pos = 0
  for (const b of batch) {
    b.bytes.copy(data, pos)
    pos += b.bytes.length
    offsets.push(pos)
  }
  return { seqs: batch.map((b) => b.seq), offsets, data }
}

/** A checker with `workers` threads (0: inline). Falls back to inline when threads cannot start. */
export async function createEntryChecker(opts: {
  signersText: string
  signersFile: string
  workers: number
}): Promise<EntryChecker> {
  const inline = (): EntryChecker => {
    const ctx = contextFrom(opts.signersText, opts.signersFile)
    return {
      workers: 0,
      check: async (batch) => runBatch(pack(batch), ctx),
      close: async () => {},
    }
  }
  if (opts.workers <= 0) return inline()

  const spawnWorker = (workerData: WorkerInit): Worker => spawnModuleWorker(import.meta.url, workerData)
  const init: WorkerInit = { tag: WORKER_TAG, signersText: opts.signersText, signersFile: opts.signersFile }
  const pool: { worker: Worker; busy: number; ready: Promise<void> }[] = []
  const waiting = new Map<number, { resolve: (r: EntrySummary[]) => void; reject: (e: unknown) => void }>()
  let failure: unknown
  try {
    for (let i = 0; i < opts.workers; i++) {
      const worker = spawnWorker(init)
      const slot = {
        worker,
        busy: 0,
        ready: new Promise<void>((res, rej) => {
          worker.once('error', rej)
          worker.once('exit', () => rej(new Error('verify worker exited')))
          worker.once('message', () => res())
        }),
      }
      slot.ready.catch(() => {})
      worker.on('message', (m: { id: number; results: EntrySummary[] }) => {
        if (m.results === undefined) return
        slot.busy--
        waiting.get(m.id)?.resolve(m.results)
        waiting.delete(m.id)
      })
      worker.on('error', (err) => {
        failure = err
        for (const w of waiting.values()) w.reject(err)
        waiting.clear()
      })
      pool.push(slot)
    }
    // Make sure the workers actually start (module loading can fail) before relying on them.
    await Promise.all(pool.map((s) => s.ready))
  } catch {
    await Promise.all(pool.map((s) => s.worker.terminate()))
    return inline()
  }
  let nextId = 0
  return {
    workers: pool.length,
    check(batch) {
      if (failure) return Promise.reject(failure)
      const slot = pool.reduce((a, b) => (b.busy < a.busy ? b : a))
      const id = nextId++
      const msg: BatchMessage = { id, ...pack(batch) }
      return new Promise((resolve, reject) => {
        waiting.set(id, { resolve, reject })
        slot.busy++
        slot.worker.postMessage(msg, [msg.data.buffer as ArrayBuffer])
      })
    },
    async close() {
      await Promise.all(pool.map((s) => s.worker.terminate()))
    },
  }
}
