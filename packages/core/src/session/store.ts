/**
 * Where browser sessions live. The store keeps an opaque, already serialised record: the session
 * module owns the format (and its version stamp), the store owns only keys, expiry and indexes.
 *
 * Failure contract: a record that is absent or expired resolves to `undefined`; a store that
 * cannot answer (connection refused, timeout, server error) rejects with
 * `SsoError('session_store_unavailable')`, so the caller answers 503 instead of logging anyone out.
 */
export interface StoredSession {
  /** The `sub` of the session's user, indexed for back-channel logout by subject. */
  readonly subject: string
  /** The provider's session id (`sid`), indexed for back-channel logout by sid, when known. */
  readonly sid: string | undefined
  /** The serialised session, opaque to the store. */
  readonly data: string
}

/** Releases a lock taken with `SessionStore.lock`; releasing twice is harmless. */
export type ReleaseLock = () => Promise<void>

export interface SessionStore {
  get(id: string): Promise<StoredSession | undefined>
  /** Writes (or replaces) a session that expires after `ttlSeconds`. */
  set(id: string, session: StoredSession, ttlSeconds: number): Promise<void>
  delete(id: string): Promise<void>
  /** Deletes every session of a subject; resolves to how many were deleted. */
  deleteBySubject(subject: string): Promise<number>
  /** Deletes every session carrying a provider `sid`; resolves to how many were deleted. */
  deleteBySid(sid: string): Promise<number>
  /**
   * Takes a short exclusive lock (one token refresh per session across every replica), or
   * resolves to `undefined` when someone else holds it. The lock frees itself after `ttlSeconds`.
   */
  lock(name: string, ttlSeconds: number): Promise<ReleaseLock | undefined>
  /** Frees connections and timers. */
  close(): Promise<void>
  /**
   * Optional start-up check: resolves once the store answers, or rejects with
   * `session_store_unavailable` naming the cause (a refused password, a wrong database, TLS on
   * one side only). Without it, `SessionAuth.ready()` reads one record instead.
   */
  ready?(): Promise<void>
}
