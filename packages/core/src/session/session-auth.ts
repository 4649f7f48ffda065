/**
 * Browser sessions over OpenID Connect (authorization code + PKCE), with bearer tokens accepted
 * on the same routes. Everything is a function of web `Request`/`Response`; protocol steps go
 * through oauth4webapi, sealing and logout-token checks through jose.
 */
import { decodeJwt } from 'jose'
import * as oauth from 'oauth4webapi'

import type { Authenticator, RouteProvider } from '../authenticator.js'
import { isSsoError, SsoError } from '../errors.js'
import type { RequestLike, ResponseParts } from '../http.js'
import type { Identity } from '../identity.js'
import { RoleSet, roleReader, type RoleSource } from '../verify/claims.js'
import { LogoutTokenVerifier } from './backchannel.js'
import {
  cookieValue,
  expireCookie,
  parseCookies,
  serializeCookie,
  type CookieJar,
} from './cookies.js'
import {
  resolveOptions,
  type ResolvedSessionConfig,
  type SessionAuthOptionsBase,
} from './options.js'
import { PAGE_HEADERS, pageResponse, renderPage, type PageContent } from './pages.js'
import { isTransient, Provider, PROVIDER_RETRY_AFTER_S, unavailable } from './provider.js'
import {
  decodeLogoutMark,
  decodeRecord,
  encodeLogoutMark,
  encodeRecord,
  endedByMark,
  logoutMarkId,
  RECORD_VERSION,
  type SessionRecord,
} from './record.js'
import { safeReturnTo } from './return-to.js'
import { Keyring, randomId, safeEqual } from './seal.js'
import { createBearerFor, type SessionBearerOptions } from './bearer.js'

export type SessionAuthOptions = SessionAuthOptionsBase<RoleSource, SessionBearerOptions>

/** An authenticator for browsers (session cookie) and scripts (bearer token), with its routes. */
export interface SessionAuth extends Authenticator, RouteProvider {
  /** `<publicUrl><prefix>/login?returnTo=<path>`: where a link "Sign in" points. */
  loginUrl(returnTo?: string): string
  /** `<publicUrl><prefix>/logout`. */
  readonly logoutUrl: string
  /** Frees the store and timers. */
  close(): Promise<void>
}

/** A login transaction lives at most this long (between /login and /callback). */
const TRANSACTION_TTL_S = 600
/** Parallel login flows (tabs) kept per browser; the oldest transaction is dropped beyond it. */
const MAX_TRANSACTIONS = 5
/** Login starts are counted over this window for loop protection. */
const LOOP_WINDOW_S = 120
/** Refresh at most this long before the access token expires. */
const REFRESH_MARGIN_MS = 30_000
/** After a transient refresh failure, the session is served without retrying for this long. */
const REFRESH_BACKOFF_MS = 10_000
/** How long a request waits for another replica's refresh to land in the store. */
const REFRESH_WAIT_STEPS = 20
const REFRESH_WAIT_STEP_MS = 100
const STORE_RETRY_AFTER_S = 5
const MAX_BACKCHANNEL_BODY = 64 * 1024
const TX_PURPOSE = 'ssokit:transaction'
const SESSION_PURPOSE = 'ssokit:session'
const LOOP_PURPOSE = 'ssokit:login-attempts'
/** ID tokens at login must be fresh: issued within this many seconds of now. */
const MAX_ID_TOKEN_AGE_S = 3600
const UNEXPECTED_CALLBACK_PARAMS = [
  'id_token',
  'access_token',
  'token_type',
  'refresh_token',
  'response',
]
const STATE_SHAPE = /^[A-Za-z0-9_-]{32,128}$/
/** Identities kept built per process; a miss costs two JWT decodes and a deep freeze. */
const MAX_CACHED_IDENTITIES = 1000
/** The store id `/login` reads to learn whether the store answers before sending anyone away. */
const LOGIN_PROBE_ID = 'login-probe'

/** A built identity and the exact record fields it was built from. */
interface CachedIdentity {
  readonly iss: string
  readonly sub: string
  readonly idToken: string
  readonly accessToken: string
  readonly identity: Identity
}

interface Transaction {
  readonly state: string
  readonly nonce: string
  readonly verifier: string
  readonly returnTo: string
  readonly issuer: string
}

class LoginFailure extends Error {
  override readonly name = 'LoginFailure'
  readonly status: number
  readonly retryAfter: number | undefined
  readonly detail: readonly string[]
  constructor(
    status: number,
    message: string,
    detail: readonly string[] = [],
    options: { cause?: unknown; retryAfter?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.status = status
    this.retryAfter = options.retryAfter
    this.detail = detail
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function firstHeader(request: RequestLike, name: string): string | undefined {
  return request.header(name)[0]
}

function pathAndQuery(url: string): string {
  try {
    const parsed = new URL(url, 'http://ssokit.invalid')
    return parsed.pathname + parsed.search
  } catch {
    return '/'
  }
}

function isNavigation(request: RequestLike): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false
  if (request.header('x-requested-with').length > 0) return false
  const mode = firstHeader(request, 'sec-fetch-mode')?.toLowerCase()
  if (mode !== undefined && mode !== 'navigate' && mode !== 'nested-navigate') return false
  return request.header('accept').some((value) => value.toLowerCase().includes('text/html'))
}

/**
 * Whether a request is an API call: it carries a bearer token (or several Authorization headers,
 * which the bearer side refuses). Other schemes (`Basic` from a proxy in front) do not hide the
 * session cookie.
 */
function carriesBearer(request: RequestLike): boolean {
  const values = request.header('authorization')
  if (values.length > 1) return true
  const value = values[0]
  return value !== undefined && /^bearer(\s|$)/i.test(value.trimStart())
}

function decodeClaims(token: string): Record<string, unknown> | undefined {
  try {
    return decodeJwt(token)
  } catch {
    return undefined
  }
}

function sameAudience(
  a: string | readonly string[] | undefined,
  b: string | readonly string[] | undefined,
): boolean {
  const list = (v: string | readonly string[] | undefined): string[] =>
    v === undefined ? [] : typeof v === 'string' ? [v] : [...v].sort()
  const x = list(a)
  const y = list(b)
  return x.length === y.length && x.every((v, i) => v === y[i])
}

function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string | string[]>,
): ResponseParts {
  return {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(body),
  }
}

class SessionAuthImpl implements SessionAuth {
  readonly realm: string
  readonly prefix: string
  readonly logoutUrl: string
  readonly #config: ResolvedSessionConfig<RoleSource, SessionBearerOptions>
  readonly #keyring: Keyring
  readonly #provider: Provider
  readonly #logoutTokens: LogoutTokenVerifier
  readonly #bearer: Authenticator | undefined
  readonly #client: oauth.Client
  readonly #clientAuth: oauth.ClientAuth
  readonly #roles: (claims: Readonly<Record<string, unknown>>) => Iterable<string>
  readonly #ownsStore: boolean
  readonly #refreshes = new Map<string, Promise<SessionRecord>>()
  readonly #refreshFailures = new Map<string, number>()
  /** Rejections whose answer also expires the session cookie (forged, unknown or ended sessions). */
  readonly #clearCookie = new WeakSet<SsoError>()
  /**
   * Identities by session id. An entry is served only for a record just read from the store
   * whose tokens are the ones it was built from, so it never outlives or outranks the record.
   */
  readonly #identities = new Map<string, CachedIdentity>()

  constructor(options: SessionAuthOptions) {
    const config = resolveOptions(options)
    this.#config = config
    this.realm = config.realm
    this.prefix = config.prefix
    this.logoutUrl = `${config.publicUrl}${config.prefix}/logout`
    this.#keyring = new Keyring(config.secrets)
    this.#provider = new Provider({
      issuer: config.issuer,
      fetch: config.fetch,
      httpTimeoutMs: config.httpTimeoutMs,
      allowHttp: config.allowHttpIssuer,
      now: config.now,
    })
    this.#logoutTokens = new LogoutTokenVerifier(this.#provider, {
      issuer: config.issuer.href,
      clientId: config.clientId,
      fetch: config.fetch,
      timeoutMs: config.httpTimeoutMs,
      store: config.store,
      now: config.now,
    })
    this.#bearer = config.bearer === false ? undefined : createBearerFor(config)
    this.#client = { client_id: config.clientId, id_token_signed_response_alg: 'RS256' }
    this.#clientAuth = oauth.ClientSecretBasic(config.clientSecret)
    this.#roles = roleReader(config.roles ?? 'auto', config.clientId)
    this.#ownsStore = options.store === undefined
  }

  loginUrl(returnTo = '/'): string {
    return `${this.#config.publicUrl}${this.#config.prefix}/login?returnTo=${encodeURIComponent(safeReturnTo(returnTo))}`
  }

  async close(): Promise<void> {
    if (this.#ownsStore) await this.#config.store.close()
  }

  #nowMs(): number {
    return this.#config.now()
  }

  #nowS(): number {
    return Math.floor(this.#config.now() / 1000)
  }

  #cookie(name: string, value: string, maxAge: number | undefined, path: string): string {
    return serializeCookie(name, value, {
      path,
      secure: this.#config.secure,
      ...(maxAge === undefined ? {} : { maxAge }),
    })
  }

  #expire(name: string, path: string): string {
    return expireCookie(name, { path, secure: this.#config.secure })
  }

  #missing(clearCookie: boolean, message = 'No valid session.'): SsoError {
    const error = new SsoError('session_missing', message)
    if (clearCookie) this.#clearCookie.add(error)
    return error
  }

  // ---------------------------------------------------------------------------------------------
  // Routes

  async handle(request: Request): Promise<Response | undefined> {
    let url: URL
    try {
      url = new URL(request.url)
    } catch {
      return undefined
    }
    const prefix = this.#config.prefix
    if (!url.pathname.startsWith(`${prefix}/`)) return undefined
    const route = url.pathname.slice(prefix.length)
    try {
      switch (route) {
        case '/login':
          return request.method === 'GET'
            ? await this.#login(request, url)
            : methodNotAllowed('GET')
        case '/callback':
          return request.method === 'GET'
            ? await this.#callback(request, url)
            : methodNotAllowed('GET')
        case '/logout':
          return request.method === 'GET' || request.method === 'POST'
            ? await this.#logout(request)
            : methodNotAllowed('GET, POST')
        case '/backchannel-logout':
          return request.method === 'POST'
            ? await this.#backchannelLogout(request)
            : methodNotAllowed('POST')
        default:
          return undefined
      }
    } catch {
      return pageResponse(500, {
        title: 'Something went wrong',
        paragraphs: ['The sign-in service hit an unexpected error. Please try again.'],
      })
    }
  }

  #sessionIdFrom(cookies: CookieJar): string | undefined {
    const value = cookies.get(this.#config.sessionCookie)?.[0]
    if (value === undefined) return undefined
    return this.#keyring.verify(value, SESSION_PURPOSE)
  }

  /**
   * Loop protection. A browser in a login loop completes sign-ins that do not stick (the session
   * cookie is dropped or the session is lost) and comes straight back to /login. So the counter
   * holds the time of this browser's last completed sign-in and how many logins it started since;
   * logins started with no recent completed sign-in (ten tabs restored at once) do not count.
   */
  #attempts(cookies: CookieJar): { count: number; lastSuccess: number | undefined } {
    const now = this.#nowS()
    const raw = cookies.get(this.#config.loopCookie)?.[0]
    const value = raw === undefined ? undefined : this.#keyring.verify(raw, LOOP_PURPOSE)
    const match = value === undefined ? null : /^(\d{1,4})-(\d{1,12})$/.exec(value)
    if (!match) return { count: 0, lastSuccess: undefined }
    const count = Number(match[1])
    const lastSuccess = Number(match[2])
    if (lastSuccess > now || now - lastSuccess >= LOOP_WINDOW_S)
      return { count: 0, lastSuccess: undefined }
    return { count, lastSuccess }
  }

  #loopCookie(count: number, lastSuccess: number): string {
    const value = this.#keyring.sign(`${count}-${lastSuccess}`, LOOP_PURPOSE)
    const maxAge = Math.max(1, lastSuccess + LOOP_WINDOW_S - this.#nowS())
    return this.#cookie(this.#config.loopCookie, value, maxAge, '/')
  }

  async #login(request: Request, url: URL): Promise<Response> {
    const config = this.#config
    const cookies = parseCookies([request.headers.get('cookie') ?? ''])
    const headers = new Headers({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' })

    // Third-party-initiated login (OIDC Core §4) is accepted only from our own provider.
    const issuers = url.searchParams.getAll('iss')
    if (issuers.length > 1 || (issuers.length === 1 && issuers[0] !== config.issuer.href)) {
      return pageResponse(
        400,
        {
          title: 'Sign-in refused',
          paragraphs: [
            'The sign-in was started for an identity provider this application does not use.',
          ],
        },
        headers,
      )
    }

    const attempts = this.#attempts(cookies)
    if (attempts.lastSuccess !== undefined && attempts.count >= config.maxLoginAttempts) {
      const wait = Math.max(1, attempts.lastSuccess + LOOP_WINDOW_S - this.#nowS())
      headers.set('retry-after', String(wait))
      return pageResponse(
        429,
        {
          title: 'Sign-in keeps failing',
          paragraphs: [
            `This browser completed sign-in and came straight back to the sign-in page ${attempts.count} times in a row, so the session is not being kept. Sign-in stopped here to avoid an endless loop.`,
            'Usual causes: the browser refuses the session cookie (cookies blocked, or the site is reached over http while it is configured for https), the clock of this server is wrong, or the sessions are lost between servers (several instances sharing a memory store).',
            `You can try again in ${wait} seconds.`,
          ],
        },
        headers,
      )
    }

    // Opening the sign-in page ends any session this browser still holds (no half-logged-in state).
    const existing = this.#sessionIdFrom(cookies)
    if (cookies.has(config.sessionCookie))
      headers.append('set-cookie', this.#expire(config.sessionCookie, '/'))
    try {
      // Without a session to end, one read still proves the store answers: a store outage is
      // told now, not after a round trip through the provider that could only end in a 503.
      if (existing === undefined) await config.store.get(LOGIN_PROBE_ID)
      else {
        this.#identities.delete(existing)
        await config.store.delete(existing)
      }
    } catch (error) {
      return storeUnavailablePage(error)
    }

    let metadata: oauth.AuthorizationServer
    try {
      metadata = await this.#provider.metadata()
    } catch (error) {
      return providerUnavailablePage(error)
    }
    if (metadata.authorization_endpoint === undefined) return providerUnavailablePage(undefined)

    const returnValues = url.searchParams.getAll('returnTo')
    const returnTo = returnValues.length === 1 ? safeReturnTo(returnValues[0]) : '/'
    const state = oauth.generateRandomState()
    const nonce = oauth.generateRandomNonce()
    const verifier = oauth.generateRandomCodeVerifier()
    const challenge = await oauth.calculatePKCECodeChallenge(verifier)
    const now = this.#nowS()
    const sealed = await this.#keyring.seal(
      { s: state, n: nonce, cv: verifier, r: returnTo, iss: config.issuer.href, t: this.#nowMs() },
      TX_PURPOSE,
      now,
      now + TRANSACTION_TTL_S,
    )
    const txPath = config.prefix
    for (const name of await this.#transactionsToEvict(cookies))
      headers.append('set-cookie', this.#expire(name, txPath))
    headers.append(
      'set-cookie',
      this.#cookie(this.#transactionCookie(state), sealed, TRANSACTION_TTL_S, txPath),
    )
    if (attempts.lastSuccess !== undefined) {
      headers.append('set-cookie', this.#loopCookie(attempts.count + 1, attempts.lastSuccess))
    }

    const target = new URL(metadata.authorization_endpoint)
    for (const name of config.loginParams) {
      const values = url.searchParams.getAll(name)
      if (values.length === 1 && values[0] !== undefined && values[0].length <= 512)
        target.searchParams.set(name, values[0])
    }
    target.searchParams.set('client_id', config.clientId)
    target.searchParams.set('redirect_uri', config.redirectUri)
    target.searchParams.set('response_type', 'code')
    target.searchParams.set('scope', config.scope)
    target.searchParams.set('state', state)
    target.searchParams.set('nonce', nonce)
    target.searchParams.set('code_challenge', challenge)
    target.searchParams.set('code_challenge_method', 'S256')
    if (config.offline) target.searchParams.set('prompt', 'consent')
    headers.set('location', target.href)
    return new Response(null, { status: 302, headers })
  }

  #transactionCookie(state: string): string {
    // The name carries a short, non-secret slice of the state so the callback finds its own flow.
    return `${this.#config.transactionCookiePrefix}${state.slice(0, 12)}`
  }

  /** Transaction cookies to drop so that, with the new one, at most MAX_TRANSACTIONS remain. */
  async #transactionsToEvict(cookies: CookieJar): Promise<string[]> {
    const names = [...cookies.keys()].filter((n) =>
      n.startsWith(this.#config.transactionCookiePrefix),
    )
    if (names.length < MAX_TRANSACTIONS) return []
    const now = this.#nowS()
    const aged = await Promise.all(
      names.slice(0, MAX_TRANSACTIONS * 4).map(async (name) => {
        const value = cookies.get(name)?.[0] ?? ''
        const payload = await this.#keyring.open(value, TX_PURPOSE, now)
        return { name, started: typeof payload?.t === 'number' ? payload.t : 0 }
      }),
    )
    aged.sort((a, b) => b.started - a.started)
    const keep = new Set(aged.slice(0, MAX_TRANSACTIONS - 1).map((a) => a.name))
    return names.filter((n) => !keep.has(n))
  }

  async #openTransaction(cookies: CookieJar, state: string): Promise<Transaction | undefined> {
    const sealed = cookies.get(this.#transactionCookie(state))?.[0]
    if (sealed === undefined) return undefined
    const payload = await this.#keyring.open(sealed, TX_PURPOSE, this.#nowS())
    if (!payload) return undefined
    const { s, n, cv, r, iss } = payload
    if (
      typeof s !== 'string' ||
      typeof n !== 'string' ||
      typeof cv !== 'string' ||
      typeof r !== 'string' ||
      typeof iss !== 'string'
    ) {
      return undefined
    }
    if (!safeEqual(s, state) || iss !== this.#config.issuer.href) return undefined
    return { state: s, nonce: n, verifier: cv, returnTo: safeReturnTo(r), issuer: iss }
  }

  async #callback(request: Request, url: URL): Promise<Response> {
    const config = this.#config
    const cookies = parseCookies([request.headers.get('cookie') ?? ''])
    const headers = new Headers({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' })
    const params = url.searchParams
    const states = params.getAll('state')
    const state =
      states.length === 1 && STATE_SHAPE.test(states[0] ?? '') ? (states[0] as string) : undefined
    if (state !== undefined && cookies.has(this.#transactionCookie(state))) {
      headers.append('set-cookie', this.#expire(this.#transactionCookie(state), config.prefix))
    }
    try {
      const names = [...params.keys()]
      if (new Set(names).size !== names.length) {
        throw new LoginFailure(400, 'The sign-in response repeats a parameter, so it was refused.')
      }
      // A code-flow response never carries tokens or a JARM response; their presence is an attack.
      if (UNEXPECTED_CALLBACK_PARAMS.some((name) => params.has(name))) {
        throw new LoginFailure(
          400,
          'The sign-in response carries parameters a code flow never has.',
        )
      }
      const transaction =
        state === undefined ? undefined : await this.#openTransaction(cookies, state)
      const providerError = params.get('error')
      if (providerError !== null) {
        const description = params.get('error_description')
        throw new LoginFailure(400, 'The identity provider did not sign you in.', [
          `Reason given by the provider: ${providerError}${description === null ? '' : ` (${description})`}`,
        ])
      }
      if (transaction === undefined) {
        // A reload of a finished callback, or a response this browser never asked for.
        const sessionId = this.#sessionIdFrom(cookies)
        if (sessionId !== undefined) {
          let stored
          try {
            stored = await config.store.get(sessionId)
          } catch (error) {
            return storeUnavailablePage(error, headers)
          }
          if (stored !== undefined) {
            headers.set('location', `${config.publicUrl}/`)
            return new Response(null, { status: 302, headers })
          }
        }
        throw new LoginFailure(
          400,
          'This sign-in was not started in this browser, or it took too long.',
          ['Please start again from the application.'],
        )
      }
      return await this.#completeLogin(transaction, params, headers, cookies)
    } catch (error) {
      if (error instanceof LoginFailure) {
        if (error.retryAfter !== undefined) headers.set('retry-after', String(error.retryAfter))
        return pageResponse(
          error.status,
          {
            title: error.status === 400 ? 'Sign-in failed' : 'Sign-in is unavailable',
            paragraphs: [error.message, ...error.detail],
            link: { href: `${config.publicUrl}${config.prefix}/login`, text: 'Sign in again' },
          },
          headers,
        )
      }
      if (isSsoError(error) && error.code === 'session_store_unavailable')
        return storeUnavailablePage(error, headers)
      throw error
    }
  }

  async #completeLogin(
    transaction: Transaction,
    params: URLSearchParams,
    headers: Headers,
    cookies: CookieJar,
  ): Promise<Response> {
    const config = this.#config
    let metadata: oauth.AuthorizationServer
    try {
      metadata = await this.#provider.metadata()
    } catch (error) {
      throw new LoginFailure(
        503,
        'The identity provider cannot be reached.',
        ['Please try again in a moment.'],
        {
          cause: error,
          retryAfter: PROVIDER_RETRY_AFTER_S,
        },
      )
    }

    let validated: URLSearchParams
    try {
      // Checks state and the RFC 9207 `iss` parameter (mix-up defence), refuses implicit responses.
      validated = oauth.validateAuthResponse(metadata, this.#client, params, transaction.state)
    } catch (error) {
      throw new LoginFailure(400, 'The sign-in response did not pass validation.', [], {
        cause: error,
      })
    }

    let tokens: oauth.TokenEndpointResponse
    let claims: oauth.IDToken
    try {
      const response = await oauth.authorizationCodeGrantRequest(
        metadata,
        this.#client,
        this.#clientAuth,
        validated,
        config.redirectUri,
        transaction.verifier,
        this.#provider.requestOptions(),
      )
      if (response.status >= 500)
        throw unavailable(new Error(`token endpoint answered ${response.status}`))
      tokens = await oauth.processAuthorizationCodeResponse(metadata, this.#client, response, {
        expectedNonce: transaction.nonce,
        requireIdToken: true,
      })
      await this.#checkSignature(metadata, response)
      const idClaims = oauth.getValidatedIdTokenClaims(tokens)
      if (idClaims === undefined) throw new Error('no ID token')
      claims = idClaims
    } catch (error) {
      if ((isSsoError(error) && error.code === 'provider_unavailable') || isTransient(error)) {
        throw new LoginFailure(
          503,
          'The identity provider did not answer in time.',
          ['Please try again in a moment.'],
          {
            cause: error,
            retryAfter: PROVIDER_RETRY_AFTER_S,
          },
        )
      }
      throw new LoginFailure(400, 'The identity provider’s answer did not pass validation.', [], {
        cause: error,
      })
    }
    // No other audience is trusted alongside this client (OIDC Core §3.1.3.7 step 3).
    const audiences = typeof claims.aud === 'string' ? [claims.aud] : claims.aud
    if (
      audiences.some((aud) => aud !== config.clientId) ||
      (claims.azp !== undefined && claims.azp !== config.clientId)
    ) {
      throw new LoginFailure(
        400,
        'The identity provider’s answer was meant for another application too.',
      )
    }
    // An ID token issued long ago (or in the future) is a replay or a broken clock.
    if (Math.abs(Math.floor(Date.now() / 1000) - claims.iat) > MAX_ID_TOKEN_AGE_S) {
      throw new LoginFailure(400, 'The identity provider’s answer is too old, or a clock is wrong.')
    }
    if (typeof claims.sub !== 'string' || claims.sub === '') {
      throw new LoginFailure(400, 'The identity provider’s answer did not name a user.')
    }
    const accessClaims = decodeClaims(tokens.access_token)
    if (accessClaims?.sub !== undefined && accessClaims.sub !== claims.sub) {
      throw new LoginFailure(400, 'The identity provider’s tokens name different users.')
    }

    const now = this.#nowMs()
    const record: SessionRecord = {
      v: RECORD_VERSION,
      iss: claims.iss,
      sub: claims.sub,
      sid: typeof claims.sid === 'string' ? claims.sid : undefined,
      aud: claims.aud,
      azp: claims.azp,
      idToken: tokens.id_token as string,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      ...accessTiming(tokens.expires_in, now),
      createdAt: now,
      expiresAt: now + config.sessionLifetimeS * 1000,
      lastSeenAt: now,
      offline: config.offline && tokens.refresh_token !== undefined,
    }
    // Always a new id from the CSPRNG: an id the browser sent is never adopted (fixation).
    const sessionId = randomId(32)
    try {
      await config.store.set(
        sessionId,
        { subject: record.sub, sid: record.sid, data: encodeRecord(record) },
        config.sessionLifetimeS,
      )
    } catch (error) {
      throw asStoreError(error)
    }
    const signed = this.#keyring.sign(sessionId, SESSION_PURPOSE)
    const attempts = this.#attempts(cookies)
    headers.append('set-cookie', this.#loopCookie(attempts.count, this.#nowS()))
    headers.append(
      'set-cookie',
      this.#cookie(config.sessionCookie, signed, config.sessionLifetimeS, '/'),
    )
    headers.set('location', `${config.publicUrl}${transaction.returnTo}`)
    return new Response(null, { status: 302, headers })
  }

  /** Verifies the ID token signature; an unknown key id refetches the provider's keys once. */
  async #checkSignature(metadata: oauth.AuthorizationServer, response: Response): Promise<void> {
    try {
      await oauth.validateApplicationLevelSignature(
        metadata,
        response,
        this.#provider.requestOptions(),
      )
    } catch (error) {
      if (!(error instanceof oauth.OperationProcessingError && error.code === oauth.KEY_SELECTION))
        throw error
      if (!this.#provider.forgetKeys()) throw error
      await oauth.validateApplicationLevelSignature(
        await this.#provider.metadata(),
        response,
        this.#provider.requestOptions(),
      )
    }
  }

  async #logout(request: Request): Promise<Response> {
    const config = this.#config
    const cookies = parseCookies([request.headers.get('cookie') ?? ''])
    const headers = new Headers({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' })
    const sessionId = this.#sessionIdFrom(cookies)
    let idToken: string | undefined
    if (sessionId !== undefined) {
      try {
        const stored = await config.store.get(sessionId)
        if (stored !== undefined) idToken = decodeRecord(stored.data)?.idToken
        this.#identities.delete(sessionId)
        await config.store.delete(sessionId)
      } catch (error) {
        // The cookie stays so that logging out again, once the store is back, still ends the session.
        return storeUnavailablePage(error, headers)
      }
    }
    if (cookies.has(config.sessionCookie))
      headers.append('set-cookie', this.#expire(config.sessionCookie, '/'))
    let endSession: string | undefined
    try {
      endSession = (await this.#provider.metadata()).end_session_endpoint
    } catch {
      endSession = undefined
    }
    if (endSession === undefined) {
      headers.set('location', config.postLogoutRedirectUri)
    } else {
      const target = new URL(endSession)
      target.searchParams.set('client_id', config.clientId)
      target.searchParams.set('post_logout_redirect_uri', config.postLogoutRedirectUri)
      if (idToken !== undefined) target.searchParams.set('id_token_hint', idToken)
      headers.set('location', target.href)
    }
    return new Response(null, { status: 302, headers })
  }

  async #backchannelLogout(request: Request): Promise<Response> {
    const headers = { 'cache-control': 'no-store', 'content-type': 'application/json' }
    const answer = (status: number, body: unknown, extra: Record<string, string> = {}): Response =>
      new Response(body === undefined ? null : JSON.stringify(body), {
        status,
        headers: { ...headers, ...extra },
      })
    const bad = (): Response => answer(400, { error: 'logout_token_invalid' })
    const type = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase()
    if (type !== 'application/x-www-form-urlencoded') return bad()
    const length = Number(request.headers.get('content-length') ?? '0')
    if (length > MAX_BACKCHANNEL_BODY) return bad()
    const body = await request.text()
    if (body.length > MAX_BACKCHANNEL_BODY) return bad()
    const tokens = new URLSearchParams(body).getAll('logout_token')
    if (tokens.length !== 1 || tokens[0] === undefined || tokens[0] === '') return bad()
    try {
      const target = await this.#logoutTokens.verify(tokens[0])
      if (target.sid !== undefined) await this.#config.store.deleteBySid(target.sid)
      else if (target.sub !== undefined) await this.#markLoggedOut(target.sub, target.iat)
      return answer(200, undefined)
    } catch (error) {
      if (isSsoError(error) && error.code === 'logout_token_invalid') return bad()
      const retryAfter = isSsoError(error)
        ? (error.retryAfter ?? STORE_RETRY_AFTER_S)
        : STORE_RETRY_AFTER_S
      const code =
        isSsoError(error) && error.code === 'provider_unavailable'
          ? 'provider_unavailable'
          : 'session_store_unavailable'
      return answer(503, { error: code }, { 'retry-after': String(retryAfter) })
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Authenticator

  async authenticate(request: RequestLike): Promise<Identity> {
    if (this.#bearer !== undefined && carriesBearer(request)) {
      return this.#bearer.authenticate(request)
    }
    const config = this.#config
    const cookie = cookieValue(request.header('cookie'), config.sessionCookie)
    if (cookie === undefined) throw this.#missing(false)
    const sessionId = this.#keyring.verify(cookie, SESSION_PURPOSE)
    if (sessionId === undefined) throw this.#missing(true)
    const store = config.store
    // A session never changes subject, so a subject seen before lets the logout mark be read
    // alongside the session instead of after it.
    const knownSub = this.#identities.get(sessionId)?.sub
    let stored
    let mark
    try {
      if (knownSub === undefined) {
        stored = await store.get(sessionId)
      } else {
        ;[stored, mark] = await Promise.all([
          store.get(sessionId),
          store.get(logoutMarkId(knownSub)),
        ])
      }
    } catch (error) {
      throw asStoreError(error)
    }
    if (stored === undefined) {
      this.#identities.delete(sessionId)
      throw this.#missing(true)
    }
    // A record in a format this version does not know (a newer deployment) is not ours to delete.
    let record = decodeRecord(stored.data)
    if (record === undefined) throw this.#missing(false)
    if (record.sub !== knownSub) {
      try {
        mark = await store.get(logoutMarkId(record.sub))
      } catch (error) {
        throw asStoreError(error)
      }
    }
    const now = this.#nowMs()
    const idleMs = config.idleTimeoutS === undefined ? undefined : config.idleTimeoutS * 1000
    const expired =
      now >= record.expiresAt || (idleMs !== undefined && now - record.lastSeenAt > idleMs)
    if (expired || this.#endedByLogout(record, mark?.data)) {
      this.#identities.delete(sessionId)
      await store.delete(sessionId).catch(() => undefined)
      throw this.#missing(
        true,
        expired ? 'The session has expired.' : 'The session was ended by the identity provider.',
      )
    }
    if (needsRefresh(record, now)) {
      record = await this.#refresh(sessionId, record)
    } else if (idleMs !== undefined && now - record.lastSeenAt > Math.min(60_000, idleMs / 4)) {
      const touched: SessionRecord = { ...record, lastSeenAt: now }
      await this.#write(sessionId, touched, now).catch(() => undefined)
      record = touched
    }
    return this.#identityOf(sessionId, record)
  }

  #endedByLogout(record: SessionRecord, markData: string | undefined): boolean {
    if (markData === undefined) return false
    const iat = decodeLogoutMark(markData)
    return iat !== undefined && endedByMark(record.createdAt, iat)
  }

  /**
   * Ends, on every replica, the sessions of `subject` created up to `iat`, and none created
   * after: the store cannot list a subject's sessions, so a mark in the store is checked by
   * every request instead. The mark lives as long as the longest session it can end.
   */
  async #markLoggedOut(subject: string, iat: number): Promise<void> {
    const store = this.#config.store
    const id = logoutMarkId(subject)
    const previous = await store.get(id)
    const previousIat = previous === undefined ? undefined : decodeLogoutMark(previous.data)
    // A delayed token never moves the mark back in time.
    if (previousIat !== undefined && previousIat >= iat) return
    await store.set(
      id,
      { subject: id, sid: undefined, data: encodeLogoutMark(iat) },
      this.#config.sessionLifetimeS,
    )
  }

  async #write(sessionId: string, record: SessionRecord, now: number): Promise<void> {
    const ttl = Math.ceil((record.expiresAt - now) / 1000)
    if (ttl <= 0) return
    await this.#config.store.set(
      sessionId,
      { subject: record.sub, sid: record.sid, data: encodeRecord(record) },
      ttl,
    )
  }

  /** The identity of a record just read from the store, built once per set of tokens. */
  #identityOf(sessionId: string, record: SessionRecord): Identity {
    const cache = this.#identities
    const cached = cache.get(sessionId)
    if (
      cached !== undefined &&
      cached.accessToken === record.accessToken &&
      cached.idToken === record.idToken &&
      cached.sub === record.sub &&
      cached.iss === record.iss
    ) {
      return cached.identity
    }
    const identity = this.#identity(record)
    if (cached !== undefined) cache.delete(sessionId)
    else if (cache.size >= MAX_CACHED_IDENTITIES) {
      const oldest = cache.keys().next()
      if (oldest.done !== true) cache.delete(oldest.value)
    }
    cache.set(sessionId, {
      iss: record.iss,
      sub: record.sub,
      idToken: record.idToken,
      accessToken: record.accessToken,
      identity,
    })
    return identity
  }

  #identity(record: SessionRecord): Identity {
    const idClaims = decodeClaims(record.idToken) ?? {}
    const accessClaims = decodeClaims(record.accessToken) ?? {}
    const claims: Record<string, unknown> = {
      ...accessClaims,
      ...idClaims,
      iss: record.iss,
      sub: record.sub,
    }
    deepFreeze(claims)
    const str = (name: string): string | undefined => {
      const value = claims[name]
      return typeof value === 'string' ? value : undefined
    }
    return Object.freeze({
      subject: record.sub,
      username: str('preferred_username') ?? str('cern_upn'),
      email: str('email'),
      name: str('name'),
      // Roles come from the access token, where the provider puts them for this client.
      roles: new RoleSet(this.#roles(accessClaims)),
      kind: 'user',
      via: 'session',
      claims,
    })
  }

  /** One refresh per session at a time in this process, and (through a store lock) across replicas. */
  #refresh(sessionId: string, record: SessionRecord): Promise<SessionRecord> {
    let pending = this.#refreshes.get(sessionId)
    if (pending === undefined) {
      pending = this.#refreshOnce(sessionId, record).finally(() =>
        this.#refreshes.delete(sessionId),
      )
      this.#refreshes.set(sessionId, pending)
    }
    return pending
  }

  async #refreshOnce(sessionId: string, record: SessionRecord): Promise<SessionRecord> {
    const config = this.#config
    const failedAt = this.#refreshFailures.get(sessionId)
    if (failedAt !== undefined && this.#nowMs() - failedAt < REFRESH_BACKOFF_MS) return record
    let release: (() => Promise<void>) | undefined
    try {
      release = await config.store.lock(`refresh:${sessionId}`, 30)
    } catch {
      return record
    }
    if (release === undefined) return this.#awaitOtherRefresh(sessionId, record)
    try {
      // Another replica may have refreshed between our read and our lock.
      const latestStored = await config.store.get(sessionId)
      if (latestStored === undefined) throw this.#missing(true)
      const latest = decodeRecord(latestStored.data) ?? record
      const now = this.#nowMs()
      if (!needsRefresh(latest, now)) return latest
      return await this.#refreshGrant(sessionId, latest)
    } catch (error) {
      if (isSsoError(error) && error.code === 'session_missing') throw error
      return record
    } finally {
      await release().catch(() => undefined)
    }
  }

  async #awaitOtherRefresh(sessionId: string, record: SessionRecord): Promise<SessionRecord> {
    for (let i = 0; i < REFRESH_WAIT_STEPS; i++) {
      await sleep(REFRESH_WAIT_STEP_MS)
      let stored
      try {
        stored = await this.#config.store.get(sessionId)
      } catch {
        return record
      }
      if (stored === undefined) throw this.#missing(true)
      const latest = decodeRecord(stored.data)
      if (latest !== undefined && latest.accessToken !== record.accessToken) return latest
    }
    return record
  }

  async #refreshGrant(sessionId: string, record: SessionRecord): Promise<SessionRecord> {
    const config = this.#config
    const refreshToken = record.refreshToken
    if (refreshToken === undefined) return record
    const now = this.#nowMs()
    let tokens: oauth.TokenEndpointResponse
    try {
      const metadata = await this.#provider.metadata()
      const response = await oauth.refreshTokenGrantRequest(
        metadata,
        this.#client,
        this.#clientAuth,
        refreshToken,
        this.#provider.requestOptions(),
      )
      if (response.status >= 500)
        throw unavailable(new Error(`token endpoint answered ${response.status}`))
      tokens = await oauth.processRefreshTokenResponse(metadata, this.#client, response)
      if (tokens.id_token !== undefined) await this.#checkSignature(metadata, response)
    } catch (error) {
      if (error instanceof oauth.ResponseBodyError && error.error === 'invalid_grant') {
        // The provider ended the session (revoked, expired offline token): so do we.
        await config.store.delete(sessionId).catch(() => undefined)
        throw this.#missing(true, 'The session was ended by the identity provider.')
      }
      if (!isTransient(error) && !(error instanceof oauth.ResponseBodyError)) {
        // The answer came but failed validation (a refreshed ID token for someone else, a bad
        // signature): the session's identity can no longer be vouched for.
        await config.store.delete(sessionId).catch(() => undefined)
        throw this.#missing(true, 'The identity provider returned tokens that failed validation.')
      }
      // Provider down or refusing for a reason that may pass: keep serving the session while it is valid.
      this.#refreshFailures.set(sessionId, now)
      if (this.#refreshFailures.size > 10_000) this.#refreshFailures.clear()
      return record
    }
    const idClaims =
      tokens.id_token === undefined ? undefined : oauth.getValidatedIdTokenClaims(tokens)
    const accessClaims = decodeClaims(tokens.access_token)
    const swapped =
      (idClaims !== undefined &&
        (idClaims.iss !== record.iss ||
          idClaims.sub !== record.sub ||
          !sameAudience(idClaims.aud, record.aud) ||
          idClaims.azp !== record.azp)) ||
      (accessClaims?.sub !== undefined && accessClaims.sub !== record.sub)
    if (swapped) {
      // Never let a refresh change who the session belongs to.
      await config.store.delete(sessionId).catch(() => undefined)
      throw this.#missing(true, 'The identity provider returned tokens for another user.')
    }
    this.#refreshFailures.delete(sessionId)
    const refreshed: SessionRecord = {
      ...record,
      idToken: tokens.id_token ?? record.idToken,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token ?? record.refreshToken,
      ...accessTiming(tokens.expires_in, now),
      lastSeenAt: now,
    }
    await this.#write(sessionId, refreshed, now).catch(() => undefined)
    return refreshed
  }

  reject(error: unknown, request: RequestLike): ResponseParts {
    if (this.#bearer !== undefined && carriesBearer(request)) {
      return this.#bearer.reject(error, request)
    }
    if (!isSsoError(error)) {
      return jsonResponse(500, { error: 'internal_error' }, {})
    }
    const config = this.#config
    const headers: Record<string, string | string[]> = {}
    if (this.#clearCookie.has(error))
      headers['set-cookie'] = [this.#expire(config.sessionCookie, '/')]
    const navigation = isNavigation(request)
    const realm = `Bearer realm="${config.realm}"`
    switch (error.code) {
      case 'session_missing':
      case 'token_missing': {
        const loginUrl = this.loginUrl(pathAndQuery(request.url))
        if (navigation) {
          return {
            status: 302,
            headers: { ...headers, location: loginUrl, 'cache-control': 'no-store' },
            body: '',
          }
        }
        return jsonResponse(
          401,
          { error: error.code, login_url: loginUrl },
          { ...headers, 'www-authenticate': realm },
        )
      }
      default: {
        const status = error.status
        if (status === 503) headers['retry-after'] = String(error.retryAfter ?? STORE_RETRY_AFTER_S)
        const attribute = error.bearerError
        if (status === 401 || status === 403) {
          headers['www-authenticate'] =
            attribute === undefined ? realm : `${realm}, error="${attribute}"`
        }
        if (navigation) return htmlParts(status, errorPage(error), headers)
        return jsonResponse(status, { error: error.code }, headers)
      }
    }
  }
}

function accessTiming(
  expiresIn: number | undefined,
  now: number,
): Pick<SessionRecord, 'accessExpiresAt' | 'refreshAt'> {
  if (expiresIn === undefined || !Number.isFinite(expiresIn) || expiresIn <= 0) {
    return { accessExpiresAt: undefined, refreshAt: undefined }
  }
  const lifetime = expiresIn * 1000
  // A short-lived token is refreshed in its last third, a long-lived one 30 s before it expires.
  const margin = Math.min(REFRESH_MARGIN_MS, lifetime / 3)
  return { accessExpiresAt: now + lifetime, refreshAt: now + lifetime - margin }
}

function needsRefresh(record: SessionRecord, now: number): boolean {
  return (
    record.refreshToken !== undefined && record.refreshAt !== undefined && now >= record.refreshAt
  )
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return
  Object.freeze(value)
  for (const child of Object.values(value)) deepFreeze(child)
}

function asStoreError(error: unknown): SsoError {
  if (isSsoError(error) && error.code === 'session_store_unavailable') return error
  return new SsoError('session_store_unavailable', 'The session store cannot be reached.', {
    cause: error,
    retryAfter: STORE_RETRY_AFTER_S,
  })
}

function methodNotAllowed(allow: string): Response {
  return new Response(null, { status: 405, headers: { allow, 'cache-control': 'no-store' } })
}

function storeUnavailablePage(error: unknown, headers: Headers = new Headers()): Response {
  const retryAfter = isSsoError(error)
    ? (error.retryAfter ?? STORE_RETRY_AFTER_S)
    : STORE_RETRY_AFTER_S
  headers.set('retry-after', String(retryAfter))
  headers.set('cache-control', 'no-store')
  return pageResponse(
    503,
    {
      title: 'Sign-in is unavailable',
      paragraphs: ['The session service cannot be reached. Please try again in a moment.'],
    },
    headers,
  )
}

function providerUnavailablePage(error: unknown, headers: Headers = new Headers()): Response {
  const retryAfter = isSsoError(error)
    ? (error.retryAfter ?? PROVIDER_RETRY_AFTER_S)
    : PROVIDER_RETRY_AFTER_S
  headers.set('retry-after', String(retryAfter))
  headers.set('cache-control', 'no-store')
  return pageResponse(
    503,
    {
      title: 'Sign-in is unavailable',
      paragraphs: ['The identity provider cannot be reached. Please try again in a moment.'],
    },
    headers,
  )
}

function errorPage(error: SsoError): PageContent {
  switch (error.code) {
    case 'role_required':
      return {
        title: 'Access denied',
        paragraphs: ['You are signed in, but your account lacks a role this page requires.'],
      }
    case 'session_store_unavailable':
      return {
        title: 'Temporarily unavailable',
        paragraphs: ['The session service cannot be reached. Please try again in a moment.'],
      }
    case 'provider_unavailable':
      return {
        title: 'Temporarily unavailable',
        paragraphs: ['The identity provider cannot be reached. Please try again in a moment.'],
      }
    default:
      return { title: 'Request refused', paragraphs: [`The request was refused (${error.code}).`] }
  }
}

function htmlParts(
  status: number,
  content: PageContent,
  headers: Record<string, string | string[]>,
): ResponseParts {
  return { status, headers: { ...PAGE_HEADERS, ...headers }, body: renderPage(content) }
}

/** Creates browser sessions plus bearer tokens for one client of one provider. */
export function createSessionAuth(options: SessionAuthOptions): SessionAuth {
  return new SessionAuthImpl(options)
}
