/**
 * The provider as the session module sees it: discovery metadata (re-read on a schedule, the
 * last good copy kept when a re-read fails, a changed issuer never adopted), and the request
 * options every oauth4webapi call shares (custom fetch, timeout, http for loopback issuers).
 */
import * as oauth from 'oauth4webapi'

import { SsoError } from '../errors.js'
import type { EventSink } from '../verify/events.js'
import { discoveryProblem, type ProviderProblem } from './diagnostics.js'

/** How long discovery metadata is trusted before it is read again. */
const METADATA_MAX_AGE_MS = 60 * 60 * 1000
/** After a failed discovery, how long to wait before asking again (and the Retry-After sent). */
export const PROVIDER_RETRY_AFTER_S = 10

export interface ProviderSettings {
  /** The issuer exactly as configured. */
  readonly issuer: string
  readonly fetch: typeof fetch | undefined
  readonly httpTimeoutMs: number
  readonly allowHttp: boolean
  /** The clock deciding when metadata is stale, in ms since the epoch. */
  readonly now: () => number
  /** Where a failed discovery (and its recovery) is reported. */
  readonly events: EventSink
}

export type RequestOptions = oauth.HttpRequestOptions<'GET' | 'POST', unknown> &
  oauth.JWKSCacheOptions

export class Provider {
  readonly #settings: ProviderSettings
  #metadata: oauth.AuthorizationServer | undefined
  #fetchedAt = 0
  #failedAt = 0
  /** Why the last discovery failed, until one succeeds. */
  #problem: ProviderProblem | undefined
  #pending: Promise<oauth.AuthorizationServer> | undefined
  /** Shared JWKS cache for ID token signature checks. */
  #jwksCache: oauth.JWKSCacheInput = {}
  #keysForgottenAt = -Infinity

  constructor(settings: ProviderSettings) {
    this.#settings = settings
  }

  /** Options for one oauth4webapi request: a fresh timeout each time. */
  requestOptions(): RequestOptions {
    const options: RequestOptions = {
      signal: AbortSignal.timeout(this.#settings.httpTimeoutMs),
      [oauth.jwksCache]: this.#jwksCache,
    }
    if (this.#settings.fetch) {
      const custom = this.#settings.fetch
      options[oauth.customFetch] = (url, init) => custom(url, init as RequestInit)
    }
    // http is accepted only for loopback issuers or when expressly allowed (checked in the options).
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    if (this.#settings.allowHttp) options[oauth.allowInsecureRequests] = true
    return options
  }

  /**
   * Drops the cached key set so that the next signature check fetches it again (a token signed
   * with a key we have not seen: the provider rotated). At most once every 10 seconds, so tokens
   * with made-up key ids cannot turn us into a load generator against the provider.
   */
  forgetKeys(): boolean {
    const now = this.#settings.now()
    if (now - this.#keysForgottenAt < 10_000) return false
    this.#keysForgottenAt = now
    this.#jwksCache = {}
    // oauth4webapi keeps keys per metadata object: a new object starts with no keys.
    if (this.#metadata) this.#metadata = { ...this.#metadata }
    return true
  }

  /**
   * The provider's metadata. Rejects with `provider_unavailable` only when no good copy exists;
   * a stale copy is served while a re-read runs in the background.
   */
  async metadata(): Promise<oauth.AuthorizationServer> {
    const now = this.#settings.now()
    if (this.#metadata) {
      if (now - this.#fetchedAt > METADATA_MAX_AGE_MS && !this.#pending) {
        this.#refresh().catch(() => undefined)
      }
      return this.#metadata
    }
    if (this.#pending) return this.#pending
    if (now - this.#failedAt < 1000) throw unavailable(undefined)
    return this.#refresh()
  }

  /**
   * Reads the discovery document now (unless a good copy is fresh), for `ready()`: rejects with
   * `provider_unavailable` whose message names the cause.
   */
  async check(): Promise<oauth.AuthorizationServer> {
    const now = this.#settings.now()
    if (this.#metadata && now - this.#fetchedAt <= METADATA_MAX_AGE_MS) return this.#metadata
    try {
      const metadata = await (this.#pending ?? this.#refresh())
      // A stale copy kept after a failed re-read does not prove the provider answers.
      if (this.#problem === undefined) return metadata
    } catch {
      // The cause is in #problem.
    }
    throw this.#unavailable()
  }

  #unavailable(): SsoError {
    const problem = this.#problem
    return new SsoError(
      'provider_unavailable',
      problem === undefined ? 'The identity provider cannot be reached.' : problem.message,
      {
        cause: problem === undefined ? undefined : { reason: problem.reason },
        retryAfter: PROVIDER_RETRY_AFTER_S,
      },
    )
  }

  #report(error: unknown): void {
    const problem = discoveryProblem(error, this.#settings.issuer)
    this.#problem = problem
    this.#settings.events.problem('discovery', problem.reason, {
      type: 'discovery_failed',
      level: problem.level,
      message: problem.message,
      reason: problem.reason,
      url: problem.url,
    })
  }

  #refresh(): Promise<oauth.AuthorizationServer> {
    const run = async (): Promise<oauth.AuthorizationServer> => {
      try {
        const issuer = this.#settings.issuer
        const response = await oauth.discoveryRequest(new URL(issuer), this.requestOptions())
        const metadata = await oauth.processDiscoveryResponse(new URL(issuer), response)
        // oauth4webapi compares issuers as parsed URLs, where `https://host` and `https://host/`
        // are one; tokens carry the string, so the string must match exactly (Discovery §4.3).
        if (metadata.issuer !== issuer) throw new IssuerMismatchError(issuer, metadata.issuer)
        this.#metadata = metadata
        this.#fetchedAt = this.#settings.now()
        this.#problem = undefined
        this.#settings.events.resolve('discovery', {
          type: 'provider_recovered',
          level: 'info',
          message: 'The identity provider’s discovery document can be read again.',
        })
        return metadata
      } catch (error) {
        const now = this.#settings.now()
        this.#failedAt = now
        this.#report(error)
        if (this.#metadata) {
          // Keep the last good copy; try again after the retry delay rather than the full age.
          this.#fetchedAt = now - METADATA_MAX_AGE_MS + PROVIDER_RETRY_AFTER_S * 1000
          return this.#metadata
        }
        throw unavailable(error)
      } finally {
        this.#pending = undefined
      }
    }
    this.#pending = run()
    return this.#pending
  }
}

/** The discovery document names an issuer that is not, character for character, the configured one. */
export class IssuerMismatchError extends Error {
  override readonly name = 'IssuerMismatchError'
  constructor(
    readonly configured: string,
    readonly discovered: string,
  ) {
    super(
      `The discovery document names the issuer ${JSON.stringify(discovered)}, not the configured ${JSON.stringify(configured)}.`,
    )
  }
}

export function unavailable(cause: unknown): SsoError {
  return new SsoError('provider_unavailable', 'The identity provider cannot be reached.', {
    cause,
    retryAfter: PROVIDER_RETRY_AFTER_S,
  })
}

/**
 * Whether a failure talking to the provider is transient (network, timeout, 5xx) rather than
 * an answer (an OAuth error, a token that fails validation).
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof oauth.ResponseBodyError) return error.status >= 500
  if (error instanceof oauth.WWWAuthenticateChallengeError) return false
  if (error instanceof oauth.OperationProcessingError) {
    const cause: unknown = error.cause
    if (cause instanceof Response) return cause.status >= 500
    return false
  }
  if (error instanceof oauth.AuthorizationResponseError) return false
  // fetch failures (TypeError), aborts and timeouts (DOMException)
  return true
}
