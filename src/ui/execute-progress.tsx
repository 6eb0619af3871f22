/** Entry point of execute's live view. Imported lazily: ink and React load only in a terminal. */
import { render } from 'ink'
import type { ExecuteEvent } from '../engine/execute.js'
import { scrubSecrets } from '../secret.js'
import { ExecuteProgress } from './components/ExecuteProgress.js'
import { applyEvent, emptyProgress, progressView } from './execute-progress-state.js'

export interface ExecuteProgressHandle {
  /** Feed every ExecuteEvent here; the view redraws at most every `intervalMs`. */
  onEvent(e: ExecuteEvent): void
  /** Draws the final frame and leaves it on screen. */
  stop(): Promise<void>
}

/** Starts the live view on `stdout` (a TTY); every frame goes through the secret scrubber. */
export function renderExecuteProgress(
  opts: { stdout?: NodeJS.WriteStream; intervalMs?: number } = {},
): ExecuteProgressHandle {
  const state = emptyProgress()
  const draw = () => <ExecuteProgress view={progressView(state)} />
  const app = render(draw(), {
    stdout: scrubbed(opts.stdout ?? process.stdout),
    patchConsole: false,
    exitOnCtrlC: false,
  })
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  return {
    onEvent(e) {
      applyEvent(state, e)
      if (stopped || timer) return
      timer = setTimeout(() => {
        timer = undefined
        if (!stopped) app.rerender(draw())
      }, opts.intervalMs ?? 50)
    },
    async stop() {
      if (stopped) return
      stopped = true
      if (timer) clearTimeout(timer)
      app.rerender(draw())
      app.unmount()
      await app.waitUntilExit()
    },
  }
}

/** The stream with its write scrubbed of every secret value this process holds. */
function scrubbed(stream: NodeJS.WriteStream): NodeJS.WriteStream {
  return new Proxy(stream, {
    get(target, prop) {
      // A pseudo-terminal may report 0 columns; ink would then wrap every character.
      if (prop === 'columns') return target.columns || 80
      if (prop === 'write') {
        return (chunk: unknown, ...rest: unknown[]) =>
          (target.write as (...a: unknown[]) => boolean)(
            typeof chunk === 'string' ? scrubSecrets(chunk) : chunk,
            ...rest,
          )
      }
      const value = Reflect.get(target, prop, target) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
}
