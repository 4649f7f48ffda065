/**
 * `<prefix>/readyz`: whether the provider and the session store answer, each named, so an
 * orchestrator stops sending traffic to a replica that cannot sign anyone in. The session
 * module's `ready()` checks the configuration and the store but keeps a good discovery document
 * for an hour, so the provider is also probed here: its discovery document, at most once every
 * few seconds however often readyz is asked (it is public). The answer names error codes only:
 * the detailed causes (URLs, addresses) go to the proxy's log, not to whoever asks.
 */
import { isSsoError, type SessionAuth } from '@ssokit/core'

/** A probe result is reused for this long, so readyz cannot be used to flood the provider. */
const PROBE_REUSE_MS = 2000
const PROBE_TIMEOUT_MS = 3000

export interface ReadyAnswer {
  readonly status: 200 | 503
  readonly retryAfter: number | undefined
  readonly body: {
    readonly status: 'ready' | 'unavailable'
    readonly provider: 'ok' | 'unavailable'
    readonly store: 'ok' | 'unavailable'
    readonly reason?: string
  }
}

export class Readiness {
  readonly #auth: SessionAuth
  readonly #discovery: string
  #probe: { readonly at: number; readonly result: Promise<boolean> } | undefined

  constructor(auth: SessionAuth, issuer: string) {
    this.#auth = auth
    this.#discovery = `${issuer.replace(/\/$/, '')}/.well-known/openid-configuration`
  }

  /** Whether the provider's discovery document answers 200 now (or a moment ago). */
  #providerAnswers(): Promise<boolean> {
    const now = performance.now()
    if (this.#probe !== undefined && now - this.#probe.at < PROBE_REUSE_MS)
      return this.#probe.result
    const result = fetch(this.#discovery, {
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
      redirect: 'manual',
    }).then(
      async (response) => {
        await response.body?.cancel()
        return response.status === 200
      },
      () => false,
    )
    this.#probe = { at: now, result }
    return result
  }

  async check(): Promise<ReadyAnswer> {
    const [answers, problem] = await Promise.all([
      this.#providerAnswers(),
      this.#auth.ready().then(
        () => undefined,
        (error: unknown) => error,
      ),
    ])
    // Several causes come as one error whose cause lists each.
    const causes: unknown[] =
      problem === undefined
        ? []
        : isSsoError(problem) && Array.isArray(problem.cause)
          ? (problem.cause as unknown[])
          : [problem]
    const codes = new Set(
      causes.map((cause) => (isSsoError(cause) ? cause.code : 'provider_unavailable')),
    )
    if (!answers) codes.add('provider_unavailable')
    if (codes.size === 0) {
      return {
        status: 200,
        retryAfter: undefined,
        body: { status: 'ready', provider: 'ok', store: 'ok' },
      }
    }
    const storeDown = codes.has('session_store_unavailable')
    const providerDown = [...codes].some((code) => code !== 'session_store_unavailable')
    return {
      status: 503,
      retryAfter: isSsoError(problem) ? (problem.retryAfter ?? 5) : 5,
      body: {
        status: 'unavailable',
        provider: providerDown ? 'unavailable' : 'ok',
        store: storeDown ? 'unavailable' : 'ok',
        reason: [...codes].sort().join(' '),
      },
    }
  }
}
