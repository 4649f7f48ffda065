import type { SsoErrorCode } from '../errors.js'

/**
 * What a verifier or a session authenticator reports to an `onEvent` hook. Events name key ids,
 * issuers, provider URLs, token ids and reasons; they never carry a token, a signature, a secret,
 * a cookie or an `Authorization` value.
 */
export interface SsoEvent {
  readonly type:
    | 'token_rejected'
    | 'jwks_refreshed'
    | 'jwks_refresh_failed'
    | 'jwks_key_skipped'
    | 'discovery_failed'
    | 'clock_skew'
    /** The provider answers again after a reported `discovery_failed` or `jwks_refresh_failed`. */
    | 'provider_recovered'
    /** A sign-in came back to the callback and did not complete. */
    | 'login_failed'
    /** The provider's token endpoint refused a code exchange or a refresh. */
    | 'token_request_failed'
    /** A back-channel logout token was refused. */
    | 'logout_token_rejected'
    /** The session store cannot answer. */
    | 'store_unavailable'
    /** The session store answers again after a reported `store_unavailable`. */
    | 'store_recovered'
    /** A setting that is ignored or suspicious (an unknown environment variable, ...). */
    | 'config_warning'
    /** A sign-in completed: a new session was stored (level `info`). */
    | 'login_completed'
    /** A session's tokens were refreshed at the provider (level `debug`). */
    | 'session_refreshed'
    /** A refresh of a session's tokens did not succeed; `reason` says why (level `debug`). */
    | 'session_refresh_failed'
  readonly level: 'debug' | 'info' | 'warn' | 'error'
  /** A sentence for a log line; it names configuration values and URLs, never credentials. */
  readonly message: string
  /** A short machine-readable reason (`signature`, `kid_unknown`, `invalid_client`, `http_404`, ...). */
  readonly reason?: string | undefined
  readonly code?: SsoErrorCode | undefined
  /** The `kid` header of the token or key, shortened and stripped of control characters. */
  readonly kid?: string | undefined
  readonly iss?: string | undefined
  readonly jti?: string | undefined
  /** Number of keys, for `jwks_refreshed`. */
  readonly count?: number | undefined
  /** The provider URL involved (discovery document, key set, token endpoint), without a query. */
  readonly url?: string | undefined
  /** The environment variable concerned, for `config_warning`. */
  readonly name?: string | undefined
  /** The claims concerned (comma-separated), for `role_claim_missing`. */
  readonly claim?: string | undefined
}

export type SsoEventHandler = (event: SsoEvent) => void

/** The events of a verifier: the same shape as every other event. */
export type VerifierEvent = SsoEvent
export type VerifierEventHandler = SsoEventHandler

/** How long a repeated warning stays quiet. */
const WARNING_WINDOW_MS = 60_000
/** How long the default log stays quiet about a cause it has printed. */
const LOG_WINDOW_MS = 5 * 60_000

/** Strips what could forge log lines and bounds what an attacker controls. */
export function loggable(value: unknown, max = 64): string | undefined {
  if (typeof value !== 'string') return undefined
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, '?')
  return clean.length > max ? `${clean.slice(0, max)}...` : clean
}

/** A URL for a log line: no credentials, no query or fragment (they may carry codes or tokens). */
export function loggableUrl(value: string | URL): string {
  try {
    const url = new URL(value)
    url.username = ''
    url.password = ''
    url.search = ''
    url.hash = ''
    return loggable(url.href, 200) ?? ''
  } catch {
    return 'an invalid URL'
  }
}

/** Which problem family a recovery event closes. */
const FAMILY: Partial<Record<SsoEvent['type'], string>> = {
  discovery_failed: 'provider',
  jwks_refresh_failed: 'provider',
  provider_recovered: 'provider',
  store_unavailable: 'store',
  store_recovered: 'store',
}

const defaultLoggers = new WeakSet<SsoEventHandler>()

/**
 * The hook used when none is given: warnings and errors go to stderr (`console.warn` and
 * `console.error`), each cause at most once every five minutes while it lasts, and a line when it
 * clears. Rejected tokens are not printed: their causes (keys, discovery, clock) are, once.
 */
export function stderrLogger(now: () => number = Date.now): SsoEventHandler {
  const quietUntil = new Map<string, number>()
  const printed = new Set<string>()
  const handler: SsoEventHandler = (event) => {
    const family = FAMILY[event.type]
    if (event.type === 'provider_recovered' || event.type === 'store_recovered') {
      for (const key of quietUntil.keys()) if (key.startsWith(`${family}:`)) quietUntil.delete(key)
      if (family !== undefined && printed.delete(family)) console.warn(logLine(event))
      return
    }
    if (event.type === 'token_rejected') return
    if (event.level !== 'warn' && event.level !== 'error') return
    // A failed sign-in's reason may come from whoever sent the browser back: one line per code.
    // Configuration warnings name one variable each: every one is printed.
    const cause =
      event.type === 'login_failed'
        ? event.code
        : event.type === 'config_warning'
          ? `${event.reason ?? ''}:${event.name ?? event.claim ?? ''}`
          : (event.reason ?? event.code ?? event.message)
    const key = `${family ?? event.type}:${event.type}:${cause}`
    const time = now()
    const until = quietUntil.get(key)
    if (until !== undefined && time < until) return
    if (quietUntil.size > 1000) quietUntil.clear()
    quietUntil.set(key, time + LOG_WINDOW_MS)
    if (family !== undefined) printed.add(family)
    if (event.level === 'error') console.error(logLine(event))
    else console.warn(logLine(event))
  }
  defaultLoggers.add(handler)
  return handler
}

/** The line the default hook prints for an event. */
export function logLine(event: SsoEvent): string {
  return `ssokit ${event.level}: ${event.message}${event.reason === undefined ? '' : ` [${event.reason}]`}`
}

export class EventSink {
  readonly #handler: SsoEventHandler
  readonly #custom: boolean
  readonly #now: () => number
  readonly #quietUntil = new Map<string, number>()
  /** Problems reported and not yet cleared, by key. */
  readonly #active = new Set<string>()

  constructor(handler: SsoEventHandler | undefined, now: () => number) {
    this.#handler = handler ?? stderrLogger(now)
    this.#custom = handler !== undefined && !defaultLoggers.has(handler)
    this.#now = now
  }

  /** Whether every event is wanted (a hook was given), not only warnings for the default log. */
  get enabled(): boolean {
    return this.#custom
  }

  /** The hook, to share with a verifier built alongside (so both report to the same place). */
  get handler(): SsoEventHandler {
    return this.#handler
  }

  emit(event: SsoEvent): void {
    try {
      this.#handler(Object.freeze(event))
    } catch {
      // A broken log hook must never change an authentication outcome.
    }
  }

  /** Emits at most once per window for the same `key`. */
  warnOnce(key: string, event: SsoEvent): void {
    const now = this.#now()
    const until = this.#quietUntil.get(key)
    if (until !== undefined && now < until) return
    if (this.#quietUntil.size > 1000) this.#quietUntil.clear()
    this.#quietUntil.set(key, now + WARNING_WINDOW_MS)
    this.emit(event)
  }

  /** A problem that lasts until `resolve(group)`: reported at once, then once per window. */
  problem(group: string, key: string, event: SsoEvent): void {
    const full = `${group}:${key}`
    if (this.#active.size > 100) this.#active.clear()
    this.#active.add(full)
    this.warnOnce(full, event)
  }

  /** Clears the problems of a group; `event` is emitted only when there was one. */
  resolve(group: string, event: SsoEvent): void {
    if (this.#active.size === 0) return
    let had = false
    for (const key of this.#active) {
      if (!key.startsWith(`${group}:`)) continue
      had = true
      this.#active.delete(key)
      this.#quietUntil.delete(key)
    }
    if (had) this.emit(event)
  }
}
