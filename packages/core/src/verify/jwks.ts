import { createPublicKey, type JsonWebKey as NodeJwk, type KeyObject } from 'node:crypto'

import { SsoError } from '../errors.js'
import { MIN_RSA_BITS, verifyInput, type AlgorithmEntry, type VerifyKey } from './algorithms.js'
import { isPlainObject } from './compact.js'
import { loggable, loggableUrl, type EventSink } from './events.js'

/** One usable public key from the provider's JWKS. */
export class JwksKey {
  readonly kid: string | undefined
  readonly kty: string
  readonly crv: string | undefined
  readonly alg: string | undefined
  readonly key: KeyObject
  readonly #inputs = new Map<string, VerifyKey>()

  constructor(
    kid: string | undefined,
    kty: string,
    crv: string | undefined,
    alg: string | undefined,
    key: KeyObject,
  ) {
    this.kid = kid
    this.kty = kty
    this.crv = crv
    this.alg = alg
    this.key = key
  }

  /** Same rules as jose's JWKS key selection (kty, crv, alg). `use`/`key_ops` were checked on load. */
  fits(entry: AlgorithmEntry): boolean {
    return (
      this.kty === entry.kty &&
      (entry.crv === undefined || this.crv === entry.crv) &&
      (this.alg === undefined || this.alg === entry.alg)
    )
  }

  /** The `crypto.verify` key argument for an algorithm, built once. */
  input(entry: AlgorithmEntry): VerifyKey {
    let input = this.#inputs.get(entry.alg)
    if (input === undefined) {
      input = verifyInput(this.key, entry)
      this.#inputs.set(entry.alg, input)
    }
    return input
  }
}

export interface JwksCacheOptions {
  readonly issuer: string
  /** The configured JWKS URI, or `undefined` to read it from discovery. */
  readonly jwksUri: string | undefined
  readonly fetch: typeof fetch
  readonly now: () => number
  readonly cooldownMs: number
  readonly maxAgeMs: number
  readonly staleIfErrorMs: number
  readonly timeoutMs: number
  readonly checkUrl: (url: string, what: string) => string | undefined
  readonly events: EventSink
}

/** Bodies above this size are not a JWKS. */
const MAX_BODY = 1_000_000

/** Why the provider could not be read: a short reason and a sentence naming the URL and the fix. */
class FetchFailure extends Error {
  readonly reason: string
  readonly url: string | undefined
  constructor(reason: string, message: string, url?: string) {
    super(message)
    this.reason = reason
    this.url = url
  }
}

const LABEL = { discovery: 'The discovery document', jwks: 'The key set' } as const

/** A network failure in words: the system error code (`ECONNREFUSED`, ...) or a timeout. */
export function networkCause(error: unknown): string {
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
    return 'no answer in time'
  let current: unknown = error
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code
    if (typeof code === 'string' && /^E[A-Z_]+$/.test(code)) return code
    current = current.cause
  }
  return 'network error'
}

/** What a non-200 answer most likely means, in a few words for the log line. */
function httpHint(what: 'discovery' | 'jwks', status: number): string {
  if (status === 404 && what === 'discovery')
    return ': is the issuer right (the realm name, the /auth prefix of older Keycloak)?'
  if (status === 404) return ': is jwksUri right?'
  return ''
}

/** The log line of an issuer mismatch, with a hint for the two usual slips. */
export function issuerMismatchMessage(url: string, found: unknown, configured: string): string {
  const shown = typeof found === 'string' ? `"${loggable(found, 200)}"` : 'no issuer'
  let hint = ' Set the issuer to exactly the value the provider publishes.'
  if (typeof found === 'string' && found.replace(/\/$/, '') === configured.replace(/\/$/, '')) {
    hint = " They differ only by a trailing slash: set the issuer to exactly the provider's value."
  }
  return `${LABEL.discovery} ${loggableUrl(url)} names the issuer ${shown}, not the configured "${loggable(configured, 200)}".${hint}`
}

/** The `cause` of a token rejection: a short reason for logs, never shown to clients. */
export interface RejectReason {
  readonly reason: string
}

function refuse(message: string, reason: string): SsoError {
  const cause: RejectReason = { reason }
  return new SsoError(
    'token_invalid',
    message,
    reason === 'kid_invalid' ? { claim: 'kid', cause } : { cause },
  )
}

/**
 * The provider's signing keys, cached by `kid`.
 *
 * - One fetch at a time, shared by every concurrent caller; the cooldown (or, after a failure, the
 *   back-off) is counted from the end of an attempt, so a provider that hangs until the timeout
 *   is not asked again at once.
 * - An unknown `kid` triggers at most one fetch per cooldown.
 * - A failed or empty refresh never replaces a good set; unusable keys are skipped one by one.
 * - Stale-while-revalidate: a set older than `maxAgeMs` keeps answering while a refresh runs in
 *   the background, so a request the current keys can answer never waits for the network. While
 *   the provider is unreachable the old keys keep working for up to `staleIfErrorMs`.
 * - With no matching key and no way to fetch one, callers get `provider_unavailable` (503).
 */
export class JwksCache {
  readonly #options: JwksCacheOptions
  #keys: readonly JwksKey[] | undefined
  #byKid = new Map<string, JwksKey[]>()
  /** Kids published but unusable (weak, malformed, wrong type): known, so no refetch for them. */
  #unusableKids = new Set<string>()
  #current = new WeakSet<JwksKey>()
  #loadedAt = 0
  #nextAttemptAt = Number.NEGATIVE_INFINITY
  #failures = 0
  #lastFailed = false
  /** The last failure, for the message of `provider_unavailable` and of `ready()`. */
  #lastProblem: FetchFailure | undefined
  #inflight: Promise<void> | undefined
  #jwksUri: string | undefined

  constructor(options: JwksCacheOptions) {
    this.#options = options
    this.#jwksUri = options.jwksUri
  }

  /** Whether a key is still part of the published set (a withdrawn key stops verifying). */
  isCurrent(key: JwksKey): boolean {
    return this.#current.has(key)
  }

  /** Whether the keys at hand cannot answer: callers must wait for `ensureFresh` first. */
  get stale(): boolean {
    return this.staleAt(this.#options.now())
  }

  /**
   * `stale` at a time the caller has already read from the clock. A set past its maximum age but
   * within the stale-if-error bound still answers (not stale); it starts a background refresh.
   */
  staleAt(now: number): boolean {
    if (this.#keys === undefined || now - this.#loadedAt > this.#options.staleIfErrorMs) return true
    if (now - this.#loadedAt > this.#options.maxAgeMs) this.#revalidate()
    return false
  }

  /** Starts a refresh nobody waits for; its failure is reported by `#load` and changes nothing. */
  #revalidate(): void {
    void this.#refresh()
  }

  /**
   * Loads the set when missing or older than the maximum age, waiting for it (for readiness and
   * for requests the keys at hand cannot answer). Throws only when no key is usable.
   */
  async ensureFresh(): Promise<void> {
    const { now, maxAgeMs } = this.#options
    if (this.#keys !== undefined && now() - this.#loadedAt <= maxAgeMs) return
    await this.#refresh()
    if (this.#keys !== undefined && now() - this.#loadedAt > this.#options.staleIfErrorMs) {
      this.#commit(undefined)
    }
    if (this.#keys === undefined) throw this.#unavailable()
  }

  /** The key for a header when the set is fresh and one key matches, without waiting; else `undefined`. */
  selectNow(header: Record<string, unknown>, entry: AlgorithmEntry): JwksKey | undefined {
    if (this.stale) return undefined
    const kid = header.kid
    if (kid !== undefined && typeof kid !== 'string') return undefined
    const found = this.#match(kid, entry)
    return typeof found === 'string' ? undefined : found
  }

  /** Picks the key for a token header; refetches once per cooldown for an unknown `kid`. */
  async select(header: Record<string, unknown>, entry: AlgorithmEntry): Promise<JwksKey> {
    let kid: string | undefined
    if (Object.hasOwn(header, 'kid')) {
      if (typeof header.kid !== 'string')
        throw refuse('The token key id is not a string.', 'kid_invalid')
      kid = header.kid
    }
    if (this.stale) await this.ensureFresh()
    let found = this.#match(kid, entry)
    if (found === 'none' && (kid === undefined || !this.#known(kid))) {
      await this.#refresh()
      found = this.#match(kid, entry)
      if (found === 'none' && this.#lastFailed && (kid === undefined || !this.#known(kid))) {
        throw this.#unavailable()
      }
    }
    if (found === 'none') throw refuse('No published key matches the token.', 'kid_unknown')
    if (found === 'many') throw refuse('Several published keys match the token.', 'kid_ambiguous')
    return found
  }

  /** Fetches now unless a fetch is in flight (joins it) or the cooldown has not passed. */
  #refresh(): Promise<void> {
    if (this.#inflight !== undefined) return this.#inflight
    if (this.#options.now() < this.#nextAttemptAt) return Promise.resolve()
    this.#inflight = this.#load().finally(() => {
      this.#inflight = undefined
    })
    return this.#inflight
  }

  #known(kid: string): boolean {
    return this.#byKid.has(kid) || this.#unusableKids.has(kid)
  }

  #match(kid: string | undefined, entry: AlgorithmEntry): JwksKey | 'none' | 'many' {
    const pool = kid === undefined ? this.#keys : this.#byKid.get(kid)
    let found: JwksKey | undefined
    for (const key of pool ?? []) {
      if (!key.fits(entry)) continue
      if (found !== undefined) return 'many'
      found = key
    }
    return found ?? 'none'
  }

  #unavailable(): SsoError {
    const wait = Math.max(1, Math.ceil((this.#nextAttemptAt - this.#options.now()) / 1000))
    const problem = this.#lastProblem
    return new SsoError(
      'provider_unavailable',
      problem === undefined
        ? 'The provider keys cannot be obtained.'
        : `The provider keys cannot be obtained. ${problem.message}`,
      {
        retryAfter: Number.isFinite(wait) ? wait : 1,
        ...(problem === undefined ? {} : { cause: { reason: problem.reason } }),
      },
    )
  }

  async #load(): Promise<void> {
    const { now, cooldownMs, events } = this.#options
    try {
      const uri = this.#jwksUri ?? (await this.#discover())
      const keys = await this.#fetchKeys(uri)
      this.#commit(keys)
      this.#nextAttemptAt = now() + cooldownMs
      this.#failures = 0
      this.#lastFailed = false
      this.#lastProblem = undefined
      events.emit({
        type: 'jwks_refreshed',
        level: 'info',
        message: 'Signing keys loaded.',
        count: keys.length,
      })
      events.resolve('jwks', {
        type: 'provider_recovered',
        level: 'info',
        message: 'The provider keys can be loaded again.',
        count: keys.length,
      })
    } catch (error) {
      this.#failures++
      this.#lastFailed = true
      // Back off quickly at first so a provider that comes back is noticed, never faster than 1 s.
      const backoff = Math.min(cooldownMs, 1000 * 2 ** Math.min(this.#failures - 1, 16))
      // From the end of the attempt: one that hung until the timeout must not be retried at once.
      this.#nextAttemptAt = now() + backoff * (0.75 + Math.random() * 0.25)
      const failure =
        error instanceof FetchFailure
          ? error
          : new FetchFailure('network', 'The provider keys could not be read.')
      this.#lastProblem = failure
      const reason = failure.reason
      const kept = this.#keys === undefined ? '' : ' Cached keys stay in use.'
      // A 4xx or a wrong document does not heal by itself: a configuration mistake.
      const mistake = !/_unreachable$|_http_5\d\d$/.test(reason) && reason !== 'network'
      events.problem('jwks', reason, {
        type: reason.startsWith('discovery') ? 'discovery_failed' : 'jwks_refresh_failed',
        level: mistake ? 'error' : 'warn',
        message: `${failure.message}${kept}`,
        reason,
        url: failure.url,
      })
    }
  }

  #commit(keys: readonly JwksKey[] | undefined): void {
    this.#keys = keys
    this.#byKid = new Map()
    this.#current = new WeakSet()
    if (keys === undefined) return
    this.#loadedAt = this.#options.now()
    for (const key of keys) {
      this.#current.add(key)
      if (key.kid === undefined) continue
      const list = this.#byKid.get(key.kid)
      if (list === undefined) this.#byKid.set(key.kid, [key])
      else list.push(key)
    }
  }

  async #getJson(url: string, what: 'discovery' | 'jwks'): Promise<unknown> {
    const shown = loggableUrl(url)
    const label = `${LABEL[what]} ${shown}`
    const unreachable = (error: unknown): FetchFailure =>
      new FetchFailure(
        `${what}_unreachable`,
        `${label} cannot be fetched (${networkCause(error)}): is the provider reachable from here?`,
        shown,
      )
    let response: Response
    try {
      response = await this.#options.fetch(url, {
        headers: { accept: 'application/json' },
        redirect: 'error',
        signal: AbortSignal.timeout(this.#options.timeoutMs),
      })
    } catch (error) {
      throw unreachable(error)
    }
    if (response.status !== 200) {
      await response.body?.cancel().catch(() => undefined)
      throw new FetchFailure(
        `${what}_http_${response.status}`,
        `${label} answered HTTP ${response.status}${httpHint(what, response.status)}`,
        shown,
      )
    }
    const tooLarge = new FetchFailure(`${what}_too_large`, `${label} is too large.`, shown)
    const declared = Number(response.headers.get('content-length') ?? '0')
    if (declared > MAX_BODY) {
      await response.body?.cancel().catch(() => undefined)
      throw tooLarge
    }
    let text: string
    try {
      text = await response.text()
    } catch (error) {
      throw unreachable(error)
    }
    if (text.length > MAX_BODY) throw tooLarge
    try {
      return JSON.parse(text)
    } catch {
      throw new FetchFailure(`${what}_malformed`, `${label} is not JSON.`, shown)
    }
  }

  async #discover(): Promise<string> {
    const { issuer, checkUrl } = this.#options
    const url = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`
    const metadata = await this.#getJson(url, 'discovery')
    const shown = loggableUrl(url)
    if (!isPlainObject(metadata))
      throw new FetchFailure(
        'discovery_malformed',
        `${LABEL.discovery} ${shown} is not a JSON object.`,
        shown,
      )
    // OpenID Connect Discovery §4.3: the document must name exactly the configured issuer.
    if (metadata.issuer !== issuer) {
      throw new FetchFailure(
        'discovery_issuer_mismatch',
        issuerMismatchMessage(url, metadata.issuer, issuer),
        shown,
      )
    }
    const jwksUri = metadata.jwks_uri
    const problem =
      typeof jwksUri === 'string' ? checkUrl(jwksUri, 'its jwks_uri') : 'it has no jwks_uri'
    if (problem !== undefined || typeof jwksUri !== 'string') {
      throw new FetchFailure(
        'discovery_jwks_uri_invalid',
        `${LABEL.discovery} ${shown} cannot be used: ${problem ?? 'it has no jwks_uri'}.`,
        shown,
      )
    }
    this.#jwksUri = jwksUri
    return jwksUri
  }

  async #fetchKeys(uri: string): Promise<JwksKey[]> {
    const body = await this.#getJson(uri, 'jwks')
    const shown = loggableUrl(uri)
    if (!isPlainObject(body) || !Array.isArray(body.keys))
      throw new FetchFailure(
        'jwks_malformed',
        `${LABEL.jwks} ${shown} is not a JWKS (no "keys" list).`,
        shown,
      )
    const keys: JwksKey[] = []
    for (const jwk of body.keys as unknown[]) {
      const result = importJwk(jwk)
      if (result instanceof JwksKey) {
        keys.push(result)
        continue
      }
      const kid = isPlainObject(jwk) ? jwk.kid : undefined
      if (typeof kid === 'string') this.#unusableKids.add(kid)
      this.#options.events.warnOnce(`key:${result}:${String(kid)}`, {
        type: 'jwks_key_skipped',
        level: 'warn',
        message:
          result === 'weak_key'
            ? 'A published RSA key is shorter than 2048 bits and is not used.'
            : 'A published key cannot be used and is skipped.',
        reason: result,
        kid: loggable(kid),
      })
    }
    if (keys.length === 0)
      throw new FetchFailure(
        'jwks_no_usable_keys',
        `${LABEL.jwks} ${shown} has no key that can be used (RSA of 2048 bits or more, EC or Ed25519, for signatures).`,
        shown,
      )
    // Kids that became usable again are no longer "known unusable".
    for (const key of keys) if (key.kid !== undefined) this.#unusableKids.delete(key.kid)
    if (this.#unusableKids.size > 1000) this.#unusableKids.clear()
    return keys
  }
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k', 'priv'] as const
const CURVES: Readonly<Record<string, readonly string[]>> = {
  EC: ['P-256', 'P-384', 'P-521'],
  OKP: ['Ed25519'],
}

/** Turns one JWK into a verification key, or names why it is unusable. */
export function importJwk(jwk: unknown): JwksKey | string {
  if (!isPlainObject(jwk)) return 'not_an_object'
  const { kty, kid, alg, use, crv } = jwk
  const keyOps = jwk.key_ops
  const ext = jwk.ext
  if (kty !== 'RSA' && kty !== 'EC' && kty !== 'OKP') return 'unsupported_kty'
  if (kid !== undefined && typeof kid !== 'string') return 'bad_kid'
  if (alg !== undefined && typeof alg !== 'string') return 'bad_alg'
  if (use !== undefined && use !== 'sig') return 'not_for_signatures'
  if (ext !== undefined && typeof ext !== 'boolean') return 'bad_ext'
  if (keyOps !== undefined) {
    if (!Array.isArray(keyOps)) return 'bad_key_ops'
    const ops = keyOps as unknown[]
    if (ops.some((op, i) => typeof op !== 'string' || ops.indexOf(op) !== i)) return 'bad_key_ops'
    if (!ops.includes('verify')) return 'not_for_verification'
  }
  for (const member of PRIVATE_MEMBERS)
    if (Object.hasOwn(jwk, member)) return 'private_key_material'
  let material: Record<string, unknown>
  if (kty === 'RSA') {
    material = { kty, n: jwk.n, e: jwk.e }
  } else {
    if (typeof crv !== 'string' || !(CURVES[kty] ?? []).includes(crv)) return 'unsupported_curve'
    material = kty === 'EC' ? { kty, crv, x: jwk.x, y: jwk.y } : { kty, crv, x: jwk.x }
  }
  for (const value of Object.values(material)) if (typeof value !== 'string') return 'malformed_key'
  let key: KeyObject
  try {
    key = createPublicKey({ key: material as NodeJwk, format: 'jwk' })
  } catch {
    return 'malformed_key'
  }
  if (kty === 'RSA' && (key.asymmetricKeyDetails?.modulusLength ?? 0) < MIN_RSA_BITS)
    return 'weak_key'
  return new JwksKey(kid, kty, typeof crv === 'string' ? crv : undefined, alg, key)
}
