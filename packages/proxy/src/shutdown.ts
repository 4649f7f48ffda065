/**
 * Graceful shutdown: stop accepting connections, let the requests in flight finish, close each
 * keep-alive connection as soon as it is idle, and after `timeoutMs` close whatever is left.
 */
import { once } from 'node:events'
import type { Server } from 'node:http'

/** How often connections that became idle during the drain are closed. */
const IDLE_SWEEP_MS = 50

/** Resolves once the server has closed; `true` when every request finished in time. */
export async function drain(server: Server, timeoutMs: number): Promise<boolean> {
  if (!server.listening) return true
  const closed = once(server, 'close')
  server.close()
  server.closeIdleConnections()
  // A keep-alive connection whose request finishes during the drain becomes idle: close it then.
  const sweep = setInterval(() => {
    server.closeIdleConnections()
  }, IDLE_SWEEP_MS)
  let timer: NodeJS.Timeout | undefined
  const expired = new Promise<false>((resolve) => {
    timer = setTimeout(() => {
      resolve(false)
    }, timeoutMs)
  })
  try {
    const finished = await Promise.race([closed.then(() => true as const), expired])
    if (!finished) {
      server.closeAllConnections()
      await closed
    }
    return finished
  } finally {
    clearInterval(sweep)
    clearTimeout(timer)
  }
}
