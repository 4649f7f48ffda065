/**
 * Loads the session a request's cookie names: one store read (two with the subject's logout
 * mark), lifetime and idle checks, a refresh when the access token is due, and the identity.
 */
import type { RequestLike } from '../http.js'
import type { Identity } from '../identity.js'
import type { SessionRejections } from './challenge.js'
import { SESSION_PURPOSE, type SessionContext } from './context.js'
import { cookieValue } from './cookies.js'
import type { IdentityCache } from './identity-cache.js'
import {
  decodeLogoutMark,
  endedByMark,
  logoutMarkId,
  writeRecord,
  type SessionRecord,
} from './record.js'
import { needsRefresh, type SessionRefresher } from './refresh.js'
import { asStoreError } from './store-errors.js'

/** Signed cookies already verified, at most this many; a miss costs one HMAC per secret. */
const MAX_VERIFIED_COOKIES = 1000

function endedByLogout(record: SessionRecord, markData: string | undefined): boolean {
  if (markData === undefined) return false
  const iat = decodeLogoutMark(markData)
  return iat !== undefined && endedByMark(record.createdAt, iat)
}

export class SessionReader {
  readonly #context: SessionContext
  readonly #identities: IdentityCache
  readonly #refresher: SessionRefresher
  readonly #rejections: SessionRejections
  /**
   * Session cookies whose MAC was checked, by their exact text. Only a cookie that passed the
   * check gets an entry, and a cookie's value never changes meaning, so a hit is as good as a
   * fresh check; the session itself is still read from the store on every request. Looking up
   * a forged cookie compares string hashes first, so it learns nothing about a valid MAC.
   */
  readonly #verified = new Map<string, string>()

  constructor(
    context: SessionContext,
    identities: IdentityCache,
    refresher: SessionRefresher,
    rejections: SessionRejections,
  ) {
    this.#context = context
    this.#identities = identities
    this.#refresher = refresher
    this.#rejections = rejections
  }

  async authenticate(request: RequestLike): Promise<Identity> {
    const config = this.#context.config
    const rejections = this.#rejections
    const cookie = cookieValue(request.header('cookie'), config.sessionCookie)
    if (cookie === undefined) throw rejections.missing(false)
    const sessionId = this.#verify(cookie)
    if (sessionId === undefined) throw rejections.missing(true)
    const store = config.store
    // A session never changes subject, so a subject seen before lets the logout mark be read
    // alongside the session instead of after it.
    const knownSub = this.#identities.subjectOf(sessionId)
    let stored
    let mark
    try {
      if (knownSub === undefined) {
        stored = await store.get(sessionId)
      } else {
        ;[stored, mark] = await Promise.all([
          store.get(sessionId),
          store.get(logoutMarkId(knownSub)),
        ])
      }
    } catch (error) {
      throw asStoreError(error)
    }
    if (stored === undefined) {
      this.#identities.forget(sessionId)
      this.#verified.delete(cookie)
      throw rejections.missing(true)
    }
    // A record in a format this version does not know (a newer deployment) is not ours to delete.
    let record = this.#identities.recordOf(sessionId, stored.data)
    if (record === undefined) throw rejections.missing(false)
    if (record.sub !== knownSub) {
      try {
        mark = await store.get(logoutMarkId(record.sub))
      } catch (error) {
        throw asStoreError(error)
      }
    }
    const now = config.now()
    const idleMs = config.idleTimeoutS === undefined ? undefined : config.idleTimeoutS * 1000
    const expired =
      now >= record.expiresAt || (idleMs !== undefined && now - record.lastSeenAt > idleMs)
    if (expired || endedByLogout(record, mark?.data)) {
      this.#identities.forget(sessionId)
      await store.delete(sessionId).catch(() => undefined)
      throw rejections.missing(
        true,
        expired ? 'The session has expired.' : 'The session was ended by the identity provider.',
      )
    }
    if (needsRefresh(record, now)) {
      record = await this.#refresher.refresh(sessionId, record)
    } else if (idleMs !== undefined && now - record.lastSeenAt > Math.min(60_000, idleMs / 4)) {
      const touched: SessionRecord = { ...record, lastSeenAt: now }
      await writeRecord(store, sessionId, touched, now).catch(() => undefined)
      record = touched
    }
    return this.#identities.identityOf(sessionId, record)
  }

  #verify(cookie: string): string | undefined {
    const verified = this.#verified
    const known = verified.get(cookie)
    if (known !== undefined) return known
    const sessionId = this.#context.keyring.verify(cookie, SESSION_PURPOSE)
    if (sessionId === undefined) return undefined
    if (verified.size >= MAX_VERIFIED_COOKIES) {
      const oldest = verified.keys().next()
      if (oldest.done !== true) verified.delete(oldest.value)
    }
    verified.set(cookie, sessionId)
    return sessionId
  }
}
