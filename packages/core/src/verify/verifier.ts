import { verify as cryptoVerify } from 'node:crypto'

import { attachAccessToken } from '../access-token.js'
import { SsoError, SsoTypeError } from '../errors.js'
import type { Identity } from '../identity.js'
import {
  algorithmEntry,
  isSigningAlgorithm,
  type AlgorithmEntry,
  type SigningAlgorithm,
} from './algorithms.js'
import {
  buildIdentity,
  cachedIdentity,
  checkAccessToken,
  checkIssuerAndAudience,
  checkTimes,
  claimPathProblem,
  fail,
  roleClaimMissing,
  roleClaimPaths,
  roleReader,
  roleSourceProblem,
  TOKEN_TYPE_POLICIES,
  usernameReader,
  type ClaimsPolicy,
  type RoleReader,
  type RoleSource,
  type TokenTypePolicy,
} from './claims.js'
import { parseCompact, parseJsonObject, type CompactJws } from './compact.js'
import { EventSink, loggable, type VerifierEventHandler } from './events.js'
import { JwksCache, type JwksKey, type RejectReason } from './jwks.js'
import { TokenCache } from './lru.js'

/** Tuning of the key cache. Durations are in seconds. */
export interface JwksOptions {
  /** Least time between two fetches caused by unknown key ids. Default 30. */
  readonly cooldown?: number
  /** The key set is re-read when older than this. Default 600 (10 min). */
  readonly maxAge?: number
  /** How long cached keys keep working while the provider cannot be reached. Default 86400 (24 h). */
  readonly staleIfError?: number
  /** Time limit of one discovery or JWKS request. Default 5. */
  readonly timeout?: number
}

/**
 * Hooks for tests and unusual deployments. Each one weakens a default or replaces a part that is
 * normally right; none of them is needed in production against a real provider.
 */
export interface VerifierExpertOptions {
  /** Replaces `fetch` for discovery and JWKS requests. */
  readonly fetch?: typeof fetch
  /** Replaces the clock: milliseconds since the epoch, as `Date.now`. */
  readonly now?: () => number
  /** Allows `http:` issuer and JWKS URLs on non-loopback hosts. Loopback hosts are always allowed. */
  readonly allowInsecureHttp?: boolean
  /**
   * Accepts any JWT as an access token, ID tokens included. Prefer `tokenType: 'jwt'`, which
   * accepts untyped access tokens and still refuses ID tokens.
   */
  readonly acceptAnyTokenType?: boolean
}

export interface VerifierOptions {
  /** The issuer identifier, compared exactly with `iss` and with the discovery document. */
  readonly issuer: string
  /** This API's client id: the audience every token must name, unless `audience` says otherwise. */
  readonly clientId: string
  /**
   * The audiences a token may name instead, when they are not the client id (an API identifier
   * such as `https://api.example.org`, several names of one API): `aud` must contain one of them.
   * Default: the client id. Give the client id too if tokens naming it should still be accepted.
   */
  readonly audience?: string | readonly string[] | undefined
  /** Where the keys are; read from `<issuer>/.well-known/openid-configuration` when absent. */
  readonly jwksUri?: string | undefined
  /** Accepted signature algorithms. Default `['RS256']`. Asymmetric only. */
  readonly algorithms?: readonly string[] | undefined
  /** Leeway for `exp`, `nbf` and `iat`, in seconds. Default 30. */
  readonly clockTolerance?: number | undefined
  /**
   * Where roles come from: `'auto'` (default: `cern_roles`, else
   * `resource_access.<clientId>.roles`), a claim or dotted path (`'groups'`, `'scope'`,
   * `'realm_access.roles'`), a list of them, or a function. A token without the configured
   * claims gets no roles, and the first one is reported once as a `role_claim_missing` warning.
   */
  readonly roles?: RoleSource | undefined
  /**
   * The claim (or dotted path) for `identity.username` when `preferred_username` is absent.
   * Default `cern_upn`; after it come `email`, then `sub`.
   */
  readonly usernameClaim?: string | undefined
  /**
   * Which JWTs are access tokens. Default `'auto'`: RFC 9068 (`at+jwt` header) or Keycloak
   * (`typ: "Bearer"` claim). `'jwt'` also accepts tokens typed `JWT` or untyped, as most other
   * providers issue them, and refuses those that look like ID tokens (`id_token`).
   */
  readonly tokenType?: TokenTypePolicy | undefined
  /** Verified tokens kept in memory until they expire. Default 10 000; 0 turns the cache off. */
  readonly cacheSize?: number | undefined
  /**
   * Longer tokens are refused without parsing, as `token_too_large` (431). Default 65 536
   * characters: room for a token with hundreds of roles, once Node's own header limit is raised.
   */
  readonly maxTokenLength?: number | undefined
  readonly jwks?: JwksOptions | undefined
  /**
   * Receives rejections, key refreshes and rate-limited warnings. Never receives tokens. Without
   * it, warnings and errors are printed to stderr, each cause once every few minutes.
   */
  readonly onEvent?: VerifierEventHandler | undefined
  readonly expert?: VerifierExpertOptions | undefined
}

export interface Verifier {
  readonly issuer: string
  readonly clientId: string
  /** The identity behind an access token, or a rejection with an `SsoError`. */
  verify(token: string): Promise<Identity>
  /**
   * Loads discovery and keys now. Rejects with `provider_unavailable` while the provider cannot
   * be reached: a readiness probe, since the verifier itself starts without the provider.
   */
  ready(): Promise<void>
}

interface CachedToken {
  /** Holds the token rather than its parsed claims, decoded again only if they are read. */
  readonly identity: Identity
  /** The token's `iat`, `nbf` and `exp`, for `checkTimes` on every hit. */
  readonly times: Readonly<Record<string, unknown>>
  readonly key: JwksKey
  /**
   * Whether the token is base64url segments and dots only, so that it passes any bearer syntax
   * check; a token accepted in another shape (jose takes padding and whitespace) is not.
   */
  readonly plain: boolean
  /**
   * The second (of the verifier's clock) at which the token times last held. `checkTimes` depends
   * on the clock through that second only, so within it the answer is the same.
   */
  checkedAt: number
}

/**
 * The cached identity of a token, or `undefined` whenever the full verification has something to
 * say (an unknown, stale or expired entry, a key set due for refreshing): never a rejection.
 */
type CacheLookup = (token: string) => Identity | undefined

const cacheLookups = new WeakMap<Verifier, CacheLookup>()

/**
 * The synchronous cache lookup of a verifier made by `createVerifier`, for the bearer
 * authenticator's fast path; `undefined` for another verifier or when caching is off.
 */
export function cacheLookupOf(verifier: Verifier): CacheLookup | undefined {
  return cacheLookups.get(verifier)
}

/** Base64url and "." only: what a token must be to skip the bearer syntax check on a hit. */
function isPlainCompact(token: string): boolean {
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i)
    if (!(
      (c >= 0x61 && c <= 0x7a) ||
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x30 && c <= 0x39) ||
      c === 0x2d ||
      c === 0x5f ||
      c === 0x2e
    )) {
      return false
    }
  }
  return token.length > 0
}

const DEFAULT_ALGORITHMS: readonly SigningAlgorithm[] = ['RS256']

function isLoopback(hostname: string): boolean {
  return (
    hostname === 'localhost' ||
    hostname === '[::1]' ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname)
  )
}

/** Why a provider URL is unacceptable, or `undefined` when it is fine. */
export function urlProblem(
  value: string,
  what: string,
  allowInsecureHttp: boolean,
): string | undefined {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return `${what} must be an absolute URL`
  }
  if (
    url.protocol !== 'https:' &&
    !(url.protocol === 'http:' && (allowInsecureHttp || isLoopback(url.hostname)))
  ) {
    return `${what} must use https (http is allowed for loopback hosts only)`
  }
  if (url.username !== '' || url.password !== '') return `${what} must not contain credentials`
  if (url.hash !== '') return `${what} must not contain a fragment`
  return undefined
}

function numberOption(
  value: number | undefined,
  name: string,
  fallback: number,
  max: number,
  unit: string,
): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > max) {
    throw new SsoTypeError(`${name} must be a number of ${unit} between 0 and ${max}`)
  }
  return value
}

function seconds(value: number | undefined, name: string, fallback: number, max: number): number {
  return numberOption(value, name, fallback, max, 'seconds')
}

function checkAlgorithms(algorithms: readonly string[] | undefined): readonly SigningAlgorithm[] {
  if (algorithms === undefined) return DEFAULT_ALGORITHMS
  if (!Array.isArray(algorithms) || algorithms.length === 0) {
    throw new SsoTypeError('algorithms must be a non-empty list of asymmetric JWS algorithms')
  }
  const out: SigningAlgorithm[] = []
  for (const alg of algorithms) {
    if (typeof alg !== 'string' || !isSigningAlgorithm(alg)) {
      const why =
        typeof alg === 'string' && alg.toLowerCase() === 'none'
          ? 'unsigned tokens are never accepted'
          : typeof alg === 'string' && /^HS/i.test(alg)
            ? 'symmetric algorithms cannot be used with a JWKS'
            : 'it is not a supported asymmetric JWS algorithm'
      throw new SsoTypeError(`algorithms contains "${String(alg)}": ${why}`)
    }
    out.push(alg)
  }
  return Object.freeze(out)
}

function checkAudience(
  audience: string | readonly string[] | undefined,
  clientId: string,
): readonly string[] {
  if (audience === undefined) return Object.freeze([clientId])
  const list: readonly unknown[] = typeof audience === 'string' ? [audience] : audience
  if (!Array.isArray(list) || list.length === 0) {
    throw new SsoTypeError(
      'audience must be a string or a non-empty list of strings',
      'ERR_INVALID_ARG_TYPE',
    )
  }
  for (const item of list) {
    if (typeof item !== 'string' || item.trim() === '' || item === '*') {
      throw new SsoTypeError(
        'audience must name real audiences: non-empty strings, never "*" (it is never skipped)',
      )
    }
  }
  return Object.freeze([...(list as readonly string[])])
}

interface Config {
  readonly issuer: string
  readonly clientId: string
  readonly algorithms: ReadonlySet<string>
  readonly policy: ClaimsPolicy
  readonly roles: RoleReader
  /** The role claims, for the warning when a token has none of them. */
  readonly roleClaims: readonly string[] | undefined
  readonly username: (claims: Readonly<Record<string, unknown>>) => string
  readonly cacheSize: number
  readonly maxTokenLength: number
  readonly now: () => number
}

function checkOptions(options: VerifierOptions): Config {
  if (typeof options !== 'object' || (options as unknown) === null) {
    throw new SsoTypeError('verifier options must be an object', 'ERR_INVALID_ARG_TYPE')
  }
  const expert = options.expert ?? {}
  const allowInsecureHttp = expert.allowInsecureHttp === true
  const { issuer, clientId } = options
  if (typeof issuer !== 'string' || issuer === '' || issuer === '*') {
    throw new SsoTypeError(
      'issuer is required: the exact issuer identifier of the provider',
      'ERR_MISSING_OPTION',
    )
  }
  const issuerProblem = urlProblem(issuer, 'issuer', allowInsecureHttp)
  if (issuerProblem !== undefined) throw new SsoTypeError(issuerProblem)
  if (new URL(issuer).search !== '') throw new SsoTypeError('issuer must not contain a query')
  if (typeof clientId !== 'string' || clientId.trim() === '' || clientId === '*') {
    throw new SsoTypeError(
      'clientId is required: the audience every token must name (it is never skipped)',
      'ERR_MISSING_OPTION',
    )
  }
  if (options.jwksUri !== undefined) {
    if (typeof options.jwksUri !== 'string')
      throw new SsoTypeError('jwksUri must be a string', 'ERR_INVALID_ARG_TYPE')
    const problem = urlProblem(options.jwksUri, 'jwksUri', allowInsecureHttp)
    if (problem !== undefined) throw new SsoTypeError(problem)
  }
  const tokenType = options.tokenType ?? 'auto'
  if (!TOKEN_TYPE_POLICIES.includes(tokenType)) {
    throw new SsoTypeError('tokenType must be "auto", "at+jwt", "Bearer" or "jwt"')
  }
  const roles = options.roles ?? 'auto'
  const rolesProblem = roleSourceProblem(roles)
  if (rolesProblem !== undefined) {
    throw new SsoTypeError(
      `roles ${rolesProblem}`,
      typeof roles === 'string' || Array.isArray(roles)
        ? 'ERR_INVALID_ARG_VALUE'
        : 'ERR_INVALID_ARG_TYPE',
    )
  }
  if (options.usernameClaim !== undefined) {
    const problem = claimPathProblem(options.usernameClaim)
    if (problem !== undefined) throw new SsoTypeError(`usernameClaim ${problem}`)
  }
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function') {
    throw new SsoTypeError('onEvent must be a function', 'ERR_INVALID_ARG_TYPE')
  }
  if (expert.fetch !== undefined && typeof expert.fetch !== 'function') {
    throw new SsoTypeError('expert.fetch must be a function', 'ERR_INVALID_ARG_TYPE')
  }
  if (expert.now !== undefined && typeof expert.now !== 'function') {
    throw new SsoTypeError('expert.now must be a function', 'ERR_INVALID_ARG_TYPE')
  }
  const cacheSize = numberOption(options.cacheSize, 'cacheSize', 10_000, 10_000_000, 'entries')
  const maxTokenLength = numberOption(
    options.maxTokenLength,
    'maxTokenLength',
    65_536,
    1_048_576,
    'characters',
  )
  const algorithms = checkAlgorithms(options.algorithms)
  const audiences = checkAudience(options.audience, clientId)
  return Object.freeze({
    issuer,
    clientId,
    algorithms: new Set(algorithms),
    policy: Object.freeze({
      issuer,
      clientId,
      audiences,
      clockTolerance: seconds(options.clockTolerance, 'clockTolerance', 30, 600),
      tokenType,
      acceptAnyTokenType: expert.acceptAnyTokenType === true,
    }),
    roles: roleReader(roles, clientId),
    roleClaims: roleClaimPaths(roles, clientId),
    username: usernameReader(options.usernameClaim),
    cacheSize: Math.floor(cacheSize),
    maxTokenLength,
    now: expert.now ?? Date.now,
  })
}

function isClockSkew(error: unknown): boolean {
  const reason = error instanceof SsoError ? (error.cause as RejectReason | undefined)?.reason : ''
  return reason === 'iat_future' || reason === 'nbf_future'
}

/** What a rejected verification got as far as, for its log line. */
interface Seen {
  jws?: CompactJws | undefined
  claims?: Record<string, unknown> | undefined
}

/**
 * Creates a verifier for access tokens of one issuer and one audience. Options are checked and
 * frozen here: a misconfiguration throws an `SsoTypeError` now, never on a request.
 */
export function createVerifier(options: VerifierOptions): Verifier {
  const config = checkOptions(options)
  const expert = options.expert ?? {}
  const jwksOptions = options.jwks ?? {}
  const { now, policy, algorithms, roles, username, maxTokenLength } = config
  const events = new EventSink(options.onEvent, now)
  const allowInsecureHttp = expert.allowInsecureHttp === true
  const customFetch = expert.fetch
  const jwks = new JwksCache({
    issuer: config.issuer,
    jwksUri: options.jwksUri,
    fetch: customFetch ?? ((input, init) => fetch(input, init)),
    now,
    cooldownMs: seconds(jwksOptions.cooldown, 'jwks.cooldown', 30, 3600) * 1000,
    maxAgeMs: seconds(jwksOptions.maxAge, 'jwks.maxAge', 600, 86_400) * 1000,
    staleIfErrorMs:
      seconds(jwksOptions.staleIfError, 'jwks.staleIfError', 86_400, 7 * 86_400) * 1000,
    timeoutMs: seconds(jwksOptions.timeout, 'jwks.timeout', 5, 60) * 1000,
    checkUrl: (url, what) => urlProblem(url, what, allowInsecureHttp),
    events,
  })
  const cache = new TokenCache<CachedToken>(config.cacheSize)
  const caching = config.cacheSize > 0
  const tolerance = policy.clockTolerance

  /** Verification with the keys at hand; a key that needs fetching costs one await. */
  function verifyFresh(token: string, seen: Seen): Identity | Promise<Identity> {
    const jws = parseCompact(token, algorithms)
    if (typeof jws === 'string')
      throw fail('token_invalid', 'The token is not a valid signed JWT.', jws)
    seen.jws = jws
    // The allow-list holds only entries of the algorithm table.
    const entry = algorithmEntry(jws.alg)
    if (entry === undefined)
      throw fail('token_invalid', 'The token algorithm is not allowed.', 'alg_not_allowed')
    const key = jwks.selectNow(jws.header, entry)
    if (key !== undefined) return finish(token, jws, entry, key, seen)
    // The scratch buffer is shared: keep private copies across the wait.
    const held: CompactJws = {
      ...jws,
      signingInput: jws.signingInput.slice(),
      signature: jws.signature.slice(),
    }
    return jwks.select(jws.header, entry).then((found) => finish(token, held, entry, found, seen))
  }

  function finish(
    token: string,
    jws: CompactJws,
    entry: AlgorithmEntry,
    key: JwksKey,
    seen: Seen,
  ): Identity {
    let valid = false
    try {
      valid = cryptoVerify(entry.digest, jws.signingInput, key.input(entry), jws.signature)
    } catch {
      valid = false
    }
    // The signature is checked before any claim, so a forged token is reported as forged (A29).
    if (!valid) throw fail('token_invalid', 'The token signature is not valid.', 'signature')
    const claims = jws.payloadText === undefined ? undefined : parseJsonObject(jws.payloadText)
    if (claims === undefined)
      throw fail('token_invalid', 'The token claims are not a JSON object.', 'claims')
    seen.claims = claims
    checkIssuerAndAudience(claims, policy)
    checkTimes(claims, Math.floor(now() / 1000), tolerance)
    checkAccessToken(jws.header, claims, policy)
    let roleList = roles(claims)
    if (roleList === undefined) {
      roleList = []
      rolesMissing(claims)
    }
    const identity = buildIdentity(claims, roleList, username(claims))
    attachAccessToken(identity, token)
    // Admitted on a second sighting only: a token used once costs nothing more than without cache.
    if (caching && cache.admit(token)) {
      const cached = cachedIdentity(claims, identity, token)
      attachAccessToken(cached, token)
      cache.set(token, {
        identity: cached,
        times: { iat: claims.iat, nbf: claims.nbf, exp: claims.exp },
        key,
        plain: isPlainCompact(token),
        checkedAt: Number.NaN,
      })
    }
    return identity
  }

  let rolesWarned = false
  /** A token without the configured role claims: reported once, it usually means a wrong `roles`. */
  function rolesMissing(claims: Record<string, unknown>): void {
    if (rolesWarned || config.roleClaims === undefined) return
    rolesWarned = true
    events.emit(roleClaimMissing(config.roleClaims, claims.iss))
  }

  function report(error: unknown, seen: Seen): void {
    if (!(error instanceof SsoError)) return
    const reason = (error.cause as RejectReason | undefined)?.reason
    let claims = seen.claims
    if (claims === undefined && seen.jws !== undefined) {
      // Unverified, for the log line only.
      claims =
        seen.jws.payloadText === undefined ? undefined : parseJsonObject(seen.jws.payloadText)
    }
    if (reason === 'iat_future' || reason === 'nbf_future') {
      events.warnOnce('clock_skew', {
        type: 'clock_skew',
        level: 'warn',
        message: 'A token was issued in the future: is this host clock behind the provider?',
        reason,
        iss: loggable(claims?.iss),
      })
    }
    if (!events.enabled) return
    events.emit({
      type: 'token_rejected',
      level: error.code === 'provider_unavailable' ? 'warn' : 'info',
      message: error.message,
      reason: reason ?? error.code,
      code: error.code,
      kid: loggable(seen.jws?.header.kid),
      iss: loggable(claims?.iss),
      jti: loggable(claims?.jti),
    })
  }

  /** A cached identity while its key is still published and its times still hold. */
  function fromCache(token: string, hit: CachedToken): Identity | undefined {
    if (!jwks.isCurrent(hit.key)) {
      cache.delete(token)
      return undefined
    }
    const second = Math.floor(now() / 1000)
    if (hit.checkedAt === second) return hit.identity
    try {
      checkTimes(hit.times, second, tolerance)
    } catch (error) {
      cache.delete(token)
      throw error
    }
    hit.checkedAt = second
    return hit.identity
  }

  /** A hit that needs neither a wait nor a rejection; everything else is left to `verify`. */
  function lookup(token: string): Identity | undefined {
    const hit = cache.get(token)
    if (hit === undefined || !hit.plain) return undefined
    const ms = now()
    if (jwks.staleAt(ms) || !jwks.isCurrent(hit.key)) return undefined
    const second = Math.floor(ms / 1000)
    if (hit.checkedAt !== second) {
      try {
        checkTimes(hit.times, second, tolerance)
      } catch {
        return undefined
      }
      hit.checkedAt = second
    }
    return hit.identity
  }

  /** Everything up to an identity, without waiting when neither keys nor the key set need fetching. */
  function verifyNow(token: string, seen: Seen): Identity | Promise<Identity> {
    if (typeof token !== 'string' || token === '') {
      throw fail('token_invalid', 'The token is empty.', 'empty')
    }
    if (token.length > maxTokenLength)
      throw fail('token_too_large', 'The token is longer than maxTokenLength.', 'too_long')
    const hit = caching ? cache.get(token) : undefined
    if (hit !== undefined) {
      if (jwks.stale) {
        return jwks.ensureFresh().then(() => fromCache(token, hit) ?? verifyFresh(token, seen))
      }
      const identity = fromCache(token, hit)
      if (identity !== undefined) return identity
    }
    return verifyFresh(token, seen)
  }

  // `async` so that it settles as a rejection whatever happens; the report runs before it returns.
  // eslint-disable-next-line @typescript-eslint/require-await
  async function rejected(error: unknown, seen: Seen): Promise<never> {
    // Without a hook only warnings are logged, so an ordinary rejection costs nothing more.
    if (events.enabled || isClockSkew(error)) {
      try {
        report(error, seen)
      } catch {
        // Reporting never changes the outcome.
      }
    }
    throw error
  }

  // Not `async`: a token whose key is at hand is settled in this tick, with one promise.
  function verify(token: string): Promise<Identity> {
    const seen: Seen = { jws: undefined, claims: undefined }
    let result: Identity | Promise<Identity>
    try {
      result = verifyNow(token, seen)
    } catch (error) {
      return rejected(error, seen)
    }
    if (result instanceof Promise) return result.catch((error: unknown) => rejected(error, seen))
    return Promise.resolve(result)
  }

  const verifier: Verifier = Object.freeze({
    issuer: config.issuer,
    clientId: config.clientId,
    verify,
    ready: () => jwks.ensureFresh(),
  })
  if (caching) cacheLookups.set(verifier, lookup)
  return verifier
}
