/**
 * A one-line spinner with the time left, for commands that wait on a person (a device login).
 * Drawn on stderr and only when stderr is a terminal: a pipe or a log file gets nothing.
 */
const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']

export interface Spinner {
  stop(): void
}

export interface SpinnerOptions {
  readonly stream?: NodeJS.WriteStream
  readonly clock?: () => number
}

function timeLeft(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000))
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`
}

/** Shows `text` with a spinner and the time until `until`; `stop` clears the line. */
export function startSpinner(text: string, until: Date, options: SpinnerOptions = {}): Spinner {
  const stream = options.stream ?? process.stderr
  if (!stream.isTTY) return { stop: () => undefined }
  const clock = options.clock ?? Date.now
  let frame = 0
  const draw = () => {
    const left = timeLeft(until.getTime() - clock())
    stream.write(`\r\x1b[2K${FRAMES[frame++ % FRAMES.length] ?? ''} ${text} (${left} left)`)
  }
  draw()
  const timer = setInterval(draw, 100)
  timer.unref()
  return {
    stop() {
      clearInterval(timer)
      stream.write('\r\x1b[2K')
    },
  }
}
