/**
 * What every step of the browser-session flow shares, built once per `createSessionAuth` from
 * the frozen configuration: the cookie keyring, the provider and the client registration.
 */
import type * as oauth from 'oauth4webapi'

import type { RoleSource } from '../verify/claims.js'
import type { EventSink } from '../verify/events.js'
import type { SessionBearerOptions } from './bearer.js'
import { ClientAuthentication } from './client-auth.js'
import { expireCookie, parseCookies, serializeCookie, type CookieJar } from './cookies.js'
import type { SessionFrame } from './frame.js'
import type { ResolvedSessionConfig } from './options.js'
import { Provider } from './provider.js'
import { safeReturnTo } from './return-to.js'
import { Keyring } from './seal.js'

export type SessionConfig = ResolvedSessionConfig<RoleSource, SessionBearerOptions>

/** The keyring purpose of the signed session-id cookie. */
export const SESSION_PURPOSE = 'ssokit:session'

export interface SessionContext {
  readonly config: SessionConfig
  readonly keyring: Keyring
  readonly provider: Provider
  readonly client: oauth.Client
  /** How token requests authenticate this client, chosen per provider metadata. */
  readonly clientAuth: ClientAuthentication
  /** Where failures and recoveries are reported: the `onEvent` hook, or stderr. */
  readonly events: EventSink
}

export function createContext(config: SessionConfig, events: EventSink): SessionContext {
  return Object.freeze({
    config,
    keyring: new Keyring(config.secrets),
    provider: new Provider({
      issuer: config.issuer,
      fetch: config.fetch,
      httpTimeoutMs: config.httpTimeoutMs,
      allowHttp: config.allowHttpIssuer,
      now: config.now,
      events,
    }),
    client: { client_id: config.clientId, id_token_signed_response_alg: 'RS256' },
    clientAuth: new ClientAuthentication(config.clientCredentials),
    events,
  })
}

export function nowS(config: SessionConfig): number {
  return Math.floor(config.now() / 1000)
}

/** The `resource` and `audience` parameters every token request carries (a new copy each time). */
export function tokenParams(config: SessionConfig): URLSearchParams {
  return new URLSearchParams(config.tokenParams.map(([name, value]) => [name, value]))
}

/** `<publicUrl><prefix>/login?returnTo=<path>`. */
export function loginUrl(
  config: Pick<SessionFrame, 'publicUrl' | 'prefix'>,
  returnTo: string,
): string {
  return `${config.publicUrl}${config.prefix}/login?returnTo=${encodeURIComponent(safeReturnTo(returnTo))}`
}

export function setCookie(
  config: Pick<SessionFrame, 'secure'>,
  name: string,
  value: string,
  maxAge: number | undefined,
  path: string,
): string {
  return serializeCookie(name, value, {
    path,
    secure: config.secure,
    ...(maxAge === undefined ? {} : { maxAge }),
  })
}

export function clearCookie(
  config: Pick<SessionFrame, 'secure'>,
  name: string,
  path: string,
): string {
  return expireCookie(name, { path, secure: config.secure })
}

export function requestCookies(request: Request): CookieJar {
  return parseCookies([request.headers.get('cookie') ?? ''])
}

/** The headers every redirect of the session routes starts from. */
export function routeHeaders(): Headers {
  return new Headers({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' })
}

/** The session id of a correctly signed session cookie. */
export function sessionIdFrom(context: SessionContext, cookies: CookieJar): string | undefined {
  const value = cookies.get(context.config.sessionCookie)?.[0]
  if (value === undefined) return undefined
  return context.keyring.verify(value, SESSION_PURPOSE)
}
