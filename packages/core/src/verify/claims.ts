import { SsoError, type SsoErrorCode } from '../errors.js'
import type { Identity } from '../identity.js'
import { decodeJsonObject } from './compact.js'
import { loggable, type SsoEvent } from './events.js'
import type { RejectReason } from './jwks.js'

/**
 * Where an identity's roles come from. A claim that holds a list is taken as it is; one that holds
 * a string is split on spaces and commas (`scope` and `scp` on spaces only, RFC 8693 §4.2).
 */
export type RoleSource =
  /** `cern_roles` when present, else `resource_access.<clientId>.roles` (the default). */
  | 'auto'
  /**
   * A claim, or a dotted path into one: `groups`, `roles`, `scope`, `realm_access.roles`,
   * `resource_access.<client>.roles`. A claim whose own name has dots (Auth0's
   * `https://example.org/roles`, a client id `my.app`) is found by its whole name first.
   */
  | (string & {})
  /** Several claims or paths: the roles are all of theirs together. */
  | readonly string[]
  /** Any other mapping from verified claims to role names. */
  | ((claims: Readonly<Record<string, unknown>>) => Iterable<string>)

/**
 * The roles of a token's claims, or `undefined` when the token carries none of the configured
 * role claims (a claim that holds neither a list nor a string counts as absent).
 */
export type RoleReader = (claims: Readonly<Record<string, unknown>>) => Iterable<string> | undefined

/**
 * Which JWTs count as access tokens. ID tokens, refresh, logout and other typed tokens never do.
 * - `auto`: RFC 9068 (`typ` header `at+jwt`) or Keycloak (`typ` claim `Bearer`).
 * - `at+jwt`: RFC 9068 only. `Bearer`: Keycloak only.
 * - `jwt`: also a JWT typed `JWT` or not typed at all, as most providers issue access tokens,
 *   unless it bears the marks of an ID token (`nonce`, `at_hash`, `c_hash`, `s_hash`, or an
 *   audience of the client id alone with no access-token claim such as `scope` or `client_id`).
 */
export type TokenTypePolicy = 'auto' | 'at+jwt' | 'Bearer' | 'jwt'

export const TOKEN_TYPE_POLICIES: readonly TokenTypePolicy[] = ['auto', 'at+jwt', 'Bearer', 'jwt']

export interface ClaimsPolicy {
  readonly issuer: string
  readonly clientId: string
  /** What `aud` must name one of; the client id unless configured. */
  readonly audiences: readonly string[]
  /** Seconds. */
  readonly clockTolerance: number
  readonly tokenType: TokenTypePolicy
  readonly acceptAnyTokenType: boolean
}

export function fail(
  code: SsoErrorCode,
  message: string,
  reason: string,
  claim?: string,
): SsoError {
  const cause: RejectReason = { reason }
  return new SsoError(code, message, claim === undefined ? { cause } : { cause, claim })
}

/**
 * The time rules of `jose.jwtVerify` with `clockTolerance` and a `maxTokenAge` check that only
 * refuses an `iat` in the future: `exp` and `iat` required numbers, `nbf` optional.
 * Runs on every cache hit too, so a cached token is accepted exactly when a fresh one would be.
 */
export function checkTimes(
  claims: Readonly<Record<string, unknown>>,
  now: number,
  tolerance: number,
): void {
  const { iat, nbf, exp } = claims
  if (typeof iat !== 'number')
    throw fail('token_invalid', 'The token has no valid "iat".', 'iat_invalid', 'iat')
  if (nbf !== undefined && typeof nbf !== 'number') {
    throw fail('token_invalid', 'The token "nbf" is not a number.', 'nbf_invalid', 'nbf')
  }
  if (typeof exp !== 'number')
    throw fail('token_invalid', 'The token has no valid "exp".', 'exp_invalid', 'exp')
  if (nbf !== undefined && nbf > now + tolerance) {
    throw fail('token_expired', 'The token is not valid yet.', 'nbf_future', 'nbf')
  }
  if (exp <= now - tolerance)
    throw fail('token_expired', 'The token has expired.', 'expired', 'exp')
  const age = now - iat
  if (age < -tolerance)
    throw fail('token_expired', 'The token was issued in the future.', 'iat_future', 'iat')
  if (age - tolerance > Number.MAX_SAFE_INTEGER) {
    throw fail('token_invalid', 'The token has no valid "iat".', 'iat_invalid', 'iat')
  }
}

/** `iss` exact, `aud` naming an accepted audience (never `azp`), as jose's `issuer`/`audience` options. */
export function checkIssuerAndAudience(
  claims: Readonly<Record<string, unknown>>,
  policy: ClaimsPolicy,
): void {
  if (!Object.hasOwn(claims, 'iss') || claims.iss !== policy.issuer) {
    throw fail('token_invalid', 'The token comes from another issuer.', 'issuer', 'iss')
  }
  const aud = claims.aud
  const { audiences } = policy
  const ours =
    Object.hasOwn(claims, 'aud') &&
    (typeof aud === 'string'
      ? audiences.includes(aud)
      : Array.isArray(aud) && audiences.some((audience) => aud.includes(audience)))
  if (!ours)
    throw fail('audience_mismatch', 'The token is meant for another audience.', 'audience', 'aud')
}

function normalizeTyp(value: string): string {
  // The values providers actually send, without building a string each time.
  if (value === 'JWT') return 'application/jwt'
  if (value === 'at+jwt') return 'application/at+jwt'
  const lower = value.toLowerCase()
  return value.includes('/') ? lower : `application/${lower}`
}

/** Claims only an ID token has (OIDC Core §2, §3.3.2.11). */
const ID_TOKEN_CLAIMS = ['nonce', 'at_hash', 'c_hash', 's_hash'] as const
/** Claims of access tokens that ID tokens lack: scopes, the client they were issued to. */
const ACCESS_TOKEN_CLAIMS = ['scope', 'scp', 'client_id', 'cid', 'appid'] as const

/**
 * The claim that shows an untyped JWT to be an ID token, or `undefined`. An ID token names the
 * client it was issued to as its audience, alone (`azp`, when present, is that client too), and
 * carries no scope; an access token names the resource and the client that asked for it.
 */
function idTokenMark(
  claims: Readonly<Record<string, unknown>>,
  clientId: string,
): string | undefined {
  for (const name of ID_TOKEN_CLAIMS) if (Object.hasOwn(claims, name)) return name
  // Amazon Cognito says which token it is.
  if (claims.token_use === 'id') return 'token_use'
  const aud = claims.aud
  const clientAlone =
    aud === clientId || (Array.isArray(aud) && aud.length === 1 && aud[0] === clientId)
  if (!clientAlone) return undefined
  for (const name of ACCESS_TOKEN_CLAIMS) if (Object.hasOwn(claims, name)) return undefined
  if (typeof claims.azp === 'string' && claims.azp !== clientId) return undefined
  return 'aud'
}

function idToken(claim: string): SsoError {
  return fail('token_invalid', 'The token is an ID token, not an access token.', 'id_token', claim)
}

/**
 * What an access token must be beyond a valid JWT: the right kind of token (RFC 8725 §3.11,
 * RFC 9068 §2.1), a subject, and no sender constraint ssokit cannot check (`cnf`, RFC 9449).
 */
export function checkAccessToken(
  header: Readonly<Record<string, unknown>>,
  claims: Readonly<Record<string, unknown>>,
  policy: ClaimsPolicy,
): void {
  if (typeof claims.sub !== 'string' || claims.sub === '') {
    throw fail('token_invalid', 'The token has no subject.', 'sub_invalid', 'sub')
  }
  const headerTyp = typeof header.typ === 'string' ? normalizeTyp(header.typ) : undefined
  const rfc9068 = headerTyp === 'application/at+jwt'
  if (!policy.acceptAnyTokenType) {
    const claimTyp = claims.typ
    const keycloak = claimTyp === 'Bearer'
    // Keycloak stamps every token it issues: "ID", "Refresh", "Offline", "Logout" are never access tokens.
    if (claimTyp === 'ID') throw idToken('typ')
    const typeOk =
      (claimTyp === undefined || keycloak) &&
      (headerTyp === undefined || headerTyp === 'application/jwt' || rfc9068) &&
      (policy.tokenType === 'at+jwt'
        ? rfc9068
        : policy.tokenType === 'Bearer'
          ? keycloak
          : policy.tokenType === 'jwt' || rfc9068 || keycloak)
    if (!typeOk)
      throw fail('token_invalid', 'The token is not an access token.', 'token_type', 'typ')
    if (!rfc9068 && !keycloak) {
      // Only the `jwt` policy gets here: an untyped token must not look like an ID token.
      const mark = idTokenMark(claims, policy.clientId)
      if (mark !== undefined) throw idToken(mark)
      if (Object.hasOwn(claims, 'events')) {
        throw fail('token_invalid', 'The token is not an access token.', 'token_type', 'events')
      }
    }
  }
  if (rfc9068) {
    // RFC 9068 §2.2 required claims (Keycloak tokens carry `azp` instead of `client_id`).
    if (typeof claims.client_id !== 'string' || typeof claims.jti !== 'string') {
      throw fail(
        'token_invalid',
        'The token lacks claims an RFC 9068 access token must have.',
        'rfc9068_claims',
      )
    }
  }
  if (Object.hasOwn(claims, 'cnf')) {
    throw fail(
      'token_invalid',
      'Sender-constrained tokens are not accepted as bearer tokens.',
      'cnf',
      'cnf',
    )
  }
}

/** A member of a parsed JSON object, never one inherited from a prototype. */
function own(value: unknown, name: string): unknown {
  return typeof value === 'object' && value !== null && Object.hasOwn(value, name)
    ? (value as Record<string, unknown>)[name]
    : undefined
}

const NO_STRINGS: readonly string[] = Object.freeze([])

function stringsOf(value: unknown): readonly string[] {
  if (!Array.isArray(value)) return NO_STRINGS
  const items = value as unknown[]
  // Role lists are nearly always all strings: then the list itself serves, without a copy.
  for (const item of items) {
    if (typeof item !== 'string') return items.filter((v): v is string => typeof v === 'string')
  }
  return items as string[]
}

const SPACES = /\s+/
const SPACES_AND_COMMAS = /[\s,]+/

/** A role claim's value as role names, or `undefined` when it is neither a list nor a string. */
function rolesOfValue(value: unknown, separator: RegExp): readonly string[] | undefined {
  if (Array.isArray(value)) return stringsOf(value)
  if (typeof value !== 'string') return undefined
  return value.split(separator).filter((role) => role !== '')
}

/** Claim names that would reach an object's prototype instead of a claim. */
export const FORBIDDEN_STEPS: ReadonlySet<string> = new Set([
  '__proto__',
  'constructor',
  'prototype',
])

/** Why a claim path cannot be used, or `undefined` when it can. */
export function claimPathProblem(path: unknown): string | undefined {
  if (typeof path !== 'string' || path === '') return 'must be a non-empty string'
  if (path.split('.').some((step) => step === '' || FORBIDDEN_STEPS.has(step))) {
    return 'must be a claim name or a dotted path without empty steps or __proto__/constructor/prototype'
  }
  return undefined
}

/**
 * Reads the value at a claim path. At each level the longest run of steps that names a member is
 * taken first, so `resource_access.my.app.roles` finds the client `my.app`, and
 * `https://example.org/roles` is one claim; a shorter run is tried when the longer one leads
 * nowhere.
 */
export function claimPathReader(
  path: string,
): (claims: Readonly<Record<string, unknown>>) => unknown {
  const steps = path.split('.')
  if (steps.length === 1) return (claims) => own(claims, path)
  // names[from][length - 1]: the `length` steps from `from` joined, built once.
  const names = steps.map((_, from) =>
    steps.slice(from).map((__, length) => steps.slice(from, from + length + 1).join('.')),
  )
  const walk = (value: unknown, from: number): unknown => {
    const row = names[from] ?? []
    for (let length = row.length; length > 0; length--) {
      const child = own(value, row[length - 1] ?? '')
      if (child === undefined) continue
      if (from + length === steps.length) return child
      const found = walk(child, from + length)
      if (found !== undefined) return found
    }
    return undefined
  }
  return (claims) => walk(claims, 0)
}

function pathRoles(path: string): RoleReader {
  const read = claimPathReader(path)
  const separator = path === 'scope' || path === 'scp' ? SPACES : SPACES_AND_COMMAS
  return (claims) => rolesOfValue(read(claims), separator)
}

/** Builds the role reader once, when the verifier is created. */
export function roleReader(source: RoleSource, clientId: string): RoleReader {
  if (typeof source === 'function') {
    return (claims) => {
      deepFreeze(claims)
      return source(claims)
    }
  }
  if (source === 'auto') {
    return (claims) => {
      const cern = own(claims, 'cern_roles')
      if (Array.isArray(cern)) return stringsOf(cern)
      const client = own(own(own(claims, 'resource_access'), clientId), 'roles')
      return Array.isArray(client) ? stringsOf(client) : undefined
    }
  }
  if (typeof source === 'string') return pathRoles(source)
  const readers = source.map(pathRoles)
  const [only] = readers
  if (readers.length === 1 && only !== undefined) return only
  return (claims) => {
    let found: string[] | undefined
    for (const read of readers) {
      const roles = read(claims)
      if (roles !== undefined) (found ??= []).push(...roles)
    }
    return found
  }
}

/** Why a role source cannot be used, or `undefined` when it can (for option checks). */
export function roleSourceProblem(source: unknown): string | undefined {
  if (source === 'auto' || typeof source === 'function') return undefined
  const paths = Array.isArray(source) ? (source as unknown[]) : [source]
  if (typeof source !== 'string' && !Array.isArray(source)) {
    return 'must be "auto", a claim name or dotted path, a list of them, or a function'
  }
  if (paths.length === 0) return 'must name at least one claim'
  for (const path of paths) {
    const problem = claimPathProblem(path)
    if (problem !== undefined) return `contains ${JSON.stringify(path)}, which ${problem}`
  }
  return undefined
}

/** The role claims a source reads, for a warning; `undefined` for a function. */
export function roleClaimPaths(
  source: RoleSource,
  clientId: string,
): readonly string[] | undefined {
  if (typeof source === 'function') return undefined
  if (source === 'auto') return ['cern_roles', `resource_access.${clientId}.roles`]
  return typeof source === 'string' ? [source] : [...source]
}

/**
 * The `role_claim_missing` warning: a token (of `iss`) without any of the configured role claims.
 * Reported once per verifier or session: it usually means the `roles` option names the wrong claim.
 */
export function roleClaimMissing(paths: readonly string[], iss: unknown): SsoEvent {
  const names = paths.map((path) => `"${path}"`).join(' or ')
  return {
    type: 'config_warning',
    level: 'warn',
    message:
      `A token of ${loggable(iss, 200) ?? 'the issuer'} carries no ${names} claim, so its ` +
      'identity has no roles. If this provider puts roles in another claim (groups, roles, ' +
      'realm_access.roles, scope, ...), name it with the roles option.',
    reason: 'role_claim_missing',
    claim: paths.join(','),
    iss: loggable(iss),
  }
}

/**
 * The username of an identity: `preferred_username`, else the configured claim (default
 * `cern_upn`), else `email`, else `sub`. Empty strings count as absent.
 */
export function usernameReader(
  claim: string | undefined,
): (claims: Readonly<Record<string, unknown>>) => string {
  const configured = claimPathReader(claim ?? 'cern_upn')
  const text = (value: unknown): string | undefined =>
    typeof value === 'string' && value !== '' ? value : undefined
  return (claims) =>
    text(own(claims, 'preferred_username')) ??
    text(configured(claims)) ??
    text(own(claims, 'email')) ??
    (own(claims, 'sub') as string)
}

/**
 * A role set that cannot be changed: cached identities are shared between requests. It wraps a
 * `Set` rather than extending it, so no `Set.prototype.add.call` can reach the contents.
 */
export class RoleSet implements ReadonlySet<string> {
  readonly #roles: Set<string>

  constructor(roles: Iterable<string>) {
    const set = new Set<string>()
    for (const role of roles) if (typeof role === 'string') set.add(role)
    this.#roles = set
    Object.freeze(this)
  }

  get size(): number {
    return this.#roles.size
  }
  has(role: string): boolean {
    return this.#roles.has(role)
  }
  forEach(
    callback: (value: string, key: string, set: ReadonlySet<string>) => void,
    thisArg?: unknown,
  ): void {
    for (const role of this.#roles) callback.call(thisArg, role, role, this)
  }
  entries(): SetIterator<[string, string]> {
    return this.#roles.entries()
  }
  keys(): SetIterator<string> {
    return this.#roles.keys()
  }
  values(): SetIterator<string> {
    return this.#roles.values()
  }
  [Symbol.iterator](): SetIterator<string> {
    return this.#roles.values()
  }
  toJSON(): string[] {
    return [...this.#roles]
  }
}

function deepFreeze(root: object): void {
  // JSON values only (own enumerable members, no accessors, no cycles); a loop, not recursion,
  // so deeply nested claims cannot exhaust the stack.
  const pending: object[] = [root]
  for (let value = pending.pop(); value !== undefined; value = pending.pop()) {
    Object.freeze(value)
    for (const name in value) {
      const child = (value as Record<string, unknown>)[name]
      if (typeof child === 'object' && child !== null) pending.push(child)
    }
  }
}

const SERVICE_PREFIX = 'service-account-'

function optionalString(
  claims: Readonly<Record<string, unknown>>,
  name: string,
): string | undefined {
  const value = own(claims, name)
  return typeof value === 'string' ? value : undefined
}

/**
 * The claims of a token that was verified before: its payload decoded again. A verified token's
 * payload always decodes; the empty object is never reached.
 */
function claimsOfToken(token: string): Record<string, unknown> {
  const first = token.indexOf('.')
  return decodeJsonObject(token.slice(first + 1, token.indexOf('.', first + 1))) ?? {}
}

/**
 * An identity from a verified access token. Frozen; its claims are frozen on first read. A cached
 * identity holds the token instead of its claims (the cache holds the token anyway) and decodes
 * them on first read: most requests never read them, and a parsed claims object is most of what
 * an entry would otherwise weigh.
 */
class BearerIdentity implements Identity {
  readonly subject: string
  readonly username: string
  readonly email: string | undefined
  readonly name: string | undefined
  readonly roles: ReadonlySet<string>
  readonly kind: 'user' | 'service'
  readonly via = 'bearer' as const
  /** The claims, or the token to decode them from. */
  #claims: Record<string, unknown> | string
  #frozen = false

  constructor(
    claims: Record<string, unknown>,
    roles: ReadonlySet<string>,
    username: string,
    token?: string,
  ) {
    const subject = claims.sub as string
    const clientId = optionalString(claims, 'client_id')
    this.subject = subject
    this.username = username
    this.email = optionalString(claims, 'email')
    this.name = optionalString(claims, 'name')
    this.roles = roles
    this.kind =
      subject.startsWith(SERVICE_PREFIX) ||
      username.startsWith(SERVICE_PREFIX) ||
      (clientId !== undefined && clientId === subject)
        ? 'service'
        : 'user'
    this.#claims = token ?? claims
    Object.freeze(this)
  }

  // Most requests never read the raw claims, and nothing else holds them: freeze them lazily.
  get claims(): Readonly<Record<string, unknown>> {
    let claims = this.#claims
    if (!this.#frozen) {
      if (typeof claims === 'string') claims = this.#claims = claimsOfToken(claims)
      deepFreeze(claims)
      this.#frozen = true
    }
    return claims as Record<string, unknown>
  }

  toJSON(): Record<string, unknown> {
    const { subject, username, email, name, kind, via, claims } = this
    return { subject, username, email, name, roles: [...this.roles], kind, via, claims }
  }
}

export function buildIdentity(
  claims: Record<string, unknown>,
  roles: Iterable<string>,
  username: string,
): Identity {
  return new BearerIdentity(claims, new RoleSet(roles), username)
}

/**
 * The same identity as `identity` (built from `claims`), to keep in the verified-token cache:
 * it shares the roles and holds the token rather than the parsed claims.
 */
export function cachedIdentity(
  claims: Record<string, unknown>,
  identity: Identity,
  token: string,
): Identity {
  return new BearerIdentity(claims, identity.roles, identity.username, token)
}
