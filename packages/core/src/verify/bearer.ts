import type { Authenticator } from '../authenticator.js'
import { SsoError, SsoTypeError, isSsoError } from '../errors.js'
import type { RequestLike, ResponseParts } from '../http.js'
import type { Identity } from '../identity.js'
import { cacheLookupOf, createVerifier, type Verifier, type VerifierOptions } from './verifier.js'

/** An authenticator for bearer tokens, with the start-up check of its verifier. */
export interface BearerAuthenticator extends Authenticator {
  /**
   * Loads discovery and keys now and resolves once tokens can be verified; rejects with
   * `provider_unavailable` naming the cause (a wrong issuer, a key set URL that answers 404, a
   * provider that cannot be reached), which is also logged. Call it at start-up and from a
   * readiness probe.
   */
  ready(): Promise<void>
}

export interface BearerAuthenticatorOptions extends VerifierOptions {
  /** The realm named in `WWW-Authenticate`. Default: the client id. */
  readonly realm?: string | undefined
}

/** RFC 6750 §2.1 `b64token`. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/

function isVerifier(value: unknown): value is Verifier {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Partial<Verifier>).verify === 'function' &&
    typeof (value as Partial<Verifier>).clientId === 'string'
  )
}

function checkRealm(realm: string): string {
  // The realm is sent as an RFC 9110 quoted-string; refusing quotes, backslashes and controls
  // keeps it from breaking out of the challenge.
  // eslint-disable-next-line no-control-regex
  if (typeof realm !== 'string' || realm === '' || /["\\\u0000-\u001f\u007f]/.test(realm)) {
    throw new SsoTypeError(
      'realm must be a non-empty string without quotes, backslashes or control characters',
    )
  }
  return realm
}

function hasQueryToken(url: string): boolean {
  const query = url.indexOf('?')
  if (query === -1) return false
  // The parameter name may be percent-encoded; without either spelling there is nothing to parse.
  if (url.indexOf('access_token', query) === -1 && url.indexOf('%', query) === -1) return false
  const hash = url.indexOf('#', query)
  const params = new URLSearchParams(url.slice(query + 1, hash === -1 ? undefined : hash))
  return params.has('access_token')
}

function invalidRequest(message: string): SsoError {
  return new SsoError('invalid_request', message)
}

/** What follows `Bearer ` in the request's one `Authorization` header, not yet checked for syntax. */
function bearerCredential(request: RequestLike): string {
  const values = request.header('authorization')
  const queryToken = hasQueryToken(request.url)
  if (values.length > 1)
    throw invalidRequest('The request carries more than one Authorization header.')
  const value = values[0]
  if (value === undefined) {
    // RFC 9700 §4.3.2: tokens in the query leak into logs; such a request has no usable credentials.
    throw new SsoError('token_missing', 'The request carries no bearer token.')
  }
  const space = value.indexOf(' ')
  const scheme = space === -1 ? value : value.slice(0, space)
  if (scheme.toLowerCase() !== 'bearer') {
    if (queryToken) throw invalidRequest('The request carries more than one credential.')
    throw new SsoError('token_missing', 'The request carries no bearer token.')
  }
  if (queryToken) throw invalidRequest('The request carries more than one credential.')
  return space === -1 ? '' : value.slice(space + 1)
}

function badSyntax(): SsoError {
  return invalidRequest('The Authorization header is not "Bearer <token>".')
}

/**
 * Reads the bearer token of a request (RFC 6750 §2.1), or throws:
 * - no `Authorization`, or another scheme: `token_missing` (a query-string token counts as none);
 * - two `Authorization` values, broken syntax, or a header plus `?access_token=`: `invalid_request`.
 */
export function readBearerToken(request: RequestLike): string {
  const token = bearerCredential(request)
  if (!B64TOKEN.test(token)) throw badSyntax()
  return token
}

/** Builds a `WWW-Authenticate: Bearer` challenge (RFC 6750 §3). */
function challenge(realm: string, error: SsoError): string {
  let value = `Bearer realm="${realm}"`
  const attribute = error.bearerError
  if (attribute !== undefined) value += `, error="${attribute}"`
  if (
    attribute === 'insufficient_scope' &&
    error.requiredRoles !== undefined &&
    error.requiredRoles.length > 0
  ) {
    value += `, scope="${error.requiredRoles.filter((role) => /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(role)).join(' ')}"`
  }
  return value
}

const JSON_HEADERS = { 'content-type': 'application/json', 'cache-control': 'no-store' } as const

/**
 * The answer to a failed authentication or role check. `SsoError`s map to their status with an
 * RFC 6750 challenge; anything else is a 500 that reveals nothing.
 */
export function bearerRejection(realm: string, error: unknown): ResponseParts {
  if (!isSsoError(error)) {
    return { status: 500, headers: JSON_HEADERS, body: '{"error":"internal_error"}' }
  }
  const headers: Record<string, string> = { ...JSON_HEADERS }
  if (error.status === 401 || error.status === 400 || error.status === 403) {
    headers['www-authenticate'] = challenge(realm, error)
  }
  if (error.status === 503 || error.status === 429) {
    headers['retry-after'] = String(Math.max(1, Math.ceil(error.retryAfter ?? 30)))
  }
  return { status: error.status, headers, body: JSON.stringify({ error: error.code }) }
}

/**
 * An `Authenticator` for APIs: `Authorization: Bearer <access token>` verified against one issuer
 * and audience. Takes verifier options (plus `realm`) or a verifier shared with other code.
 */
export function createBearerAuthenticator(
  options: BearerAuthenticatorOptions | Verifier,
): BearerAuthenticator {
  let verifier: Verifier
  let realm: string
  if (isVerifier(options)) {
    verifier = options
    realm = checkRealm(options.clientId)
  } else {
    verifier = createVerifier(options)
    realm = checkRealm(options.realm ?? verifier.clientId)
  }
  const cached = cacheLookupOf(verifier)
  return Object.freeze({
    realm,
    // Not `async`: a token verified before is answered in this tick, with one settled promise.
    // Every failure still arrives as a rejection.
    authenticate(request: RequestLike): Promise<Identity> {
      try {
        const token = bearerCredential(request)
        // The cache holds only tokens that pass the syntax check, so a hit may skip it.
        const identity = cached?.(token)
        if (identity !== undefined) return Promise.resolve(identity)
        if (!B64TOKEN.test(token)) throw badSyntax()
        return Promise.resolve(verifier.verify(token))
      } catch (error) {
        // Whatever was thrown, unchanged, as `async` would.
        // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
        return Promise.reject(error)
      }
    },
    reject(error: unknown, _request: RequestLike): ResponseParts {
      return bearerRejection(realm, error)
    },
    ready: () => verifier.ready(),
  })
}

/**
 * Throws `role_required` (403 `insufficient_scope`) unless the identity has every named role.
 * Roles match exactly: `admin` is not `admin-readonly`.
 */
export function requireRoles(identity: Identity, roles: string | Iterable<string>): void {
  const wanted = typeof roles === 'string' ? [roles] : [...roles]
  if (wanted.some((role) => typeof role !== 'string' || role === '')) {
    throw new SsoTypeError('roles must be non-empty strings')
  }
  const missing = wanted.filter((role) => !identity.roles.has(role))
  if (missing.length > 0) {
    throw new SsoError('role_required', 'A required role is missing.', { requiredRoles: wanted })
  }
}
