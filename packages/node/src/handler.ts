import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  hasRoutes,
  requireRoles,
  SsoTypeError,
  type Authenticator,
  type Identity,
  type RouteProvider,
} from '@ssokit/core'
import { sendParts, sendWebResponse, toRequestLike, toWebRequest } from './bridge.js'
import type { WebRequestOptions } from './bridge.js'
import { checkRoles, resolveAuthenticator, type BearerOptions } from './options.js'

export type AuthenticatedHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  identity: Identity,
) => void | Promise<void>

export interface WithAuthOptions extends RouteOptions {
  /** An authenticator, or bearer options to build one; default: `OIDC_*` environment variables. */
  readonly auth?: Authenticator | BearerOptions
  /** Roles the identity must hold (403 otherwise). */
  readonly roles?: readonly string[]
}

/**
 * Answers a request if it is for one of the authenticator's own routes; `false` otherwise.
 * `url` replaces `req.url` where a framework rewrites it (Express's `originalUrl`).
 */
export type AuthRoutes = (
  req: IncomingMessage,
  res: ServerResponse,
  url?: string,
) => Promise<boolean>

export type RouteOptions = Pick<WebRequestOptions, 'trustProxy' | 'publicUrl'>

/** True when `path` (a request target, query included) lies under `prefix`. */
export function isUnderPrefix(path: string, prefix: string): boolean {
  if (!path.startsWith(prefix)) return false
  const next = path.charCodeAt(prefix.length)
  // End of string, "/", "?" or "#": "/authx" is not under "/auth".
  return Number.isNaN(next) || next === 47 || next === 63 || next === 35
}

/**
 * Serves the routes of an authenticator that has them (the session module's login, callback,
 * logout): requests under its prefix become web `Request`s, with their bodies streamed.
 */
export function authRoutes(
  auth: Authenticator & RouteProvider,
  options: RouteOptions = {},
): AuthRoutes {
  if (!hasRoutes(auth)) {
    throw new SsoTypeError('"auth" serves no routes of its own', 'ERR_INVALID_ARG_VALUE')
  }
  const { prefix } = auth
  const webOptions: RouteOptions = {
    ...(options.trustProxy === undefined ? {} : { trustProxy: options.trustProxy }),
    ...(options.publicUrl === undefined ? {} : { publicUrl: new URL(options.publicUrl) }),
  }
  return async function ssokitAuthRoutes(req, res, url = req.url ?? '/') {
    if (!isUnderPrefix(url, prefix)) return false
    let response: Response | undefined
    try {
      response = await auth.handle(toWebRequest(req, { ...webOptions, url }))
    } catch (error) {
      sendParts(res, auth.reject(error, toRequestLike(req, url)))
      return true
    }
    if (response === undefined) return false
    await sendWebResponse(res, response)
    return true
  }
}

/**
 * Protects a `node:http` request handler: it runs only for an authenticated request (holding
 * `roles`, when given) and receives the identity; every other request is answered with the
 * authenticator's rejection (400/401/403/503, or a login redirect for browser sessions). When the
 * authenticator serves routes of its own, requests under its prefix go to them first.
 */
export function withAuth(
  handler: AuthenticatedHandler,
  options: WithAuthOptions = {},
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  if (typeof handler !== 'function') {
    throw new SsoTypeError('"handler" must be a function', 'ERR_INVALID_ARG_TYPE')
  }
  const roles = checkRoles(options.roles)
  const auth = resolveAuthenticator(options.auth)
  const routes = hasRoutes(auth) ? authRoutes(auth, options) : undefined
  const prefix = hasRoutes(auth) ? auth.prefix : undefined

  return async function ssokitWithAuth(req, res) {
    // The prefix test first: an ordinary request skips the async route step altogether.
    if (
      routes !== undefined &&
      prefix !== undefined &&
      isUnderPrefix(req.url ?? '/', prefix) &&
      (await routes(req, res))
    ) {
      return
    }
    const request = toRequestLike(req)
    let identity: Identity
    try {
      identity = await auth.authenticate(request)
      if (roles.length > 0) requireRoles(identity, roles)
    } catch (error) {
      sendParts(res, auth.reject(error, request))
      return
    }
    // Outside the try: a failure of the handler is the application's, not an auth failure.
    // A synchronous handler is not awaited, which saves a turn of the microtask queue.
    const result = handler(req, res, identity)
    if (result !== undefined) await result
  }
}
