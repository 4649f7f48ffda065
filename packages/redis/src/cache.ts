/**
 * Session records kept in this process, trusted only while Redis is telling us about every change
 * to them (see `InvalidationChannel`).
 *
 * The invariant: an entry is served only while every channel confirmed it was live and caught up
 * within the last `maxStalenessMs`, and every entry was read while that held, after the last time
 * any channel was lost. Losing a channel, or a new one (a new Cluster primary), empties the cache.
 * A read that an invalidation or a loss overtakes while it is in flight is not cached, since its
 * answer may predate the change.
 */
import type { StoredSession } from '@ssokit/core'
import type { InvalidationChannel, InvalidationListener } from './invalidation.js'

interface Entry {
  readonly value: StoredSession | undefined
  /** Local expiry (ms since the epoch) from the key's TTL when it was read. */
  readonly expiresAt: number
}

/** A read in flight; `stale` once something may have changed the key since it was sent. */
export interface CacheRead {
  readonly key: string
  readonly sentAt: number
  stale: boolean
}

/** What `lookup` returns when the cache cannot answer; `undefined` is a cached "no session". */
export const MISS: unique symbol = Symbol('miss')

export class SessionCache implements InvalidationListener {
  readonly #maxEntries: number
  readonly #maxStalenessMs: number
  readonly #entries = new Map<string, Entry>()
  readonly #reads = new Map<string, Set<CacheRead>>()
  #channels: readonly InvalidationChannel[] = []

  constructor(maxEntries: number, maxStalenessMs: number) {
    this.#maxEntries = maxEntries
    this.#maxStalenessMs = maxStalenessMs
  }

  /** The channels whose liveness the cache depends on: one per Redis primary. */
  setChannels(channels: readonly InvalidationChannel[]): void {
    this.#channels = channels
    this.lost()
  }

  /** Whether entries may be served at `now`: every channel confirmed recently enough. */
  trusted(now: number): boolean {
    const channels = this.#channels
    if (channels.length === 0) return false
    for (const channel of channels) {
      const at = channel.confirmedAt
      if (at === undefined || now - at > this.#maxStalenessMs) return false
    }
    return true
  }

  lookup(key: string, now: number): StoredSession | undefined | typeof MISS {
    const entry = this.#entries.get(key)
    if (entry === undefined) return MISS
    if (now >= entry.expiresAt || !this.trusted(now)) {
      this.#entries.delete(key)
      return MISS
    }
    return entry.value
  }

  /** Registers a read about to be sent, or `undefined` when its answer could not be cached. */
  begin(key: string, now: number): CacheRead | undefined {
    if (!this.trusted(now)) return undefined
    const read: CacheRead = { key, sentAt: now, stale: false }
    let reads = this.#reads.get(key)
    if (reads === undefined) this.#reads.set(key, (reads = new Set()))
    reads.add(read)
    return read
  }

  /**
   * Ends a read; caches its answer unless it went stale. `ttlMs` is the key's PTTL from the same
   * read (negative when the key has none or is absent).
   */
  finish(read: CacheRead, value: StoredSession | undefined, ttlMs: number | undefined): void {
    const reads = this.#reads.get(read.key)
    reads?.delete(read)
    if (reads?.size === 0) this.#reads.delete(read.key)
    if (read.stale || ttlMs === undefined || !this.trusted(Date.now())) return
    const entries = this.#entries
    if (entries.size >= this.#maxEntries) {
      const oldest = entries.keys().next()
      if (oldest.done !== true) entries.delete(oldest.value)
    }
    entries.delete(read.key)
    entries.set(read.key, {
      value,
      expiresAt: ttlMs >= 0 ? read.sentAt + ttlMs : Number.POSITIVE_INFINITY,
    })
  }

  /** Ends a read that failed: nothing is cached. */
  abandon(read: CacheRead): void {
    read.stale = true
    this.finish(read, undefined, undefined)
  }

  invalidate(keys: readonly string[] | null): void {
    if (keys === null) {
      this.lost()
      return
    }
    for (const key of keys) {
      this.#entries.delete(key)
      const reads = this.#reads.get(key)
      if (reads !== undefined) for (const read of reads) read.stale = true
    }
  }

  lost(): void {
    this.#entries.clear()
    for (const reads of this.#reads.values()) for (const read of reads) read.stale = true
  }

  /** How many records are cached (for tests and metrics). */
  get size(): number {
    return this.#entries.size
  }
}
