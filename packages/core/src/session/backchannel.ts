/**
 * OpenID Connect Back-Channel Logout: the provider POSTs a signed `logout_token` naming a `sid`
 * or a `sub`, and every matching session ends in the shared store (so on every replica).
 */
import {
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  jwtVerify,
  type JWTPayload,
} from 'jose'

import { SsoError } from '../errors.js'
import type { Provider } from './provider.js'
import type { SessionStore } from './store.js'

export const BACKCHANNEL_EVENT = 'http://schemas.openid.net/event/backchannel-logout'
/** A logout token older than this is refused; its `jti` is remembered at least this long. */
const MAX_TOKEN_AGE_S = 600
const MAX_REMEMBERED_JTI = 10_000
/**
 * `logout+jwt` (Back-Channel Logout 1.0 §2.4) or plain `JWT`, which many providers send: the
 * claims (`events` required, `nonce` forbidden) are what tell a logout token from an ID token.
 */
const LOGOUT_TOKEN_TYPES: ReadonlySet<string> = new Set([
  'logout+jwt',
  'application/logout+jwt',
  'jwt',
  'application/jwt',
])

export interface LogoutTarget {
  readonly sid: string | undefined
  readonly sub: string | undefined
  /** When the provider issued the token, in seconds since the epoch (its clock). */
  readonly iat: number
}

function invalid(message: string, claim?: string, cause?: unknown): SsoError {
  return new SsoError('logout_token_invalid', message, {
    ...(claim === undefined ? {} : { claim }),
    ...(cause === undefined ? {} : { cause }),
  })
}

export class LogoutTokenVerifier {
  readonly #provider: Provider
  readonly #issuer: string
  readonly #clientId: string
  readonly #fetch: typeof fetch | undefined
  readonly #timeoutMs: number
  readonly #store: SessionStore
  readonly #now: () => number
  #jwks: { uri: string; set: ReturnType<typeof createRemoteJWKSet> } | undefined
  readonly #seen = new Map<string, number>()

  constructor(
    provider: Provider,
    settings: {
      issuer: string
      clientId: string
      fetch: typeof fetch | undefined
      timeoutMs: number
      store: SessionStore
      /** The clock, in milliseconds since the epoch. */
      now: () => number
    },
  ) {
    this.#provider = provider
    this.#issuer = settings.issuer
    this.#clientId = settings.clientId
    this.#fetch = settings.fetch
    this.#timeoutMs = settings.timeoutMs
    this.#store = settings.store
    this.#now = settings.now
  }

  async #keys(): Promise<ReturnType<typeof createRemoteJWKSet>> {
    const metadata = await this.#provider.metadata()
    const uri = metadata.jwks_uri
    if (uri === undefined) throw invalid('The provider publishes no keys.')
    if (this.#jwks?.uri !== uri) {
      const custom = this.#fetch
      this.#jwks = {
        uri,
        set: createRemoteJWKSet(new URL(uri), {
          timeoutDuration: this.#timeoutMs,
          ...(custom
            ? { [customFetch]: (url: string, init: RequestInit) => custom(url, init) }
            : {}),
        }),
      }
    }
    return this.#jwks.set
  }

  /** Verifies a logout token and records its `jti`; rejects with `logout_token_invalid`. */
  async verify(token: string): Promise<LogoutTarget> {
    let header
    try {
      header = decodeProtectedHeader(token)
    } catch (error) {
      throw invalid('The logout token is malformed.', undefined, error)
    }
    if (header.typ !== undefined && !LOGOUT_TOKEN_TYPES.has(header.typ.toLowerCase())) {
      throw invalid('The logout token has the wrong type.', 'typ')
    }
    const keys = await this.#keys()
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, keys, {
        issuer: this.#issuer,
        audience: this.#clientId,
        algorithms: ['RS256'],
        requiredClaims: ['iat', 'jti', 'events'],
        maxTokenAge: MAX_TOKEN_AGE_S,
        clockTolerance: 30,
      }))
    } catch (error) {
      if (error instanceof SsoError) throw error
      const code = (error as { code?: unknown }).code
      if (code === 'ERR_JWKS_TIMEOUT' || (error instanceof TypeError && code === undefined)) {
        throw new SsoError('provider_unavailable', 'The provider keys cannot be fetched.', {
          cause: error,
          retryAfter: 10,
        })
      }
      throw invalid('The logout token failed verification.', undefined, error)
    }
    const events = payload.events
    if (
      typeof events !== 'object' ||
      events === null ||
      Array.isArray(events) ||
      !Object.hasOwn(events, BACKCHANNEL_EVENT) ||
      typeof (events as Record<string, unknown>)[BACKCHANNEL_EVENT] !== 'object'
    ) {
      throw invalid('The logout token lacks the back-channel logout event.', 'events')
    }
    if ('nonce' in payload) throw invalid('A logout token must not carry a nonce.', 'nonce')
    const sid = typeof payload.sid === 'string' && payload.sid !== '' ? payload.sid : undefined
    const sub = typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : undefined
    if (sid === undefined && sub === undefined)
      throw invalid('A logout token needs a sid or a sub.', 'sid')
    const jti = payload.jti
    if (typeof jti !== 'string' || jti === '') throw invalid('The logout token has no jti.', 'jti')
    const iat = payload.iat
    if (typeof iat !== 'number' || !Number.isFinite(iat))
      throw invalid('The logout token has no iat.', 'iat')
    await this.#remember(jti)
    return { sid, sub, iat }
  }

  /** Refuses a `jti` seen before, here or (through a store lock) on another replica. */
  async #remember(jti: string): Promise<void> {
    const now = this.#now()
    const seenUntil = this.#seen.get(jti)
    if (seenUntil !== undefined && seenUntil > now)
      throw invalid('The logout token was replayed.', 'jti')
    const held = await this.#store.lock(`bcl-jti:${this.#issuer}:${jti}`, MAX_TOKEN_AGE_S * 2)
    if (held === undefined) throw invalid('The logout token was replayed.', 'jti')
    if (this.#seen.size >= MAX_REMEMBERED_JTI) {
      for (const [key, until] of this.#seen) {
        if (until <= now || this.#seen.size >= MAX_REMEMBERED_JTI) this.#seen.delete(key)
        if (this.#seen.size < MAX_REMEMBERED_JTI / 2) break
      }
    }
    this.#seen.set(jti, now + MAX_TOKEN_AGE_S * 2 * 1000)
  }
}
