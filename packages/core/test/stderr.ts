/** Test helpers for what ssokit prints when no event hook is given. */
import { createServer } from 'node:net'

export interface CapturedStderr {
  /** Every line printed through `console.warn` and `console.error`, in order. */
  readonly lines: string[]
  restore(): void
}

/** Captures `console.warn` and `console.error` (ssokit's default log) until `restore()`. */
export function captureStderr(): CapturedStderr {
  const { warn, error } = console
  const lines: string[] = []
  const keep = (...args: unknown[]): void => {
    lines.push(args.map(String).join(' '))
  }
  console.warn = keep
  console.error = keep
  return {
    lines,
    restore() {
      console.warn = warn
      console.error = error
    },
  }
}

/** A loopback port nothing listens on (it was free a moment ago). */
export async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve()
    })
  })
  if (address === null || typeof address === 'string') throw new Error('no free port')
  return address.port
}
