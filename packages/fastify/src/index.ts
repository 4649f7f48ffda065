/**
 * Fastify plugin for ssokit. Registering it decorates `request.auth` and serves the session
 * routes when the authenticator has them; `requireAuth()` and `requireRole()` are hooks for
 * routes (`onRequest` or `preHandler`), and a route can also ask with
 * `config: { auth: true, roles: [...] }`. Failures are answered with the core's rejection
 * (status, `WWW-Authenticate`, JSON body) and the route handler never runs.
 *
 * @module
 */
import type {
  FastifyInstance,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  onRequestAsyncHookHandler,
  onRequestHookHandler,
} from 'fastify'
import fp from 'fastify-plugin'
import {
  hasRoutes,
  requireRoles,
  SsoTypeError,
  type Authenticator,
  type Identity,
  type ResponseParts,
  type RouteProvider,
} from '@ssokit/core'
import {
  checkRoles,
  resolveAuthenticator,
  toRequestLike,
  toWebRequest,
  type BearerOptions,
} from '@ssokit/node'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who made the request; `null` until an ssokit hook has authenticated it. */
    auth: Identity | null
  }
  interface FastifyContextConfig {
    /** Authenticate every request to this route (implied by `roles`). */
    auth?: boolean
    /** Roles the identity must hold (403 otherwise). */
    roles?: readonly string[]
  }
}

export interface SsokitFastifyOptions {
  /** An authenticator, or bearer options to build one; default: `OIDC_*` environment variables. */
  readonly auth?: Authenticator | BearerOptions
  /**
   * The public origin of the app for session routes (`https://app.example.org`). Without it the
   * origin comes from `request.protocol` and `request.host`, which honour Fastify's `trustProxy`.
   */
  readonly publicUrl?: string | URL
}

const kAuthenticator = Symbol('ssokit.authenticator')

function authenticatorOf(instance: FastifyInstance): Authenticator {
  // Decorators are inherited by child contexts, so this finds the plugin registered above.
  const value: unknown = Reflect.get(instance, kAuthenticator)
  if (value === undefined) {
    throw new SsoTypeError('register @ssokit/fastify before using its hooks', 'ERR_MISSING_OPTION')
  }
  return value as Authenticator
}

function send(reply: FastifyReply, parts: ResponseParts): FastifyReply {
  reply.code(parts.status)
  for (const [name, value] of Object.entries(parts.headers)) {
    reply.header(name, typeof value === 'string' ? value : [...value])
  }
  return reply.send(parts.body)
}

/**
 * Settles with `undefined` once `request.auth` is set, or with the reply once a rejection is
 * sent. One `then` and no `async` layers: this runs on every protected request.
 */
function authenticate(
  request: FastifyRequest,
  reply: FastifyReply,
  auth: Authenticator,
  roles: readonly string[],
): Promise<FastifyReply | undefined> {
  const req = toRequestLike(request.raw)
  let pending: Promise<Identity>
  try {
    pending = auth.authenticate(req)
  } catch (error) {
    // An authenticator that throws instead of rejecting is answered the same way.
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    pending = Promise.reject(error)
  }
  return pending.then(
    (identity) => {
      try {
        if (roles.length > 0) requireRoles(identity, roles)
      } catch (error) {
        return send(reply, auth.reject(error, req))
      }
      request.auth = identity
      return undefined
    },
    (error: unknown) => send(reply, auth.reject(error, req)),
  )
}

/** A route hook that authenticates the request (and checks `roles`, when given). */
export function requireAuth(
  options: { readonly roles?: readonly string[] } = {},
): onRequestAsyncHookHandler {
  const roles = checkRoles(options.roles)
  return function requireAuth(request, reply) {
    let auth: Authenticator
    try {
      auth = authenticatorOf(request.server)
    } catch (error) {
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(error)
    }
    return authenticate(request, reply, auth, roles)
  }
}

/**
 * A route hook demanding roles: 403 when one is missing. It authenticates the request itself
 * when no earlier hook has.
 */
export function requireRole(...roles: string[]): onRequestAsyncHookHandler {
  const required = checkRoles(roles)
  if (required.length === 0) {
    throw new SsoTypeError('requireRole() needs at least one role', 'ERR_MISSING_OPTION')
  }
  return async function requireRole(request, reply) {
    const auth = authenticatorOf(request.server)
    const identity = request.auth
    if (identity === null) return authenticate(request, reply, auth, required)
    try {
      requireRoles(identity, required)
    } catch (error) {
      return send(reply, auth.reject(error, toRequestLike(request.raw)))
    }
    return undefined
  }
}

/**
 * Runs before every route of the app, so it is a callback hook: a route that asks for nothing
 * goes on at once, without a promise.
 */
function routeGuard(auth: Authenticator): onRequestHookHandler {
  return function ssokitRouteGuard(request, reply, done) {
    const { config } = request.routeOptions
    if (config.auth !== true && config.roles === undefined) {
      done()
      return
    }
    // After a rejection has been sent, `done` is not called: the route must not run.
    authenticate(request, reply, auth, config.roles ?? []).then(() => {
      if (!reply.sent) done()
    }, done)
  }
}

function sessionRoutes(auth: Authenticator & RouteProvider, publicUrl: URL | undefined) {
  return function ssokitSessionRoutes(
    child: FastifyInstance,
    _options: unknown,
    registered: () => void,
  ) {
    // The session routes read their bodies as streams; Fastify must leave them unread.
    child.removeAllContentTypeParsers()
    child.addContentTypeParser('*', function leaveUnread(_request, _payload, done) {
      done(null)
    })
    const handler = async function ssokitSessionRoute(
      request: FastifyRequest,
      reply: FastifyReply,
    ) {
      const origin = publicUrl ?? `${request.protocol}://${request.host}`
      let response: Response | undefined
      try {
        response = await auth.handle(toWebRequest(request.raw, { publicUrl: origin }))
      } catch (error) {
        return send(reply, auth.reject(error, toRequestLike(request.raw)))
      }
      if (response === undefined) {
        reply.callNotFound()
        return reply
      }
      return reply.send(response)
    }
    child.all(auth.prefix, handler)
    child.all(`${auth.prefix}/*`, handler)
    registered()
  }
}

const plugin: FastifyPluginAsync<SsokitFastifyOptions> = async function ssokit(fastify, options) {
  if (fastify.hasDecorator(kAuthenticator)) {
    throw new SsoTypeError(
      '@ssokit/fastify is already registered in this context',
      'ERR_INVALID_ARG_VALUE',
    )
  }
  const auth = resolveAuthenticator(options.auth)
  const publicUrl = options.publicUrl === undefined ? undefined : new URL(options.publicUrl)
  fastify.decorate(kAuthenticator, auth)
  fastify.decorateRequest('auth', null)
  fastify.addHook('onRoute', function checkRouteConfig(route) {
    const roles = route.config?.roles
    if (roles !== undefined)
      checkRoles(roles, `config.roles of ${route.method.toString()} ${route.url}`)
  })
  fastify.addHook('onRequest', routeGuard(auth))
  if (hasRoutes(auth)) await fastify.register(sessionRoutes(auth, publicUrl))
}

/** The ssokit plugin: `await app.register(ssokit, { auth })`. */
export const ssokit = fp(plugin, { name: '@ssokit/fastify', fastify: '5.x' })
export default ssokit

export type { Identity } from '@ssokit/core'
