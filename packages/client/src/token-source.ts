/**
 * `TokenSource`, what every way of getting a token (client credentials, token exchange, and
 * later interactive logins) offers, and the one implementation that manages a credential: reuse
 * while fresh, renew under a cross-process lock, refresh token first and the grant again when
 * there is none or it is refused.
 */
import { SsoError, type SsoErrorCode } from '@ssokit/core/errors'

import type { CredentialCache } from './cache/store.js'
import { type Credential, type CredentialKey } from './credential.js'
import { isFresh } from './expiry.js'
import { audiences, stringClaim, unverifiedClaims } from './jwt.js'
import type { Logger } from './log.js'
import type { ProviderClient } from './provider.js'

/** Who a token speaks for, read from the access token without verifying it. */
export interface TokenIdentity {
  /** `sub`: a user, or `service-account-<client>` for client credentials at Keycloak/CERN. */
  readonly subject: string | undefined
  readonly username: string | undefined
  /** The client the token was issued to (`azp`). */
  readonly clientId: string | undefined
  readonly audience: readonly string[]
  readonly issuer: string | undefined
  /** When the access token expires, if known. */
  readonly expiresAt: Date | undefined
  /** Whether a refresh token is held, so a new access token needs no new grant. */
  readonly refreshable: boolean
}

export interface TokenSource {
  /** A valid access token, obtained or renewed as needed. */
  token(): Promise<string>
  /**
   * A token other than `rejected`, which the resource refused: renewed once, unless another
   * caller already replaced it. `authFetch` calls this after a `401`.
   */
  renew?(rejected: string): Promise<string>
  identity(): Promise<TokenIdentity>
  /** Revokes the refresh token where the provider can, and forgets the credential. */
  logout(): Promise<void>
}

/** How a managed source gets a credential it has none of, or renews one. */
export interface Grant {
  readonly provider: ProviderClient
  readonly key: () => Promise<CredentialKey>
  /** The grant itself: client credentials, or the token exchange. */
  readonly obtain: (key: CredentialKey, now: number) => Promise<Credential>
  /** Uses `previous.refreshToken`; absent for grants that never get one. */
  readonly refresh?: (key: CredentialKey, previous: Credential, now: number) => Promise<Credential>
  /**
   * The grant asks a person (a login): it is never repeated on its own after a provider outage,
   * which would prompt them again.
   */
  readonly interactive?: boolean
}

export interface SourceRuntime {
  readonly cache: CredentialCache | undefined
  readonly clock: () => number
  readonly log: Logger
  /** Waits between attempts after a transient failure or polls; replaced in tests. */
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>
}

/** What ends a credential for good: drop it instead of keeping it for a retry (D05). */
const FATAL: ReadonlySet<SsoErrorCode> = new Set([
  'grant_invalid',
  'client_auth_failed',
  'client_unauthorized',
  'login_required',
])

/** Attempts for a transient failure, and the wait before each retry. */
const RETRY_DELAYS_MS = [250, 1000]

/** The sources this package made, with what an exchange built on them needs. */
export const managedSources = new WeakMap<TokenSource, ManagedSource>()

export class ManagedSource implements TokenSource {
  readonly grant: Grant
  readonly #runtime: SourceRuntime
  #memory: Credential | undefined
  #pending: Promise<Credential> | undefined

  constructor(grant: Grant, runtime: SourceRuntime) {
    this.grant = grant
    this.#runtime = runtime
    managedSources.set(this, this)
  }

  async token(): Promise<string> {
    return (await this.#credential(undefined)).accessToken
  }

  async renew(rejected: string): Promise<string> {
    return (await this.#credential(rejected)).accessToken
  }

  async identity(): Promise<TokenIdentity> {
    const credential = await this.#credential(undefined)
    const claims = unverifiedClaims(credential.accessToken)
    return Object.freeze({
      subject: credential.subjectName,
      username: credential.username,
      clientId: stringClaim(claims, 'azp') ?? stringClaim(claims, 'client_id'),
      audience: audiences(claims),
      issuer: stringClaim(claims, 'iss'),
      expiresAt: credential.expiresAt === undefined ? undefined : new Date(credential.expiresAt),
      refreshable: credential.refreshToken !== undefined,
    })
  }

  async logout(): Promise<void> {
    const key = await this.grant.key()
    const { cache } = this.#runtime
    const forget = async (): Promise<Credential | undefined> => {
      const held = (cache === undefined ? undefined : await cache.read(key)) ?? this.#memory
      this.#memory = undefined
      await cache?.delete(key)
      return held
    }
    const held = cache === undefined ? await forget() : await cache.withLock(key, forget)
    if (held?.refreshToken !== undefined) await this.grant.provider.revoke(held.refreshToken)
  }

  #usable(credential: Credential | undefined, rejected: string | undefined): boolean {
    return (
      credential !== undefined &&
      credential.accessToken !== rejected &&
      isFresh(this.#runtime.clock(), credential.obtainedAt, credential.renewAt)
    )
  }

  async #credential(rejected: string | undefined): Promise<Credential> {
    const memory = this.#memory
    if (memory !== undefined && this.#usable(memory, rejected)) return memory
    // One renewal at a time in this process; the lock serialises processes.
    this.#pending ??= this.#renew(rejected).finally(() => {
      this.#pending = undefined
    })
    return this.#pending
  }

  async #renew(rejected: string | undefined): Promise<Credential> {
    const key = await this.grant.key()
    const { cache } = this.#runtime
    if (cache !== undefined) {
      // Files are replaced by an atomic rename, so a read without the lock sees a whole
      // credential: a fresh one needs no lock, and never waits behind another process's login.
      const cached = await cache.read(key)
      if (cached !== undefined && this.#usable(cached, rejected)) {
        this.#memory = cached
        return cached
      }
    }
    const work = async (): Promise<Credential> => {
      // Read again under the lock: another process may have renewed it meanwhile.
      const current = cache === undefined ? this.#memory : await cache.read(key)
      if (current !== undefined && this.#usable(current, rejected)) {
        this.#memory = current
        return current
      }
      let next: Credential
      try {
        next = await this.#obtain(key, current ?? this.#memory)
      } catch (error) {
        if (error instanceof SsoError && FATAL.has(error.code)) {
          this.#memory = undefined
          await cache?.delete(key)
        }
        throw error
      }
      await cache?.write(next)
      this.#memory = next
      return next
    }
    return cache === undefined ? work() : cache.withLock(key, work)
  }

  async #obtain(key: CredentialKey, previous: Credential | undefined): Promise<Credential> {
    const { grant } = this
    const { log, clock, cache } = this.#runtime
    const refreshToken = previous?.refreshToken
    const refreshUsable =
      refreshToken !== undefined &&
      (previous?.refreshExpiresAt === undefined || clock() < previous.refreshExpiresAt)
    const refresh = grant.refresh
    if (previous !== undefined && refreshUsable && refresh !== undefined) {
      try {
        log('debug', `refreshing the access token of ${key.clientId}`)
        return await this.#retrying(() => refresh(key, previous, clock()))
      } catch (error) {
        if (!(error instanceof SsoError) || error.code !== 'grant_invalid') throw error
        // Someone outside our lock (an older client) may have rotated it: read once more.
        const again = await cache?.read(key)
        if (
          again !== undefined &&
          again.refreshToken !== refreshToken &&
          this.#usable(again, undefined)
        ) {
          return again
        }
        log(
          'info',
          `the provider refused the refresh token of ${key.clientId}; running the grant again`,
        )
        this.#memory = undefined
        await cache?.delete(key)
      }
    }
    log('debug', `requesting a new access token for ${key.clientId}`)
    if (grant.interactive === true) {
      // The lock is now held while a person logs in: other processes are told so.
      await cache?.markLogin(key)
      return grant.obtain(key, clock())
    }
    return this.#retrying(() => grant.obtain(key, clock()))
  }

  /** Retries a provider outage a bounded number of times, then reports it (D05). */
  async #retrying(attempt: () => Promise<Credential>): Promise<Credential> {
    for (let tries = 0; ; tries++) {
      try {
        return await attempt()
      } catch (error) {
        const delay = RETRY_DELAYS_MS[tries]
        if (
          !(error instanceof SsoError) ||
          error.code !== 'provider_unavailable' ||
          delay === undefined
        ) {
          throw error
        }
        this.#runtime.log('info', `the identity provider is unavailable; retrying in ${delay} ms`)
        await this.#runtime.sleep(delay)
      }
    }
  }
}
