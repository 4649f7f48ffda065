import type { SsoErrorCode } from '../errors.js'

/**
 * What a verifier reports to an `onEvent` hook. Events name the key id, issuer, token id and a
 * reason; they never carry a token, a signature or an `Authorization` value.
 */
export interface VerifierEvent {
  readonly type:
    | 'token_rejected'
    | 'jwks_refreshed'
    | 'jwks_refresh_failed'
    | 'jwks_key_skipped'
    | 'discovery_failed'
    | 'clock_skew'
  readonly level: 'debug' | 'info' | 'warn' | 'error'
  /** A fixed sentence. */
  readonly message: string
  /** A short machine-readable reason (`signature`, `kid_unknown`, `weak_key`, `http_500`, ...). */
  readonly reason?: string | undefined
  readonly code?: SsoErrorCode | undefined
  /** The `kid` header of the token or key, shortened and stripped of control characters. */
  readonly kid?: string | undefined
  readonly iss?: string | undefined
  readonly jti?: string | undefined
  /** Number of keys, for `jwks_refreshed`. */
  readonly count?: number | undefined
}

export type VerifierEventHandler = (event: VerifierEvent) => void

/** How long a repeated warning stays quiet. */
const WARNING_WINDOW_MS = 60_000

/** Strips what could forge log lines and bounds what an attacker controls. */
export function loggable(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined
  // eslint-disable-next-line no-control-regex
  const clean = value.replace(/[\u0000-\u001f\u007f]/g, '?')
  return clean.length > 64 ? `${clean.slice(0, 64)}...` : clean
}

export class EventSink {
  readonly #handler: VerifierEventHandler | undefined
  readonly #now: () => number
  readonly #quietUntil = new Map<string, number>()

  constructor(handler: VerifierEventHandler | undefined, now: () => number) {
    this.#handler = handler
    this.#now = now
  }

  get enabled(): boolean {
    return this.#handler !== undefined
  }

  emit(event: VerifierEvent): void {
    if (this.#handler === undefined) return
    try {
      this.#handler(Object.freeze(event))
    } catch {
      // A broken log hook must never change an authentication outcome.
    }
  }

  /** Emits at most once per window for the same `key`. */
  warnOnce(key: string, event: VerifierEvent): void {
    if (this.#handler === undefined) return
    const now = this.#now()
    const until = this.#quietUntil.get(key)
    if (until !== undefined && now < until) return
    if (this.#quietUntil.size > 1000) this.#quietUntil.clear()
    this.#quietUntil.set(key, now + WARNING_WINDOW_MS)
    this.emit(event)
  }
}
