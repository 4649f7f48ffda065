import {
  createBearerAuthenticator,
  loadConfig,
  SsoTypeError,
  type Authenticator,
} from '@ssokit/core'

/** What `createBearerAuthenticator` accepts: verifier options, or a verifier already built. */
export type BearerOptions = Parameters<typeof createBearerAuthenticator>[0]

let fromEnvironment: Authenticator | undefined

function isAuthenticator(value: object): value is Authenticator {
  return (
    typeof (value as Partial<Authenticator>).authenticate === 'function' &&
    typeof (value as Partial<Authenticator>).reject === 'function'
  )
}

/**
 * The authenticator an adapter uses: the one given, one built from bearer options, or (with
 * nothing given) one built once from `OIDC_*` environment variables and shared by every adapter
 * in the process. Runs when a middleware is constructed, so configuration mistakes throw at
 * start-up, never on a request.
 */
export function resolveAuthenticator(auth?: Authenticator | BearerOptions): Authenticator {
  if (auth === undefined) {
    fromEnvironment ??= createBearerAuthenticator(loadConfig(process.env))
    return fromEnvironment
  }
  if (typeof auth !== 'object' || (auth as unknown) === null) {
    throw new SsoTypeError(
      '"auth" must be an authenticator or bearer options',
      'ERR_INVALID_ARG_TYPE',
    )
  }
  return isAuthenticator(auth) ? auth : createBearerAuthenticator(auth)
}

/** Checks a list of required roles once, at construction, and returns a frozen copy. */
export function checkRoles(roles: unknown, name = 'roles'): readonly string[] {
  if (roles === undefined) return Object.freeze([])
  if (!Array.isArray(roles)) {
    throw new SsoTypeError(`"${name}" must be an array of role names`, 'ERR_INVALID_ARG_TYPE')
  }
  for (const role of roles as unknown[]) {
    if (typeof role !== 'string' || role === '') {
      throw new SsoTypeError(`"${name}" must contain non-empty strings`, 'ERR_INVALID_ARG_VALUE')
    }
  }
  return Object.freeze([...(roles as string[])])
}
