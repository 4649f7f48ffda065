import type { RequestLike, ResponseParts } from './http.js'
import type { Identity } from './identity.js'

/**
 * What every adapter calls. A bearer-only authenticator comes from `createBearerAuthenticator`;
 * one that also accepts browser sessions comes from the session module. Adapters never look
 * inside: they call `authenticate`, and on failure copy `reject(...)` to their response.
 */
export interface Authenticator {
  /** The realm named in `WWW-Authenticate` challenges. */
  readonly realm: string
  /** The identity behind a request, or a rejection with an `SsoError`. */
  authenticate(request: RequestLike): Promise<Identity>
  /**
   * The answer to a failed `authenticate` or role check: 400/401/403/503 with RFC 6750
   * `WWW-Authenticate` and a JSON body `{ "error": "<code>" }`, or, for a browser navigation
   * when sessions are on, a redirect to login. Anything that is not an `SsoError` becomes a
   * generic 500 that reveals nothing.
   */
  reject(error: unknown, request: RequestLike): ResponseParts
}

/**
 * An authenticator that also serves routes of its own (the session module's `/auth/login`,
 * `/auth/callback`, `/auth/logout`, `/auth/backchannel-logout`). Adapters mount `handle` for
 * every path under `prefix`; it resolves to `undefined` for paths it does not serve.
 */
export interface RouteProvider {
  /** The path prefix the routes live under, e.g. `/auth` (no trailing slash). */
  readonly prefix: string
  handle(request: Request): Promise<Response | undefined>
}

export function hasRoutes(value: Authenticator): value is Authenticator & RouteProvider {
  return 'handle' in value && 'prefix' in value
}
