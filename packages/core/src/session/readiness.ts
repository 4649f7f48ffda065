/**
 * `SessionAuth.ready()`: the start-up check of everything a sign-in needs (the discovery
 * document and its issuer, the endpoints, the provider's keys, the session store), each failure
 * named, logged once through the event hook, and cleared when it heals.
 */
import type { AuthorizationServer } from 'oauth4webapi'

import { isSsoError, SsoError } from '../errors.js'
import type { BearerAuthenticator } from '../verify/bearer.js'
import { JwksCache } from '../verify/jwks.js'
import { urlProblem } from '../verify/verifier.js'
import type { SessionContext } from './context.js'
import { storeProblemMessage } from './reporting-store.js'
import { retryAfterOf, STORE_RETRY_AFTER_S } from './store-errors.js'

/** The id `ready()` reads from a store without a `ready()` of its own. */
const READY_PROBE_ID = 'ready-probe'
/** A key set found good is not fetched again by `ready()` for this long. */
const KEYS_CHECKED_MS = 5 * 60_000

export class Readiness {
  readonly #context: SessionContext
  readonly #bearer: BearerAuthenticator | undefined
  #keys: { readonly uri: string; readonly cache: JwksCache } | undefined

  constructor(context: SessionContext, bearer: BearerAuthenticator | undefined) {
    this.#context = context
    this.#bearer = bearer
  }

  /** Resolves when sign-in and bearer checks can work; rejects with every cause found. */
  async check(): Promise<void> {
    const problems: SsoError[] = []
    const note = (error: unknown): void => {
      problems.push(
        isSsoError(error)
          ? error
          : new SsoError('provider_unavailable', 'The identity provider cannot be reached.', {
              cause: error,
            }),
      )
    }
    await Promise.all([this.#provider().catch(note), this.#store().catch(note)])
    const [first] = problems
    if (first === undefined) return
    if (problems.length === 1) throw first
    throw new SsoError(first.code, problems.map((problem) => problem.message).join(' '), {
      cause: problems,
      retryAfter: Math.max(...problems.map((problem) => problem.retryAfter ?? 1)),
    })
  }

  async #provider(): Promise<void> {
    const { provider, events } = this.#context
    const metadata = await provider.check()
    const missing = (['authorization_endpoint', 'token_endpoint'] as const).filter(
      (name) => typeof metadata[name] !== 'string',
    )
    if (missing.length > 0) {
      const message = `The discovery document names no ${missing.join(' and no ')}: this provider cannot sign users in with the authorization code flow.`
      events.problem('discovery', 'discovery_endpoints_missing', {
        type: 'discovery_failed',
        level: 'error',
        message,
        reason: 'discovery_endpoints_missing',
      })
      throw new SsoError('provider_unavailable', message, { retryAfter: 10 })
    }
    this.#clientAuth(metadata)
    if (this.#bearer !== undefined) {
      // The bearer side reads the same provider's keys (or the configured jwksUri): its check
      // covers the keys of ID tokens as well.
      await this.#bearer.ready()
      return
    }
    await this.#keySet(metadata.jwks_uri).ensureFresh()
  }

  /** The configured client authentication (or the one discovery chooses) must be one the provider accepts. */
  #clientAuth(metadata: AuthorizationServer): void {
    const { clientAuth, events } = this.#context
    try {
      clientAuth.method(metadata)
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error)
      events.problem('client_auth', 'client_auth_unsupported', {
        type: 'discovery_failed',
        level: 'error',
        message,
        reason: 'client_auth_unsupported',
        code: 'client_auth_failed',
      })
      throw error
    }
    events.resolve('client_auth', {
      type: 'provider_recovered',
      level: 'info',
      message: 'The identity provider accepts the configured client authentication again.',
    })
  }

  #keySet(uri: string | undefined): JwksCache {
    const { config, events } = this.#context
    const jwksUri = uri ?? ''
    if (this.#keys?.uri !== jwksUri) {
      const fetcher = config.fetch ?? ((input, init) => fetch(input, init))
      this.#keys = {
        uri: jwksUri,
        cache: new JwksCache({
          issuer: config.issuer,
          // Without a jwks_uri the cache reads discovery itself and reports what is wrong.
          jwksUri: uri,
          fetch: fetcher,
          now: config.now,
          cooldownMs: 1000,
          maxAgeMs: KEYS_CHECKED_MS,
          staleIfErrorMs: KEYS_CHECKED_MS,
          timeoutMs: config.httpTimeoutMs,
          checkUrl: (url, what) => urlProblem(url, what, config.allowHttpIssuer),
          events,
        }),
      }
    }
    return this.#keys.cache
  }

  async #store(): Promise<void> {
    const store = this.#context.config.store
    try {
      if (store.ready === undefined) await store.get(READY_PROBE_ID)
      else await store.ready()
    } catch (error) {
      throw new SsoError('session_store_unavailable', storeProblemMessage(error), {
        cause: error,
        retryAfter: retryAfterOf(error, STORE_RETRY_AFTER_S),
      })
    }
  }
}
