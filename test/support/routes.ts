/** A stand-in for the session module's routes, for adapter tests of route mounting. */
import { SsoError, type Authenticator, type RouteProvider } from '@ssokit/core'

/**
 * `auth` plus routes under `/auth`: `serve` answers them (or `undefined` to fall through), and
 * `/auth/fail` throws `login_failed` so the adapter's error path can be checked.
 */
export function withTestRoutes(
  auth: Authenticator,
  serve: (request: Request, pathname: string) => Promise<Response | undefined>,
): Authenticator & RouteProvider {
  return {
    realm: auth.realm,
    authenticate: (request) => auth.authenticate(request),
    reject: (error, request) => auth.reject(error, request),
    prefix: '/auth',
    async handle(request) {
      const { pathname } = new URL(request.url)
      if (pathname === '/auth/fail') throw new SsoError('login_failed', 'The login failed.')
      return serve(request, pathname)
    },
  }
}
