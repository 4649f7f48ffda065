import { SsoTypeError } from '../errors.js'
import type { ReleaseLock, SessionStore, StoredSession } from './store.js'

export interface MemorySessionStoreOptions {
  /**
   * Most sessions kept at once; past it the least recently used session is evicted, so a flood
   * of logins costs bounded memory. Locks are capped at the same number. Default 10 000.
   */
  readonly maxSessions?: number
  /**
   * Most sessions of one subject kept at once; past it that subject's oldest sessions (by when
   * they were created) are deleted, so one account signing in over and over evicts only its own
   * sessions, never other users'. Default 50.
   */
  readonly maxSessionsPerSubject?: number
  /** How often expired entries are swept, in milliseconds. Default 60 000. */
  readonly sweepIntervalMs?: number
  /** Expert hook for tests: the clock, in milliseconds since the epoch. Default `Date.now`. */
  readonly now?: () => number
}

interface Entry {
  readonly session: StoredSession
  readonly expiresAt: number
}

interface Lock {
  readonly token: object
  readonly expiresAt: number
}

const DEFAULT_MAX_SESSIONS = 10_000
/** The default cap of sessions per subject, in every store ssokit ships. */
export const DEFAULT_MAX_SESSIONS_PER_SUBJECT = 50
const DEFAULT_SWEEP_INTERVAL_MS = 60_000

/** Timers in Node have `unref`, which keeps a sweep from holding the process open; others may not. */
function unref(timer: unknown): void {
  if (typeof timer === 'object' && timer !== null && 'unref' in timer) {
    const fn: unknown = timer.unref
    if (typeof fn === 'function') fn.call(timer)
  }
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new SsoTypeError(`${name} must be a positive integer`)
  }
  return value
}

/** The TTL in milliseconds, or the error to reject with (a rejection, not a throw, as callers await). */
function checkTtl(ttlSeconds: number): number | SsoTypeError {
  if (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    return new SsoTypeError('ttlSeconds must be a positive finite number')
  }
  return ttlSeconds * 1000
}

function addToIndex(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key)
  if (ids) ids.add(id)
  else index.set(key, new Set([id]))
}

function removeFromIndex(index: Map<string, Set<string>>, key: string, id: string): void {
  const ids = index.get(key)
  if (!ids) return
  ids.delete(id)
  if (ids.size === 0) index.delete(key)
}

/**
 * The default session store: one process, bounded, lost on restart. Use a shared store (Redis)
 * as soon as more than one instance serves the application, or sessions must outlive a deploy.
 *
 * Indexes are kept exact (every eviction, expiry and overwrite updates them), so they never hold
 * more ids than there are sessions and never point at a session that has been replaced.
 */
export class MemorySessionStore implements SessionStore {
  readonly #sessions = new Map<string, Entry>()
  readonly #bySubject = new Map<string, Set<string>>()
  readonly #bySid = new Map<string, Set<string>>()
  readonly #locks = new Map<string, Lock>()
  readonly #max: number
  readonly #maxPerSubject: number
  readonly #now: () => number
  #timer: ReturnType<typeof setInterval> | undefined

  constructor(options: MemorySessionStoreOptions = {}) {
    this.#max = positiveInteger('maxSessions', options.maxSessions, DEFAULT_MAX_SESSIONS)
    this.#maxPerSubject = positiveInteger(
      'maxSessionsPerSubject',
      options.maxSessionsPerSubject,
      DEFAULT_MAX_SESSIONS_PER_SUBJECT,
    )
    const interval = positiveInteger(
      'sweepIntervalMs',
      options.sweepIntervalMs,
      DEFAULT_SWEEP_INTERVAL_MS,
    )
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new SsoTypeError('now must be a function', 'ERR_INVALID_ARG_TYPE')
    }
    this.#now = options.now ?? Date.now
    this.#timer = setInterval(() => {
      this.sweep()
    }, interval)
    unref(this.#timer)
  }

  /** How many sessions are held, expired ones not yet swept included. */
  get size(): number {
    return this.#sessions.size
  }

  get(id: string): Promise<StoredSession | undefined> {
    const entry = this.#live(id)
    if (!entry) return Promise.resolve(undefined)
    // Map order is insertion order: re-inserting marks the entry as most recently used.
    this.#sessions.delete(id)
    this.#sessions.set(id, entry)
    return Promise.resolve(entry.session)
  }

  set(id: string, session: StoredSession, ttlSeconds: number): Promise<void> {
    const ttlMs = checkTtl(ttlSeconds)
    if (ttlMs instanceof Error) return Promise.reject(ttlMs)
    const copy: StoredSession = { subject: session.subject, sid: session.sid, data: session.data }
    const entry: Entry = { session: copy, expiresAt: this.#now() + ttlMs }
    const previous = this.#sessions.get(id)
    if (previous !== undefined && previous.session.subject === copy.subject) {
      // Rewritten by its owner (a refresh): it keeps its age among the subject's sessions.
      this.#sessions.delete(id)
      if (previous.session.sid !== undefined) removeFromIndex(this.#bySid, previous.session.sid, id)
      this.#sessions.set(id, entry)
    } else {
      this.#remove(id)
      this.#sessions.set(id, entry)
      addToIndex(this.#bySubject, copy.subject, id)
      this.#capSubject(copy.subject, id)
    }
    if (copy.sid !== undefined) addToIndex(this.#bySid, copy.sid, id)
    while (this.#sessions.size > this.#max) {
      const oldest = this.#sessions.keys().next()
      if (oldest.done === true) break
      this.#remove(oldest.value)
    }
    return Promise.resolve()
  }

  delete(id: string): Promise<void> {
    this.#remove(id)
    return Promise.resolve()
  }

  deleteBySubject(subject: string): Promise<number> {
    return Promise.resolve(this.#deleteAll(this.#bySubject.get(subject)))
  }

  deleteBySid(sid: string): Promise<number> {
    return Promise.resolve(this.#deleteAll(this.#bySid.get(sid)))
  }

  lock(name: string, ttlSeconds: number): Promise<ReleaseLock | undefined> {
    const ttlMs = checkTtl(ttlSeconds)
    if (ttlMs instanceof Error) return Promise.reject(ttlMs)
    const now = this.#now()
    const held = this.#locks.get(name)
    if (held && held.expiresAt > now) return Promise.resolve(undefined)
    if (!held && this.#locks.size >= this.#max) {
      this.#sweepLocks(now)
      // Every slot is taken by a live lock: refusing is safer than breaking someone's lock.
      if (this.#locks.size >= this.#max) return Promise.resolve(undefined)
    }
    const token = {}
    this.#locks.set(name, { token, expiresAt: now + ttlMs })
    return Promise.resolve(() => {
      // Only the holder's own lock is freed, never one taken by someone else after it expired.
      if (this.#locks.get(name)?.token === token) this.#locks.delete(name)
      return Promise.resolve()
    })
  }

  /** Drops expired sessions and locks now; the sweep timer calls this periodically. */
  sweep(): void {
    const now = this.#now()
    for (const [id, entry] of this.#sessions) {
      if (entry.expiresAt <= now) this.#remove(id)
    }
    this.#sweepLocks(now)
  }

  close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    return Promise.resolve()
  }

  #live(id: string): Entry | undefined {
    const entry = this.#sessions.get(id)
    if (!entry) return undefined
    if (entry.expiresAt <= this.#now()) {
      this.#remove(id)
      return undefined
    }
    return entry
  }

  #deleteAll(ids: ReadonlySet<string> | undefined): number {
    if (!ids) return 0
    let count = 0
    for (const id of [...ids]) {
      if (this.#live(id)) {
        this.#remove(id)
        count++
      }
    }
    return count
  }

  /** Deletes the subject's oldest sessions (expired ones first) past the per-subject cap. */
  #capSubject(subject: string, keep: string): void {
    const over = (): boolean => (this.#bySubject.get(subject)?.size ?? 0) > this.#maxPerSubject
    if (!over()) return
    // Index sets keep insertion order, which is creation order: the first ids are the oldest.
    for (const id of [...(this.#bySubject.get(subject) ?? [])]) this.#live(id)
    for (const id of [...(this.#bySubject.get(subject) ?? [])]) {
      if (!over()) return
      if (id !== keep) this.#remove(id)
    }
  }

  #remove(id: string): void {
    const entry = this.#sessions.get(id)
    if (!entry) return
    this.#sessions.delete(id)
    removeFromIndex(this.#bySubject, entry.session.subject, id)
    if (entry.session.sid !== undefined) removeFromIndex(this.#bySid, entry.session.sid, id)
  }

  #sweepLocks(now: number): void {
    for (const [name, lock] of this.#locks) {
      if (lock.expiresAt <= now) this.#locks.delete(name)
    }
  }
}
