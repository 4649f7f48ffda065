/**
 * Requests to the application, on an undici `Pool` (keep-alive connections, streamed bodies
 * both ways, timeouts). A failure before the response starts is a 502 (unreachable) or 504
 * (too slow) page or JSON; a failure after it started cuts the response, so the client sees an
 * incomplete body rather than a silent truncation.
 */
import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import { Pool } from 'undici'
import { responseHeaders, type OutgoingHeaders } from './headers.js'
import { sendError } from './pages.js'

export interface UpstreamOptions {
  /** Milliseconds to wait for response headers, and between body chunks. */
  readonly timeoutMs: number
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

function errorCode(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : ''
}

/** Methods a proxy may send again when the connection closed before any answer (RFC 9110 9.2.2). */
const RESENDABLE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS'])
/** A connection the upstream closed under a request, before any byte of its answer. */
const CLOSED_CONNECTION: ReadonlySet<string> = new Set(['UND_ERR_SOCKET', 'ECONNRESET'])

const TIMEOUTS: ReadonlySet<string> = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
])

/** Why a WebSocket handshake with the upstream failed. */
export type UpgradeFailure = 'unavailable' | 'timeout' | 'upgrade_refused'

export type UpgradeResult =
  | {
      readonly ok: true
      readonly socket: Duplex
      readonly headers: Record<string, string | string[] | undefined>
    }
  | { readonly ok: false; readonly failure: UpgradeFailure }

/** How a forwarded request ended. */
export type ForwardResult = 'forwarded' | 'unavailable' | 'timeout' | 'aborted' | 'client_closed'

export class Upstream {
  readonly #pool: Pool
  readonly #timeoutMs: number

  constructor(origin: string, options: UpstreamOptions) {
    this.#timeoutMs = options.timeoutMs
    this.#pool = new Pool(origin, {
      connectTimeout: Math.min(options.timeoutMs, 10_000),
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    })
  }

  /**
   * Sends `req` (its body streamed) to `path` with `headers`, and streams the answer to `res`
   * (undici's `stream`: the body is written straight into `res`, with no readable in between).
   * `settle` learns how it ended before the client's response closes, so whoever watches the
   * response sees the result.
   */
  async forward(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    headers: OutgoingHeaders,
    settle: (result: ForwardResult) => void,
  ): Promise<void> {
    // undici takes an EventEmitter as the abort signal: lighter than an AbortController per request.
    const cancel = new EventEmitter()
    // Set from callbacks, so an object: the checks below see their current values.
    const state = { clientClosed: false, answered: false }
    const onClose = () => {
      if (res.writableFinished) return
      state.clientClosed = true
      cancel.emit('abort')
    }
    res.once('close', onClose)
    const method = req.method ?? 'GET'
    const body = hasBody(req) ? req : null
    const send = () =>
      this.#pool.stream(
        {
          path,
          method,
          headers,
          body,
          signal: cancel,
          headersTimeout: this.#timeoutMs,
          bodyTimeout: this.#timeoutMs,
        },
        ({ statusCode, headers: answer }) => {
          state.answered = true
          res.statusCode = statusCode
          for (const [name, value] of responseHeaders(answer)) res.setHeader(name, value)
          settle('forwarded')
          return res
        },
      )
    try {
      try {
        await send()
      } catch (error) {
        // An upstream that closes each connection after its answer without saying so (uWSGI's
        // http-socket) can close a kept-alive one just as the next request goes out. A request
        // without a body that may be sent twice is sent once more.
        const retry =
          !state.answered &&
          !state.clientClosed &&
          body === null &&
          RESENDABLE_METHODS.has(method) &&
          CLOSED_CONNECTION.has(errorCode(error))
        if (!retry) throw error
        await send()
      }
    } catch (error) {
      if (state.clientClosed || (!state.answered && res.destroyed)) {
        if (!state.answered) settle('client_closed')
        return
      }
      if (state.answered) {
        // The upstream stopped mid-body: the client sees an incomplete answer, not a silent cut.
        settle('aborted')
        res.destroy()
        return
      }
      const timedOut = TIMEOUTS.has(errorCode(error))
      settle(timedOut ? 'timeout' : 'unavailable')
      sendError(req, res, timedOut ? 504 : 502)
    } finally {
      res.off('close', onClose)
    }
  }

  /**
   * A WebSocket handshake with the upstream (undici sends `Connection: upgrade` and
   * `Upgrade: websocket` itself). An answer other than 101 is `upgrade_refused`.
   */
  async upgrade(
    path: string,
    headers: OutgoingHeaders,
    signal: AbortSignal,
  ): Promise<UpgradeResult> {
    try {
      const { socket, headers: answer } = await this.#pool.upgrade({
        path,
        method: 'GET',
        headers,
        protocol: 'websocket',
        signal,
      })
      return { ok: true, socket, headers: answer }
    } catch (error) {
      const code = errorCode(error)
      if (TIMEOUTS.has(code)) return { ok: false, failure: 'timeout' }
      // undici's "bad upgrade": the application answered, but not with 101.
      if (code === 'UND_ERR_SOCKET' && error instanceof Error && error.message === 'bad upgrade') {
        return { ok: false, failure: 'upgrade_refused' }
      }
      return { ok: false, failure: 'unavailable' }
    }
  }

  close(): Promise<void> {
    return this.#pool.close()
  }
}
