/**
 * Prometheus metrics of one proxy, on a registry of its own (never prom-client's global one, so
 * two proxies in one process, or an application's own metrics, never mix). Labels are closed
 * sets: an outcome, a status class, a failure kind; never a path, a user or a header.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { SsoEvent } from '@ssokit/core'

/** How a request ended, from the proxy's point of view. */
export type Outcome =
  /** Sent upstream and answered (whatever the application's status). */
  | 'forwarded'
  /** A WebSocket tunnel opened. */
  | 'upgraded'
  /** One of the proxy's own endpoints (sign-in, health, keys...). */
  | 'endpoint'
  /** No valid credentials: 401, or a redirect to sign in. */
  | 'unauthenticated'
  /** Signed in without a required role: 403. */
  | 'forbidden'
  /** The provider or the session store could not answer: 503. */
  | 'unavailable'
  /** Refused by the proxy before any check (ambiguous path, method, header size). */
  | 'rejected'
  | 'upstream_unavailable'
  | 'upstream_timeout'
  /** The client went away before the answer was complete. */
  | 'client_closed'

export type UpstreamErrorKind = 'unavailable' | 'timeout' | 'aborted' | 'upgrade_refused'

/** Seconds: from a cached session hit to a slow application. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

export class ProxyMetrics {
  readonly registry = new Registry()
  readonly #requests: Counter<'outcome' | 'status_class'>
  readonly #duration: Histogram<'outcome'>
  readonly #upstreamErrors: Counter<'kind'>
  readonly #logins: Counter<'result'>
  readonly #refreshes: Counter<'result'>
  readonly #websockets: Gauge

  constructor() {
    const registers = [this.registry]
    this.#requests = new Counter({
      name: 'ssokit_proxy_requests_total',
      help: 'Requests answered, by outcome and HTTP status class.',
      labelNames: ['outcome', 'status_class'],
      registers,
    })
    this.#duration = new Histogram({
      name: 'ssokit_proxy_request_duration_seconds',
      help: 'Time from the request to the end of the answer, by outcome.',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    })
    this.#upstreamErrors = new Counter({
      name: 'ssokit_proxy_upstream_errors_total',
      help: 'Requests the application did not answer: unreachable, too slow, cut mid-answer, or a refused WebSocket handshake.',
      labelNames: ['kind'],
      registers,
    })
    this.#logins = new Counter({
      name: 'ssokit_proxy_logins_total',
      help: 'Sign-ins that came back to the callback, by result.',
      labelNames: ['result'],
      registers,
    })
    this.#refreshes = new Counter({
      name: 'ssokit_proxy_session_refreshes_total',
      help: "Refreshes of sessions' tokens at the provider, by result.",
      labelNames: ['result'],
      registers,
    })
    this.#websockets = new Gauge({
      name: 'ssokit_proxy_websockets_open',
      help: 'WebSocket tunnels open now.',
      registers,
    })
    // Every label set exists from the start, so a rate over a quiet series is 0, not absent.
    for (const result of ['success', 'failure']) {
      this.#logins.inc({ result }, 0)
      this.#refreshes.inc({ result }, 0)
    }
    for (const kind of ['unavailable', 'timeout', 'aborted', 'upgrade_refused'] as const) {
      this.#upstreamErrors.inc({ kind }, 0)
    }
  }

  request(outcome: Outcome, status: number, seconds: number): void {
    this.#requests.inc({ outcome, status_class: `${Math.floor(status / 100)}xx` })
    this.#duration.observe({ outcome }, seconds)
  }

  upstreamError(kind: UpstreamErrorKind): void {
    this.#upstreamErrors.inc({ kind })
  }

  login(result: 'success' | 'failure'): void {
    this.#logins.inc({ result })
  }

  websockets(open: number): void {
    this.#websockets.set(open)
  }

  /**
   * Counts what the session module reports: completed sign-ins and refreshes. (A failed
   * sign-in is counted from the callback's answer.)
   */
  onEvent(event: SsoEvent): void {
    if (event.type === 'login_completed') this.#logins.inc({ result: 'success' })
    else if (event.type === 'session_refreshed') this.#refreshes.inc({ result: 'success' })
    else if (event.type === 'session_refresh_failed') this.#refreshes.inc({ result: 'failure' })
  }

  async render(): Promise<{ readonly contentType: string; readonly body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }
}

/** Whether `header` is `Bearer <token>`, compared in constant time (over hashes: any length). */
export function scrapeAllowed(header: string | undefined, token: string): boolean {
  const match = /^Bearer ([^\s]+)$/i.exec(header ?? '')
  if (match === null) return false
  const digest = (value: string) => createHash('sha256').update(value).digest()
  return timingSafeEqual(digest(match[1] ?? ''), digest(token))
}
