/**
 * Express middleware for ssokit: `requireAuth()` puts the caller's identity on `req.auth`,
 * `requireRole()` demands roles, `authRouter()` serves the session routes. Failures are answered
 * directly with the core's rejection (status, `WWW-Authenticate`, JSON body); the route handler
 * never runs.
 *
 * @module
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import {
  hasRoutes,
  requireRoles,
  SsoTypeError,
  type Authenticator,
  type Identity,
} from '@ssokit/core'
import {
  authRoutes,
  bodyAlreadyRead,
  checkRoles,
  isUnderPrefix,
  resolveAuthenticator,
  sendParts,
  toRequestLike,
  type BearerOptions,
  type RouteOptions,
} from '@ssokit/node'

declare module 'express-serve-static-core' {
  interface Request {
    /** Who made the request; set by `requireAuth()`, absent on unprotected routes. */
    auth?: Identity
  }
}

export interface RequireAuthOptions {
  /** An authenticator, or bearer options to build one; default: `OIDC_*` environment variables. */
  readonly auth?: Authenticator | BearerOptions
  /** Roles the identity must hold (403 otherwise). */
  readonly roles?: readonly string[]
}

// Which authenticator admitted a request, so requireRole() can answer with its rejection.
const admittedBy = new WeakMap<Request, Authenticator>()

/** Authenticates every request it sees; on success `req.auth` holds the identity. */
export function requireAuth(options: RequireAuthOptions = {}): RequestHandler {
  const roles = checkRoles(options.roles)
  const auth = resolveAuthenticator(options.auth)

  return async function requireAuth(req: Request, res: Response, next: NextFunction) {
    const request = toRequestLike(req, req.originalUrl)
    let identity: Identity
    try {
      identity = await auth.authenticate(request)
      if (roles.length > 0) requireRoles(identity, roles)
    } catch (error) {
      sendParts(res, auth.reject(error, request))
      return
    }
    req.auth = identity
    admittedBy.set(req, auth)
    // Outside the try: errors of later handlers belong to Express's error handling.
    next()
  }
}

/** Demands roles of an identity set by an earlier `requireAuth()`: 403 when one is missing. */
export function requireRole(...roles: string[]): RequestHandler {
  const required = checkRoles(roles)
  if (required.length === 0) {
    throw new SsoTypeError('requireRole() needs at least one role', 'ERR_MISSING_OPTION')
  }

  return function requireRole(req: Request, res: Response, next: NextFunction) {
    const auth = admittedBy.get(req)
    const identity = req.auth
    if (auth === undefined || identity === undefined) {
      next(
        new SsoTypeError(
          'requireRole() must come after requireAuth() on this route',
          'ERR_MISSING_OPTION',
        ),
      )
      return
    }
    try {
      requireRoles(identity, required)
    } catch (error) {
      sendParts(res, auth.reject(error, toRequestLike(req, req.originalUrl)))
      return
    }
    next()
  }
}

/**
 * Serves the routes of an authenticator that has them (the session module's login, callback,
 * logout, back-channel logout), under its prefix. Mount it before body parsers: it reads the
 * request body itself, as a stream, and stops at the authenticator's limit. A body that a
 * parser mounted earlier has already read is passed to `next` as an `SsoTypeError` (500 from
 * Express's error handler, with the fix in its message), never taken as an empty body.
 */
export function authRouter(auth: Authenticator, options: RouteOptions = {}): RequestHandler {
  if (!hasRoutes(auth)) {
    throw new SsoTypeError('"auth" serves no routes of its own', 'ERR_INVALID_ARG_VALUE')
  }
  const routes = authRoutes(auth, options)

  const { prefix } = auth
  return async function authRouter(req: Request, res: Response, next: NextFunction) {
    if (isUnderPrefix(req.originalUrl, prefix) && bodyAlreadyRead(req)) {
      next(
        new SsoTypeError(
          `a body parser read the body of a request to ${prefix} before authRouter() could: mount authRouter() before express.urlencoded(), express.json() and other body parsers`,
          'ERR_INVALID_ARG_VALUE',
        ),
      )
      return
    }
    let served: boolean
    try {
      served = await routes(req, res, req.originalUrl)
    } catch (error) {
      next(error)
      return
    }
    if (!served) next()
  }
}

export type { Identity } from '@ssokit/core'
