/**
 * Access-token refresh for sessions: one refresh per session at a time in this process, and
 * (through a store lock) across replicas. A refresh never changes who the session belongs to.
 */
import * as oauth from 'oauth4webapi'

import { isSsoError } from '../errors.js'
import type { SessionRejections } from './challenge.js'
import { tokenParams, type SessionContext } from './context.js'
import { providerText, tokenEndpointError, type TokenEndpointError } from './diagnostics.js'
import { isTransient, unavailable } from './provider.js'
import { decodeRecord, writeRecord, type SessionRecord } from './record.js'
import { tokenRefusal } from './token-refusal.js'
import { accessTiming, checkSignature, decodeClaims } from './tokens.js'

/** After a transient refresh failure, the session is served without retrying for this long. */
const REFRESH_BACKOFF_MS = 10_000
/** How long a request waits for another replica's refresh to land in the store. */
const REFRESH_WAIT_STEPS = 20
const REFRESH_WAIT_STEP_MS = 100

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
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

export function needsRefresh(record: SessionRecord, now: number): boolean {
  return (
    record.refreshToken !== undefined && record.refreshAt !== undefined && now >= record.refreshAt
  )
}

export class SessionRefresher {
  readonly #context: SessionContext
  readonly #rejections: SessionRejections
  readonly #refreshes = new Map<string, Promise<SessionRecord>>()
  readonly #refreshFailures = new Map<string, number>()

  constructor(context: SessionContext, rejections: SessionRejections) {
    this.#context = context
    this.#rejections = rejections
  }

  /** One refresh per session at a time in this process, and (through a store lock) across replicas. */
  refresh(sessionId: string, record: SessionRecord): Promise<SessionRecord> {
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
    const config = this.#context.config
    const failedAt = this.#refreshFailures.get(sessionId)
    if (failedAt !== undefined && config.now() - failedAt < REFRESH_BACKOFF_MS) return record
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
      if (latestStored === undefined) throw this.#rejections.missing(true)
      const latest = decodeRecord(latestStored.data) ?? record
      const now = config.now()
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
        stored = await this.#context.config.store.get(sessionId)
      } catch {
        return record
      }
      if (stored === undefined) throw this.#rejections.missing(true)
      const latest = decodeRecord(stored.data)
      if (latest !== undefined && latest.accessToken !== record.accessToken) return latest
    }
    return record
  }

  /** A refusal that is not the end of one session: this application's registration is wrong. */
  #reportRefusal(answer: TokenEndpointError, method: string | undefined): void {
    const { config, events, clientAuth } = this.#context
    const refusal = tokenRefusal(answer, method)
    const said = providerText(answer.description, clientAuth.secrets(config.secrets))
    events.warnOnce(`refresh:${answer.error}`, {
      type: 'token_request_failed',
      level: refusal.level,
      message: `The token endpoint refused a refresh with ${answer.error}${
        said === undefined ? '' : ` (${said})`
      }; sessions are kept until they expire. ${refusal.check}`,
      reason: answer.error,
      code: refusal.code,
    })
  }

  async #refreshGrant(sessionId: string, record: SessionRecord): Promise<SessionRecord> {
    const { config, provider, client, clientAuth } = this.#context
    const refreshToken = record.refreshToken
    if (refreshToken === undefined) return record
    const now = config.now()
    let tokens: oauth.TokenEndpointResponse
    let method: string | undefined
    try {
      const metadata = await provider.metadata()
      const authentication = await clientAuth.forProvider(metadata)
      method = clientAuth.method(metadata)
      const response = await oauth.refreshTokenGrantRequest(
        metadata,
        client,
        authentication,
        refreshToken,
        { ...provider.requestOptions(), additionalParameters: tokenParams(config) },
      )
      if (response.status >= 500)
        throw unavailable(new Error(`token endpoint answered ${response.status}`))
      tokens = await oauth.processRefreshTokenResponse(metadata, client, response)
      if (tokens.id_token !== undefined) await checkSignature(provider, metadata, response)
    } catch (error) {
      const answer = tokenEndpointError(error)
      this.#context.events.emit({
        type: 'session_refresh_failed',
        level: 'debug',
        message: 'A session refresh did not succeed.',
        reason: answer?.error ?? (isTransient(error) ? 'unavailable' : 'invalid_response'),
      })
      if (answer?.error === 'invalid_grant') {
        // The provider ended the session (revoked, expired offline token): so do we.
        this.#context.events.emit({
          type: 'token_request_failed',
          level: 'info',
          message:
            'The identity provider refused a refresh token (invalid_grant): that session ends.',
          reason: answer.error,
          code: 'grant_invalid',
        })
        await config.store.delete(sessionId).catch(() => undefined)
        throw this.#rejections.missing(true, 'The session was ended by the identity provider.')
      }
      if (answer !== undefined) this.#reportRefusal(answer, method)
      if (isSsoError(error) && error.code === 'client_auth_failed') {
        // Our configuration cannot work with this provider: keep the session, say why once.
        this.#context.events.warnOnce('refresh:client_auth', {
          type: 'token_request_failed',
          level: 'error',
          message: `${error.message} Sessions are kept until they expire.`,
          reason: 'client_auth_unsupported',
          code: 'client_auth_failed',
        })
      } else if (!isTransient(error) && answer === undefined) {
        // The answer came but failed validation (a refreshed ID token for someone else, a bad
        // signature): the session's identity can no longer be vouched for.
        await config.store.delete(sessionId).catch(() => undefined)
        throw this.#rejections.missing(
          true,
          'The identity provider returned tokens that failed validation.',
        )
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
      throw this.#rejections.missing(
        true,
        'The identity provider returned tokens for another user.',
      )
    }
    this.#refreshFailures.delete(sessionId)
    this.#context.events.emit({
      type: 'session_refreshed',
      level: 'debug',
      message: 'A session was refreshed.',
    })
    const refreshed: SessionRecord = {
      ...record,
      idToken: tokens.id_token ?? record.idToken,
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token ?? record.refreshToken,
      ...accessTiming(tokens.expires_in, now),
      lastSeenAt: now,
    }
    await writeRecord(config.store, sessionId, refreshed, now).catch(() => undefined)
    return refreshed
  }
}
