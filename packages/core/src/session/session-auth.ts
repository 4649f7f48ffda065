/**
 * Browser sessions over OpenID Connect (authorization code + PKCE), with bearer tokens accepted
 * on the same routes. Everything is a function of web `Request`/`Response`; protocol steps go
 * through oauth4webapi, sealing and logout-token checks through jose. This module wires the
 * steps together; each lives in its own module.
 */
import type { Authenticator, RouteProvider } from '../authenticator.js'
import { fromRequest, type RequestLike, type ResponseParts } from '../http.js'
import type { Identity } from '../identity.js'
import { SsoTypeError } from '../errors.js'
import {
  claimPathProblem,
  roleClaimMissing,
  roleClaimPaths,
  roleReader,
  roleSourceProblem,
  usernameReader,
  type RoleSource,
} from '../verify/claims.js'
import { EventSink } from '../verify/events.js'
import { LogoutTokenVerifier } from './backchannel.js'
import { backchannelLogout } from './backchannel-logout.js'
import { createBearerFor, type SessionBearerOptions } from './bearer.js'
import { callback } from './callback.js'
import { carriesBearer, rejectSession, SessionRejections } from './challenge.js'
import { createContext, loginUrl, type SessionContext } from './context.js'
import { IdentityCache, type IdentityMapping } from './identity-cache.js'
import { login } from './login.js'
import { withRefusalMark } from './login-loop.js'
import { logout } from './logout.js'
import { resolveOptions, type SessionAuthOptionsBase } from './options.js'
import { Readiness } from './readiness.js'
import { SessionRefresher } from './refresh.js'
import { reportingStore } from './reporting-store.js'
import { applyPages } from './pages.js'
import { routeRequest, type SessionRoutes } from './routes.js'
import { SessionReader } from './session-reader.js'

export type SessionAuthOptions = SessionAuthOptionsBase<RoleSource, SessionBearerOptions>

/** An authenticator for browsers (session cookie) and scripts (bearer token), with its routes. */
export interface SessionAuth extends Authenticator, RouteProvider {
  /** `<publicUrl><prefix>/login?returnTo=<path>`: where a link "Sign in" points. */
  loginUrl(returnTo?: string): string
  /** `<publicUrl><prefix>/logout`. */
  readonly logoutUrl: string
  /**
   * The start-up check: reads the discovery document (its issuer must be exactly the configured
   * one), the provider's keys and the session store, and resolves once sign-in can work. Rejects
   * with `provider_unavailable` or `session_store_unavailable` whose message names every cause
   * found; each cause is also logged (the `onEvent` hook, or stderr) once while it lasts, and its
   * recovery when it clears. Call it at start-up, and from a readiness probe.
   */
  ready(): Promise<void>
  /** Frees the store and timers. */
  close(): Promise<void>
}

/** How session identities are read from tokens; a missing role claim is reported once. */
function identityMapping(
  config: {
    readonly roles: RoleSource | undefined
    readonly usernameClaim: string | undefined
    readonly clientId: string
  },
  events: EventSink,
): IdentityMapping {
  const source = config.roles ?? 'auto'
  const rolesProblem = roleSourceProblem(source)
  if (rolesProblem !== undefined) throw new SsoTypeError(`createSessionAuth: roles ${rolesProblem}`)
  if (config.usernameClaim !== undefined) {
    const problem = claimPathProblem(config.usernameClaim)
    if (problem !== undefined) throw new SsoTypeError(`createSessionAuth: usernameClaim ${problem}`)
  }
  const paths = roleClaimPaths(source, config.clientId)
  let warned = false
  return {
    roles: roleReader(source, config.clientId),
    username: usernameReader(config.usernameClaim),
    rolesMissing: (claims) => {
      if (warned || paths === undefined) return
      warned = true
      events.emit(roleClaimMissing(paths, claims.iss))
    },
  }
}

class SessionAuthImpl implements SessionAuth {
  readonly realm: string
  readonly prefix: string
  readonly logoutUrl: string
  readonly #context: SessionContext
  readonly #bearer: Authenticator | undefined
  readonly #rejections = new SessionRejections()
  readonly #reader: SessionReader
  readonly #routes: SessionRoutes
  readonly #ownsStore: boolean

  readonly #readiness: Readiness

  constructor(options: SessionAuthOptions) {
    const resolved = resolveOptions(options)
    const events = new EventSink(resolved.onEvent, resolved.now)
    const config = Object.freeze({ ...resolved, store: reportingStore(resolved.store, events) })
    const context = createContext(config, events)
    this.#context = context
    this.realm = config.realm
    this.prefix = config.prefix
    this.logoutUrl = `${config.publicUrl}${config.prefix}/logout`
    const logoutTokens = new LogoutTokenVerifier(context.provider, {
      issuer: config.issuer,
      clientId: config.clientId,
      fetch: config.fetch,
      timeoutMs: config.httpTimeoutMs,
      store: config.store,
      now: config.now,
    })
    const bearer = config.bearer === false ? undefined : createBearerFor(config, events.handler)
    this.#bearer = bearer
    this.#readiness = new Readiness(context, bearer)
    const identities = new IdentityCache(identityMapping(config, events))
    this.#reader = new SessionReader(
      context,
      identities,
      new SessionRefresher(context, this.#rejections),
      this.#rejections,
    )
    this.#routes = {
      login: (request, url) =>
        login(context, identities, (r) => this.#reader.authenticate(fromRequest(r)), request, url),
      callback: (request, url) => callback(context, request, url),
      logout: (request) => logout(context, identities, request),
      backchannelLogout: (request) => backchannelLogout(config, logoutTokens, request, events),
    }
    this.#ownsStore = options.store === undefined
  }

  loginUrl(returnTo = '/'): string {
    return loginUrl(this.#context.config, returnTo)
  }

  ready(): Promise<void> {
    return this.#readiness.check()
  }

  async close(): Promise<void> {
    if (this.#ownsStore) await this.#context.config.store.close()
  }

  async handle(request: Request): Promise<Response | undefined> {
    const { prefix, pages } = this.#context.config
    const response = applyPages(pages, await routeRequest(prefix, this.#routes, request))
    // A body a route left unread (or stopped reading at the limit) must not be drained by the
    // server to keep the connection alive, however long it is: the connection closes instead.
    if (response !== undefined && request.body !== null && !request.bodyUsed) {
      response.headers.set('connection', 'close')
    }
    return response
  }

  async authenticate(request: RequestLike): Promise<Identity> {
    if (this.#bearer !== undefined && carriesBearer(request)) {
      return this.#bearer.authenticate(request)
    }
    return this.#reader.authenticate(request)
  }

  reject(error: unknown, request: RequestLike): ResponseParts {
    if (this.#bearer !== undefined && carriesBearer(request)) {
      return this.#bearer.reject(error, request)
    }
    const parts = rejectSession(this.#context.config, this.#rejections, error, request)
    return withRefusalMark(this.#context, error, request, parts)
  }
}

/** Creates browser sessions plus bearer tokens for one client of one provider. */
export function createSessionAuth(options: SessionAuthOptions): SessionAuth {
  return new SessionAuthImpl(options)
}
