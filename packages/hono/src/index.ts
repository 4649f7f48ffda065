/**
 * Hono middleware for ssokit: `requireAuth()` publishes the caller's identity as `c.get('auth')`,
 * `requireRole()` demands roles, `authRoutes()` serves the session routes. A failure throws an
 * `HTTPException` that carries the core's rejection (status, `WWW-Authenticate`, JSON body) as
 * its response, with the `SsoError` as `cause`; the route handler never runs.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from 'hono'
import { HTTPException } from 'hono/http-exception'
import type { ContentfulStatusCode } from 'hono/utils/http-status'
import {
  createBearerAuthenticator,
  fromRequest,
  hasRoutes,
  loadConfig,
  requireRoles,
  SsoTypeError,
  toResponse,
  type Authenticator,
  type Identity,
  type RequestLike,
} from '@ssokit/core'

declare module 'hono' {
  interface ContextVariableMap {
    /** Who made the request; set by `requireAuth()`. */
    auth: Identity
  }
}

/** What `createBearerAuthenticator` accepts: verifier options, or a verifier already built. */
export type BearerOptions = Parameters<typeof createBearerAuthenticator>[0]

export interface RequireAuthOptions {
  /** An authenticator, or bearer options to build one; default: `OIDC_*` environment variables. */
  readonly auth?: Authenticator | BearerOptions
  /** Roles the identity must hold (403 otherwise). */
  readonly roles?: readonly string[]
}

let fromEnvironment: Authenticator | undefined

function resolveAuthenticator(auth: Authenticator | BearerOptions | undefined): Authenticator {
  if (auth === undefined) {
    // Hono may run where `process` does not exist; there, pass `auth` explicitly.
    fromEnvironment ??= createBearerAuthenticator(loadConfig(globalThis.process.env))
    return fromEnvironment
  }
  if (typeof auth !== 'object' || (auth as unknown) === null) {
    throw new SsoTypeError(
      '"auth" must be an authenticator or bearer options',
      'ERR_INVALID_ARG_TYPE',
    )
  }
  const candidate = auth as Partial<Authenticator>
  return typeof candidate.authenticate === 'function' && typeof candidate.reject === 'function'
    ? (auth as Authenticator)
    : createBearerAuthenticator(auth as BearerOptions)
}

function checkRoles(roles: unknown): readonly string[] {
  if (roles === undefined) return Object.freeze([])
  if (
    !Array.isArray(roles) ||
    !(roles as unknown[]).every((r) => typeof r === 'string' && r !== '')
  ) {
    throw new SsoTypeError(
      '"roles" must be an array of non-empty role names',
      'ERR_INVALID_ARG_TYPE',
    )
  }
  return Object.freeze([...(roles as string[])])
}

function rejection(auth: Authenticator, error: unknown, request: RequestLike): HTTPException {
  const res = toResponse(auth.reject(error, request))
  return new HTTPException(res.status as ContentfulStatusCode, { res, cause: error })
}

// Which authenticator admitted a request, so requireRole() can answer with its rejection.
const admittedBy = new WeakMap<Context, Authenticator>()

async function authenticate(
  c: Context,
  auth: Authenticator,
  roles: readonly string[],
): Promise<void> {
  const request = fromRequest(c.req.raw)
  let identity: Identity
  try {
    identity = await auth.authenticate(request)
    if (roles.length > 0) requireRoles(identity, roles)
  } catch (error) {
    throw rejection(auth, error, request)
  }
  c.set('auth', identity)
  admittedBy.set(c, auth)
}

/** Authenticates every request it sees; on success `c.get('auth')` holds the identity. */
export function requireAuth(options: RequireAuthOptions = {}): MiddlewareHandler {
  const roles = checkRoles(options.roles)
  const auth = resolveAuthenticator(options.auth)
  return async function requireAuth(c, next) {
    await authenticate(c, auth, roles)
    await next()
  }
}

/** Demands roles of an identity set by an earlier `requireAuth()`: 403 when one is missing. */
export function requireRole(...roles: string[]): MiddlewareHandler {
  const required = checkRoles(roles)
  if (required.length === 0) {
    throw new SsoTypeError('requireRole() needs at least one role', 'ERR_MISSING_OPTION')
  }
  return async function requireRole(c, next) {
    const auth = admittedBy.get(c)
    if (auth === undefined) {
      throw new SsoTypeError(
        'requireRole() must come after requireAuth() on this route',
        'ERR_MISSING_OPTION',
      )
    }
    try {
      requireRoles(c.get('auth'), required)
    } catch (error) {
      throw rejection(auth, error, fromRequest(c.req.raw))
    }
    await next()
  }
}

/**
 * Serves the routes of an authenticator that has them (the session module's login, callback,
 * logout, back-channel logout): `app.use(authRoutes(auth))`.
 */
export function authRoutes(auth: Authenticator): MiddlewareHandler {
  if (!hasRoutes(auth)) {
    throw new SsoTypeError('"auth" serves no routes of its own', 'ERR_INVALID_ARG_VALUE')
  }
  const { prefix } = auth
  return async function authRoutes(c, next) {
    const { path } = c.req
    if (path === prefix || path.startsWith(`${prefix}/`)) {
      let response: Response | undefined
      try {
        response = await auth.handle(c.req.raw)
      } catch (error) {
        throw rejection(auth, error, fromRequest(c.req.raw))
      }
      if (response !== undefined) return response
    }
    await next()
    return undefined
  }
}

export type { Identity } from '@ssokit/core'
