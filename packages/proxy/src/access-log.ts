/**
 * The access log: one JSON line per request through `pino`. A line is built from a fixed list
 * of fields (method, canonical path, status, duration, outcome, the user's subject), never from
 * the request itself: no query string (it can carry an authorization code or a token), no
 * header, no cookie, no token can reach it.
 */
import { pino, type DestinationStream, type Logger } from 'pino'
import type { Identity } from '@ssokit/core'
import type { Outcome } from './metrics.js'

/** Methods logged as they are; anything else is `OTHER`, so a client cannot write the log. */
const METHODS: ReadonlySet<string> = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'CONNECT',
  'TRACE',
])

export interface AccessEntry {
  readonly method: string | undefined
  /** The canonical path (no query), or undefined when the target was refused as ambiguous. */
  readonly path: string | undefined
  readonly status: number
  readonly durationMs: number
  readonly outcome: Outcome
  readonly identity: Identity | undefined
}

export class AccessLog {
  readonly #logger: Logger

  constructor(destination: DestinationStream) {
    this.#logger = pino(
      {
        base: null,
        messageKey: 'msg',
        timestamp: pino.stdTimeFunctions.isoTime,
        formatters: { level: (label) => ({ level: label }) },
      },
      destination,
    )
  }

  write(entry: AccessEntry): void {
    const method = (entry.method ?? '').toUpperCase()
    this.#logger.info(
      {
        method: METHODS.has(method) ? method : 'OTHER',
        path: entry.path === undefined ? null : entry.path.slice(0, 1024),
        status: entry.status,
        duration_ms: Math.round(entry.durationMs * 1000) / 1000,
        outcome: entry.outcome,
        user: entry.identity?.subject ?? null,
        via: entry.identity?.via ?? null,
      },
      'request',
    )
  }

  /** Writes what is buffered (at shutdown). */
  flush(): Promise<void> {
    return new Promise((resolve) => {
      this.#logger.flush(() => {
        resolve()
      })
    })
  }
}

/**
 * How log lines are written: asynchronously, so a slow terminal never holds a request, and
 * gathered up to 4 KiB or one second, so a busy proxy makes one write for many lines rather
 * than one each (a write per request was a visible share of the proxy's CPU time).
 */
export const DESTINATION_OPTIONS = Object.freeze({
  sync: false,
  minLength: 4096,
  periodicFlush: 1000,
})

/** stdout, with `DESTINATION_OPTIONS`. */
export function stdoutDestination(): DestinationStream {
  return pino.destination({ dest: 1, ...DESTINATION_OPTIONS })
}
