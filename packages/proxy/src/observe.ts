/**
 * What the proxy records of each request once it is answered: a metrics sample and an access
 * log line, from a note the request handler fills in (the canonical path, the identity, how it
 * ended). The note holds no header, query or token, so neither can leak one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Identity } from '@ssokit/core'
import type { AccessLog } from './access-log.js'
import type { Outcome, ProxyMetrics } from './metrics.js'
import type { ForwardResult } from './upstream.js'
import type { UpgradeOutcome } from './websocket.js'

export interface RequestNote {
  /** The canonical path, once the target was found unambiguous. */
  path: string | undefined
  outcome: Outcome | undefined
  identity: Identity | undefined
}

/** The outcome of an answer the proxy gave itself, from its status. */
export function outcomeOfStatus(status: number): Outcome {
  if (status === 401 || status === 302 || status === 303) return 'unauthenticated'
  if (status === 403) return 'forbidden'
  if (status === 503) return 'unavailable'
  if (status === 502) return 'upstream_unavailable'
  if (status === 504) return 'upstream_timeout'
  return 'rejected'
}

const FORWARD_OUTCOMES: Readonly<Record<ForwardResult, Outcome>> = {
  forwarded: 'forwarded',
  unavailable: 'upstream_unavailable',
  timeout: 'upstream_timeout',
  aborted: 'upstream_unavailable',
  client_closed: 'client_closed',
}

export class Observer {
  readonly #metrics: ProxyMetrics
  readonly #log: AccessLog | undefined

  constructor(metrics: ProxyMetrics, log: AccessLog | undefined) {
    this.#metrics = metrics
    this.#log = log
  }

  /** Starts the record of a request; it is written when the response closes. */
  start(req: IncomingMessage, res: ServerResponse): RequestNote {
    const started = performance.now()
    const note: RequestNote = { path: undefined, outcome: undefined, identity: undefined }
    res.once('close', () => {
      const outcome =
        note.outcome ??
        (res.writableFinished ? outcomeOfStatus(res.statusCode) : ('client_closed' as const))
      this.#record(req.method, note, outcome, res.statusCode, performance.now() - started)
    })
    return note
  }

  /** Notes how a forwarded request ended, and counts an upstream failure. */
  forwarded(note: RequestNote, result: ForwardResult): void {
    note.outcome = FORWARD_OUTCOMES[result]
    if (result === 'unavailable' || result === 'timeout' || result === 'aborted') {
      this.#metrics.upstreamError(result)
    }
  }

  /** Counts a callback that did not sign anyone in (the session module counts successes). */
  callback(status: number): void {
    if (status >= 400) this.#metrics.login('failure')
  }

  upgrade(req: IncomingMessage, path: string | undefined, outcome: UpgradeOutcome, ms: number) {
    let recorded: Outcome
    if (outcome.kind === 'upgraded') recorded = 'upgraded'
    else if (outcome.kind === 'refused') recorded = outcomeOfStatus(outcome.status)
    else {
      this.#metrics.upstreamError(outcome.kind)
      recorded = outcome.kind === 'timeout' ? 'upstream_timeout' : 'upstream_unavailable'
    }
    const note = { path, outcome: recorded, identity: outcome.identity }
    this.#record(req.method, note, recorded, outcome.status, ms)
  }

  /** A request refused before Node parsed it (headers too large, malformed). */
  clientError(status: number): void {
    this.#record(undefined, undefined, 'rejected', status, 0)
  }

  #record(
    method: string | undefined,
    note: Readonly<RequestNote> | undefined,
    outcome: Outcome,
    status: number,
    ms: number,
  ): void {
    this.#metrics.request(outcome, status, ms / 1000)
    this.#log?.write({
      method,
      path: note?.path,
      status,
      durationMs: ms,
      outcome,
      identity: note?.identity,
    })
  }
}
