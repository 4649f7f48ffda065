/**
 * Options of `createSessionAuth`: checked, copied and frozen once, so nothing a caller still
 * holds can change a running instance. Every mistake is an `SsoTypeError` at construction.
 */
import { SsoTypeError } from '../errors.js'
import type { SsoEventHandler } from '../verify/events.js'
import {
  resolveClientCredentials,
  type ClientCredentials,
  type ClientPrivateKey,
  type TokenEndpointAuthMethod,
} from './client-auth.js'
import { resolveSessionFrame, type SessionFrame } from './frame.js'
import type { SessionPageOptions } from './pages.js'
import type { SessionStore } from './store.js'

/** Sessions longer than this (12 h) ask the provider for an offline token, as tsgauth does. */
export const OFFLINE_THRESHOLD_S = 43_200
const RESERVED_LOGIN_PARAMS = new Set([
  'client_id',
  'redirect_uri',
  'response_type',
  'response_mode',
  'scope',
  'state',
  'nonce',
  'code_challenge',
  'code_challenge_method',
  'request',
  'request_uri',
  'claims',
  // An ID token is never checked against max_age (auth_time), so it may not be requested.
  'max_age',
  // The audience of the tokens is the application's choice (the resource and audience options).
  'resource',
  'audience',
])

export interface SessionCookieOptions {
  /**
   * Development only: cookies without `Secure` (and without the `__Host-` prefix), allowed only
   * when `publicUrl` is `http://localhost` or `http://127.0.0.1`. Default `false`.
   */
  readonly insecureHttpForLocalhost?: boolean
}

export interface SessionExpertOptions {
  /** The fetch used for every request to the provider. Default: the global `fetch`. */
  readonly fetch?: typeof fetch
  /** The clock for session lifetimes, idle timeout and refresh timing, in ms since the epoch. */
  readonly now?: () => number
  /** Seconds before a request to the provider is abandoned. Default 10. */
  readonly httpTimeout?: number
  /**
   * Talk to an `http:` issuer that is not on a loopback address. Never in production: tokens
   * would cross the network in clear text. Loopback issuers (a local development provider) are
   * always allowed.
   */
  readonly allowInsecureIssuer?: boolean
}

export interface SessionAuthOptionsBase<Roles, Bearer> {
  /** The provider's issuer URL, e.g. `https://auth.cern.ch/auth/realms/cern`. */
  readonly issuer: string
  readonly clientId: string
  /** The client secret, for `client_secret_basic` and `client_secret_post`. */
  readonly clientSecret?: string
  /**
   * How the application authenticates at the token endpoint. Default: `private_key_jwt` when a
   * `clientPrivateKey` is given; else, with a `clientSecret`, `client_secret_basic` unless the
   * discovery document lists only `client_secret_post`; else `none` (a public client).
   */
  readonly tokenEndpointAuth?: TokenEndpointAuthMethod
  /** The private key that signs `private_key_jwt` assertions (its public half registered at the provider). */
  readonly clientPrivateKey?: ClientPrivateKey
  /**
   * The application's external origin, e.g. `https://app.example.org`. The `redirect_uri`, the
   * cookie `Secure` flag and every redirect are built from it, never from request headers.
   */
  readonly publicUrl: string
  /** At least 32 characters. The first seals and signs; all of them open (rotation). */
  readonly secret: string | readonly string[]
  /** Where sessions live. Default: a `MemorySessionStore` (one process only). */
  readonly store?: SessionStore
  /** Path prefix of the login, callback and logout routes. Default `/auth`. */
  readonly prefix?: string
  /** Absolute session lifetime in seconds. Default 28 800 (8 h); above 12 h asks for `offline_access`. */
  readonly sessionLifetime?: number
  /** Seconds without a request after which a session ends. Default: none. */
  readonly idleTimeout?: number
  /**
   * RFC 8707 resource indicators: the APIs the access token is for, as absolute URIs. Sent at
   * authorization, at the code exchange and with every refresh. Default none.
   */
  readonly resource?: string | readonly string[]
  /**
   * A provider-specific `audience` parameter (Auth0 and others), sent with the resource
   * indicators. Default none.
   */
  readonly audience?: string
  /** Scopes to request; `openid` is always added. Default `openid profile email`. */
  readonly scopes?: string | readonly string[]
  /** Where the provider sends the browser after logout (registered at the provider). Default `/`. */
  readonly postLogoutRedirectPath?: string
  /**
   * Sign-ins one browser may be sent to, within two minutes, by the application refusing the
   * session the previous one created, before a loop is declared. Default 5.
   */
  readonly maxLoginAttempts?: number
  /**
   * Bytes of a request body a session route reads at most (the back-channel logout token);
   * a bigger one is answered 413 without being read whole. Default 65 536 (64 KiB).
   */
  readonly maxBodySize?: number
  /** Query parameters of `<prefix>/login` passed on to the provider (e.g. `kc_idp_hint`). Default none. */
  readonly loginParams?: readonly string[]
  /** The realm in `WWW-Authenticate`. Default: the client id. */
  readonly realm?: string
  /** Where roles come from. Default: as the bearer verifier's default. */
  readonly roles?: Roles
  /** The claim for `identity.username` when `preferred_username` is absent. Default: as the verifier's. */
  readonly usernameClaim?: string
  /** Bearer tokens on the same routes: `false` for sessions only. Default: tokens for `clientId`. */
  readonly bearer?: false | Bearer
  readonly cookies?: SessionCookieOptions
  /**
   * Receives what goes wrong and what recovers: a provider that refuses this application, discovery
   * or key failures, store outages, failed sign-ins, and the bearer side's events (unless
   * `bearer.onEvent` is given). Never receives tokens, cookies or secrets. Default: warnings and
   * errors are printed to stderr, each cause once every few minutes.
   */
  readonly onEvent?: SsoEventHandler
  /** The application's own look for the few HTML pages of sign-in. Default: plain pages. */
  readonly pages?: SessionPageOptions
  readonly expert?: SessionExpertOptions
}

export interface ResolvedSessionConfig<Roles, Bearer> extends SessionFrame {
  /** The issuer exactly as configured: compared character for character with `iss` and discovery. */
  readonly issuer: string
  readonly clientId: string
  /** The secret, key and method of token-endpoint authentication, checked. */
  readonly clientCredentials: ClientCredentials
  readonly redirectUri: string
  readonly scope: string
  /** `resource` and `audience`, in the order sent with authorization and token requests. */
  readonly tokenParams: readonly (readonly [name: 'resource' | 'audience', value: string])[]
  readonly offline: boolean
  readonly postLogoutRedirectUri: string
  readonly loginParams: ReadonlySet<string>
  readonly realm: string
  readonly roles: Roles | undefined
  readonly usernameClaim: string | undefined
  readonly bearer: false | Bearer | undefined
  readonly now: () => number
  readonly fetch: typeof fetch | undefined
  readonly httpTimeoutMs: number
  readonly allowHttpIssuer: boolean
  readonly onEvent: SsoEventHandler | undefined
}

function fail(message: string, code?: SsoTypeError['code']): never {
  throw new SsoTypeError(message, code)
}

function requiredString(value: unknown, name: string): string {
  if (value === undefined || value === null || value === '') {
    fail(`createSessionAuth: option ${name} is required`, 'ERR_MISSING_OPTION')
  }
  if (typeof value !== 'string')
    fail(`createSessionAuth: ${name} must be a string`, 'ERR_INVALID_ARG_TYPE')
  return value
}

function isLoopback(url: URL): boolean {
  return url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]'
}

function parseUrl(value: string, name: string): URL {
  try {
    return new URL(value)
  } catch {
    return fail(`createSessionAuth: ${name} must be an absolute URL`)
  }
}

/** Printable ASCII without spaces: what fits in a query or form parameter unchanged in meaning. */
const PARAM_VALUE = /^[\x21-\x7e]{1,2048}$/

function resolveTokenParams(
  resource: unknown,
  audience: unknown,
): ResolvedSessionConfig<unknown, unknown>['tokenParams'] {
  const resources =
    resource === undefined
      ? []
      : typeof resource === 'string'
        ? [resource]
        : Array.isArray(resource)
          ? [...(resource as readonly unknown[])]
          : fail(
              'createSessionAuth: resource must be a URI or a list of URIs',
              'ERR_INVALID_ARG_TYPE',
            )
  const params: (readonly ['resource' | 'audience', string])[] = []
  for (const value of new Set(resources)) {
    // RFC 8707 §2: an absolute URI without a fragment.
    if (
      typeof value !== 'string' ||
      !PARAM_VALUE.test(value) ||
      !URL.canParse(value) ||
      value.includes('#')
    ) {
      fail(
        `createSessionAuth: resource ${JSON.stringify(value)} must be an absolute URI without a fragment, such as https://api.example.org`,
      )
    }
    params.push(['resource', value])
  }
  if (audience !== undefined) {
    if (typeof audience !== 'string' || !PARAM_VALUE.test(audience))
      fail('createSessionAuth: audience must be a non-empty string without spaces')
    params.push(['audience', audience])
  }
  return Object.freeze(params)
}

export function resolveOptions<Roles, Bearer>(
  options: SessionAuthOptionsBase<Roles, Bearer>,
): ResolvedSessionConfig<Roles, Bearer> {
  if (typeof options !== 'object' || (options as unknown) === null) {
    fail('createSessionAuth: options must be an object', 'ERR_INVALID_ARG_TYPE')
  }
  const expert = options.expert ?? {}
  const allowHttpIssuer = expert.allowInsecureIssuer === true

  const issuerText = requiredString(options.issuer, 'issuer')
  const issuer = parseUrl(issuerText, 'issuer')
  if (issuer.protocol !== 'https:' && issuer.protocol !== 'http:') {
    fail('createSessionAuth: issuer must be an https URL')
  }
  if (issuer.protocol === 'http:' && !isLoopback(issuer) && !allowHttpIssuer) {
    fail('createSessionAuth: issuer must use https (http is allowed only on localhost)')
  }
  if (issuer.search !== '' || issuer.hash !== '')
    fail('createSessionAuth: issuer must not have a query or fragment')

  const clientId = requiredString(options.clientId, 'clientId')
  const clientCredentials = resolveClientCredentials(options)

  const frame = resolveSessionFrame(options, 'createSessionAuth')
  const { sessionLifetimeS, prefix } = frame
  const offline = sessionLifetimeS > OFFLINE_THRESHOLD_S

  const scopeInput = options.scopes ?? ['openid', 'profile', 'email']
  const scopeList =
    typeof scopeInput === 'string'
      ? scopeInput.split(/\s+/)
      : Array.isArray(scopeInput)
        ? [...(scopeInput as readonly unknown[])]
        : undefined
  if (scopeList === undefined || !scopeList.every((s) => typeof s === 'string')) {
    fail('createSessionAuth: scopes must be a string or a list of strings', 'ERR_INVALID_ARG_TYPE')
  }
  const scopes = new Set(['openid', ...scopeList.filter((s) => s !== '')])
  for (const s of scopes)
    if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))
      fail(`createSessionAuth: invalid scope ${JSON.stringify(s)}`)
  if (offline) scopes.add('offline_access')

  const tokenParams = resolveTokenParams(options.resource, options.audience)

  const postLogoutPath = options.postLogoutRedirectPath ?? '/'
  if (
    typeof postLogoutPath !== 'string' ||
    !postLogoutPath.startsWith('/') ||
    postLogoutPath.startsWith('//') ||
    /[\s\\]/.test(postLogoutPath)
  ) {
    fail('createSessionAuth: postLogoutRedirectPath must be a path on this application, such as /')
  }

  const loginParams = new Set<string>()
  for (const name of options.loginParams ?? []) {
    if (typeof name !== 'string' || name === '')
      fail('createSessionAuth: loginParams must be parameter names', 'ERR_INVALID_ARG_TYPE')
    if (RESERVED_LOGIN_PARAMS.has(name) || name.startsWith('code_') || name === 'returnTo') {
      fail(`createSessionAuth: loginParams may not include ${name}, which ssokit sets itself`)
    }
    loginParams.add(name)
  }

  const realm = options.realm ?? clientId
  // eslint-disable-next-line no-control-regex
  if (typeof realm !== 'string' || /["\\\x00-\x1f]/.test(realm))
    fail('createSessionAuth: realm must be a plain string')

  if (
    options.bearer !== undefined &&
    options.bearer !== false &&
    typeof options.bearer !== 'object'
  ) {
    fail('createSessionAuth: bearer must be false or verifier options', 'ERR_INVALID_ARG_TYPE')
  }

  if (options.onEvent !== undefined && typeof options.onEvent !== 'function')
    fail('createSessionAuth: onEvent must be a function', 'ERR_INVALID_ARG_TYPE')
  if (expert.fetch !== undefined && typeof expert.fetch !== 'function')
    fail('createSessionAuth: expert.fetch must be a function', 'ERR_INVALID_ARG_TYPE')
  if (expert.now !== undefined && typeof expert.now !== 'function')
    fail('createSessionAuth: expert.now must be a function', 'ERR_INVALID_ARG_TYPE')
  const httpTimeout = expert.httpTimeout ?? 10
  if (typeof httpTimeout !== 'number' || !Number.isFinite(httpTimeout) || httpTimeout <= 0) {
    fail('createSessionAuth: expert.httpTimeout must be a positive number of seconds')
  }

  const origin = frame.publicUrl
  return Object.freeze({
    ...frame,
    issuer: issuerText,
    clientId,
    clientCredentials,
    redirectUri: `${origin}${prefix}/callback`,
    scope: [...scopes].join(' '),
    tokenParams,
    offline,
    postLogoutRedirectUri: `${origin}${postLogoutPath}`,
    loginParams,
    realm,
    roles: options.roles,
    usernameClaim: options.usernameClaim,
    bearer: options.bearer,
    now: expert.now ?? Date.now,
    fetch: expert.fetch,
    httpTimeoutMs: httpTimeout * 1000,
    allowHttpIssuer: issuer.protocol === 'http:',
    onEvent: options.onEvent,
  })
}
