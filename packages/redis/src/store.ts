import { randomUUID } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { SsoError, SsoTypeError } from '@ssokit/core'
import type { ReleaseLock, SessionStore, StoredSession } from '@ssokit/core'
import { createClient, optionsFromEnv, resolveOptions, targetOf } from './options.js'
import type { RedisSessionStoreOptions, ResolvedOptions } from './options.js'
import { MISS, SessionCache, type CacheRead } from './cache.js'
import { decodeSession as decode, encodeSession as encode } from './record.js'
import { CAP_SUBJECT, DELETE_IF_OWNED, INDEX_ADD, RELEASE_LOCK } from './scripts.js'
import { Tracking } from './tracking.js'
import { describeRedisFailure, isDbOutOfRange, RedisProblem, type RedisTarget } from './problems.js'

/** Past this many ids, an index set is cleaned of ids whose sessions have expired. */
const INDEX_PRUNE_THRESHOLD = 64
/** Seconds a client should wait before retrying after the store failed. */
const RETRY_AFTER_SECONDS = 5

interface PendingRead {
  readonly key: string
  readonly resolve: (session: StoredSession | undefined) => void
  readonly reject: (error: unknown) => void
}

function isCluster(client: Redis | Cluster): boolean {
  return 'isCluster' in client && client.isCluster
}

function ttlMs(ttlSeconds: number): number {
  if (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw new SsoTypeError('ttlSeconds must be a positive finite number')
  }
  return Math.ceil(ttlSeconds * 1000)
}

function checkSession(session: StoredSession): void {
  if (
    typeof session !== 'object' ||
    typeof session.subject !== 'string' ||
    typeof session.data !== 'string' ||
    (session.sid !== undefined && typeof session.sid !== 'string')
  ) {
    throw new SsoTypeError(
      'session must be { subject: string, sid: string | undefined, data: string }',
    )
  }
}

/** The id `ready()` reads, to prove the user may read the store's keys. */
const READY_PROBE_ID = 'ready-probe'

/**
 * Sessions in Redis (standalone, Sentinel or Cluster) through ioredis, shared by every instance
 * of the application and kept across restarts.
 *
 * Keys (after `keyPrefix`): `s:<id>` the session, `sub:<subject>` and `sid:<sid>` index sets,
 * `age:<subject>` the subject's sessions by creation time (for `maxSessionsPerSubject`),
 * `lock:<name>` locks. Every key carries a TTL, so an eviction policy of `volatile-*` or
 * `allkeys-*` only ever drops sessions early (the user logs in again), never corrupts them. Every
 * command touches one key, so nothing depends on keys sharing a Cluster slot. Needs Redis 6.2+.
 *
 * Fails closed: when Redis is down, slow or erroring, every method rejects with
 * `SsoError('session_store_unavailable')` within about `commandTimeout`, while a missing session
 * still resolves `undefined`. The connection it created comes back by itself when Redis does.
 */
export class RedisSessionStore implements SessionStore {
  readonly #client: Redis | Cluster
  readonly #owned: boolean
  /**
   * Whether ioredis itself bounds every command by `commandTimeout` (a standalone or Sentinel
   * client this store made), so no timer of our own is needed per command. A client passed in
   * has unknown settings, and a Cluster queues commands offline without that bound.
   */
  readonly #boundedByClient: boolean
  /** Reads asked for in the same tick, sent together as one MGET (not on Cluster: slots differ). */
  #reads: PendingRead[] | undefined
  readonly #batchReads: boolean
  readonly #options: ResolvedOptions
  /** Records Redis invalidates for us; undefined with `cache: false`. */
  readonly #cache: SessionCache | undefined
  readonly #tracking: Tracking | undefined
  /** Who and where, for messages. */
  readonly #target: RedisTarget
  #lastError: unknown
  /**
   * The refusal of the configured database index on the current connection. ioredis reports it
   * only as an event and goes on in database 0; commands are refused instead while it holds.
   */
  #dbProblem: unknown
  #closed: Promise<void> | undefined

  constructor(options: RedisSessionStoreOptions) {
    this.#options = resolveOptions(options)
    if (options.client !== undefined) {
      this.#client = options.client
      this.#owned = false
      this.#boundedByClient = false
      this.#batchReads = !isCluster(options.client)
    } else {
      this.#client = createClient(options, this.#options)
      this.#owned = true
      this.#boundedByClient = options.cluster === undefined
      this.#batchReads = options.cluster === undefined
      // Without a listener ioredis reports every failed reconnection attempt on the console;
      // the failures reach callers as rejected operations instead.
      this.#client.on('error', (error: unknown) => {
        this.#lastError = error
        if (isDbOutOfRange(error)) this.#dbProblem = error
      })
      // Each new connection selects the database again; its refusal comes after this event.
      this.#client.on('connect', () => {
        this.#dbProblem = undefined
      })
      this.#client.on('ready', () => {
        this.#lastError = undefined
      })
    }
    this.#target = targetOf(options, this.#client, this.#options)
    const cache = this.#options.cache
    if (cache === undefined) {
      this.#cache = undefined
      this.#tracking = undefined
    } else {
      this.#cache = new SessionCache(cache.maxEntries, cache.maxStaleness)
      this.#tracking = new Tracking(
        this.#client,
        this.#cache,
        this.#key('s', ''),
        cache.maxStaleness,
      )
    }
  }

  /**
   * A store from environment variables (`SSOKIT_REDIS_URL`, or `OIDC_SESSION_STORE_HOST` and
   * `OIDC_SESSION_STORE_PORT`), or `undefined` when none of them is set.
   */
  static fromEnv(
    env: Readonly<Record<string, string | undefined>>,
    options: Omit<
      RedisSessionStoreOptions,
      'client' | 'url' | 'host' | 'port' | 'sentinels' | 'name' | 'cluster'
    > = {},
  ): RedisSessionStore | undefined {
    const fromEnv = optionsFromEnv(env)
    return fromEnv === undefined ? undefined : new RedisSessionStore({ ...fromEnv, ...options })
  }

  /** The ioredis client, for health checks and metrics. */
  get client(): Redis | Cluster {
    return this.#client
  }

  /**
   * The client-side cache of session records: whether it is serving now (every invalidation
   * channel live and caught up) and how many records it holds; `undefined` with `cache: false`.
   */
  get cache(): { readonly live: boolean; readonly entries: number } | undefined {
    const cache = this.#cache
    return cache === undefined
      ? undefined
      : { live: cache.trusted(Date.now()), entries: cache.size }
  }

  /** The prefix of every key this store writes. */
  get keyPrefix(): string {
    return this.#options.keyPrefix
  }

  get(id: string): Promise<StoredSession | undefined> {
    const key = this.#key('s', id)
    const cache = this.#cache
    if (cache !== undefined) {
      const now = Date.now()
      const hit = cache.lookup(key, now)
      if (hit !== MISS) return Promise.resolve(hit)
      const read = cache.begin(key, now)
      if (read !== undefined) return this.#readForCache(cache, read)
    }
    if (!this.#batchReads) {
      return this.#call(() => this.#client.get(key)).then(decode, (error: unknown) => {
        throw this.#unavailable(error)
      })
    }
    // A session and its subject's logout mark are read in the same tick: one MGET, one write and
    // one reply instead of two round trips' worth of work.
    return new Promise((resolve, reject) => {
      let reads = this.#reads
      if (reads === undefined) {
        reads = this.#reads = []
        queueMicrotask(() => {
          this.#flushReads()
        })
      }
      reads.push({ key, resolve, reject })
    })
  }

  /** A read whose answer is cached, with the key's TTL so the entry expires with the key. */
  async #readForCache(cache: SessionCache, read: CacheRead): Promise<StoredSession | undefined> {
    let replies: [error: Error | null, result: unknown][] | null
    try {
      replies = await this.#call(() => this.#client.pipeline().get(read.key).pttl(read.key).exec())
    } catch (error) {
      cache.abandon(read)
      throw this.#unavailable(error)
    }
    const [got, ttl] = replies ?? []
    if (got === undefined || got[0] !== null || (got[1] !== null && typeof got[1] !== 'string')) {
      cache.abandon(read)
      throw this.#unavailable(got?.[0] ?? new Error('Redis answered a session read with no reply'))
    }
    const value = decode(got[1])
    cache.finish(read, value, ttl?.[0] === null && typeof ttl[1] === 'number' ? ttl[1] : undefined)
    return value
  }

  /** Drops a key from this process's cache before and after a write (Redis tells the others). */
  async #changing<T>(keys: readonly string[], write: () => Promise<T>): Promise<T> {
    const cache = this.#cache
    cache?.invalidate(keys)
    try {
      return await write()
    } finally {
      cache?.invalidate(keys)
    }
  }

  #flushReads(): void {
    const reads = this.#reads ?? []
    this.#reads = undefined
    const [only] = reads
    if (reads.length === 1 && only !== undefined) {
      this.#call(() => this.#client.get(only.key)).then(
        (raw) => {
          only.resolve(decode(raw))
        },
        (error: unknown) => {
          only.reject(this.#unavailable(error))
        },
      )
      return
    }
    this.#call(() => this.#client.mget(reads.map((read) => read.key))).then(
      (values) => {
        reads.forEach((read, i) => {
          read.resolve(decode(values[i] ?? null))
        })
      },
      (error: unknown) => {
        for (const read of reads) read.reject(this.#unavailable(error))
      },
    )
  }

  set(id: string, session: StoredSession, ttlSeconds: number): Promise<void> {
    return this.#run(async () => {
      const ms = ttlMs(ttlSeconds)
      checkSession(session)
      // Index first: a session that exists is always reachable by back-channel logout, while an
      // index entry left behind by a failed write points at nothing and is harmless.
      await Promise.all([
        this.#indexAdd('sub', session.subject, id, ms),
        session.sid === undefined ? undefined : this.#indexAdd('sid', session.sid, id, ms),
      ])
      const key = this.#key('s', id)
      const previous = decode(
        await this.#changing([key], () =>
          this.#call(() => this.#client.set(key, encode(session), 'PX', ms, 'GET')),
        ),
      )
      if (previous) await this.#unindex(id, previous, session)
      await this.#capSubject(session.subject, id, ms)
    })
  }

  delete(id: string): Promise<void> {
    return this.#run(async () => {
      const key = this.#key('s', id)
      const previous = decode(
        await this.#changing([key], () => this.#call(() => this.#client.getdel(key))),
      )
      if (previous) await this.#unindex(id, previous, undefined)
    })
  }

  deleteBySubject(subject: string): Promise<number> {
    return this.#run(() => this.#deleteIndexed('sub', subject))
  }

  deleteBySid(sid: string): Promise<number> {
    return this.#run(() => this.#deleteIndexed('sid', sid))
  }

  lock(name: string, ttlSeconds: number): Promise<ReleaseLock | undefined> {
    return this.#run(async () => {
      const ms = ttlMs(ttlSeconds)
      const key = this.#key('lock', name)
      const token = randomUUID()
      const taken = await this.#call(() => this.#client.set(key, token, 'PX', ms, 'NX'))
      if (taken !== 'OK') return undefined
      return () =>
        this.#run(async () => {
          await this.#call(() => this.#client.eval(RELEASE_LOCK, 1, key, token))
        })
    })
  }

  /**
   * The start-up probe: resolves once Redis answers, on the configured database, and lets the
   * configured user read the store's keys. Otherwise rejects with `session_store_unavailable`
   * whose message names the cause: no password given (NOAUTH), a refused user or password
   * (WRONGPASS), a missing permission (NOPERM), a database index out of range, TLS on one side
   * only, a server that refuses connections or does not answer.
   */
  async ready(): Promise<void> {
    try {
      await this.#call(() => this.#client.ping())
      await this.#checkDatabase()
      await this.#call(() => this.#client.get(this.#key('s', READY_PROBE_ID)))
    } catch (error) {
      if (error instanceof SsoError || error instanceof SsoTypeError) throw error
      throw this.#unavailable(error)
    }
  }

  /** A client passed in, or one that went on in database 0, is caught here. */
  async #checkDatabase(): Promise<void> {
    if (isCluster(this.#client)) return
    let info: unknown
    try {
      info = await this.#call(() => this.#client.client('INFO'))
    } catch (error) {
      // Older servers have no CLIENT INFO, and a user may be denied it: nothing to compare.
      if (error instanceof Error && /^(ERR|NOPERM)/.test(error.message)) return
      throw error
    }
    const db = typeof info === 'string' ? /\bdb=(\d+)/.exec(info)?.[1] : undefined
    const wanted = this.#target.db
    if (db !== undefined && Number(db) !== wanted) {
      throw new RedisProblem(
        'redis_db_out_of_range',
        `${this.#target.where} has no database ${wanted} (the connection is on database ${db}): use an index below its "databases" setting (16 by default).`,
        undefined,
      )
    }
  }

  #unavailable(cause: unknown): SsoError {
    const status = this.#client.status
    const problem = describeRedisFailure(
      [cause, this.#dbProblem, this.#lastError],
      this.#target,
      status === 'connecting' || status === 'connect' || status === 'wait',
    )
    return new SsoError('session_store_unavailable', problem.message, {
      cause: problem,
      retryAfter: RETRY_AFTER_SECONDS,
    })
  }

  /** Closes the connection the store created; a client passed in is left open for its owner. */
  close(): Promise<void> {
    this.#tracking?.close()
    this.#closed ??= this.#owned ? this.#quit() : Promise.resolve()
    return this.#closed
  }

  async #quit(): Promise<void> {
    if (this.#client.status === 'ready') {
      try {
        await this.#call(() => this.#client.quit())
        return
      } catch {
        // Fall through to a hard disconnect.
      }
    }
    this.#client.disconnect()
  }

  #key(kind: 's' | 'sub' | 'sid' | 'age' | 'lock', name: string): string {
    return `${this.#options.keyPrefix}${kind}:${name}`
  }

  async #indexAdd(kind: 'sub' | 'sid', value: string, id: string, ms: number): Promise<void> {
    const key = this.#key(kind, value)
    const size = await this.#call(() => this.#client.eval(INDEX_ADD, 1, key, id, ms))
    if (typeof size === 'number' && size > INDEX_PRUNE_THRESHOLD) await this.#prune(key, id)
  }

  /** Drops ids whose sessions are gone, so a subject who logs in often keeps a small index. */
  async #prune(indexKey: string, keep: string): Promise<void> {
    const ids = (await this.#call(() => this.#client.smembers(indexKey))).filter(
      (id) => id !== keep,
    )
    const exists = await Promise.all(
      ids.map((id) => this.#call(() => this.#client.exists(this.#key('s', id)))),
    )
    const gone = ids.filter((_, i) => exists[i] === 0)
    if (gone.length > 0) await this.#call(() => this.#client.srem(indexKey, ...gone))
  }

  /**
   * Ends the subject's oldest sessions past `maxSessionsPerSubject`: the script picks them
   * atomically; each is then deleted only if it still belongs to the subject. The `sub:` index
   * keeps listing a picked session until it is gone, so back-channel logout always reaches it.
   */
  async #capSubject(subject: string, id: string, ms: number): Promise<void> {
    const max = this.#options.maxSessionsPerSubject
    const evicted = await this.#call(() =>
      this.#client.eval(CAP_SUBJECT, 1, this.#key('age', subject), id, ms, max),
    )
    if (!Array.isArray(evicted) || evicted.length === 0) return
    const ids = evicted.filter((value): value is string => typeof value === 'string')
    await Promise.all(
      ids.map((victim) => {
        const key = this.#key('s', victim)
        return this.#changing([key], () =>
          this.#call(() => this.#client.eval(DELETE_IF_OWNED, 1, key, 'sub', subject)),
        )
      }),
    )
    if (ids.length > 0) await this.#call(() => this.#client.srem(this.#key('sub', subject), ...ids))
  }

  async #unindex(
    id: string,
    previous: StoredSession,
    next: StoredSession | undefined,
  ): Promise<void> {
    const stale: Promise<number>[] = []
    if (previous.subject !== next?.subject) {
      stale.push(this.#call(() => this.#client.srem(this.#key('sub', previous.subject), id)))
      stale.push(this.#call(() => this.#client.zrem(this.#key('age', previous.subject), id)))
    }
    const sid = previous.sid
    if (sid !== undefined && sid !== next?.sid) {
      stale.push(this.#call(() => this.#client.srem(this.#key('sid', sid), id)))
    }
    await Promise.all(stale)
  }

  async #deleteIndexed(kind: 'sub' | 'sid', value: string): Promise<number> {
    const indexKey = this.#key(kind, value)
    const ids = await this.#call(() => this.#client.smembers(indexKey))
    if (ids.length === 0) return 0
    const deleted = await Promise.all(
      ids.map((id) => {
        const key = this.#key('s', id)
        return this.#changing([key], () =>
          this.#call(() => this.#client.eval(DELETE_IF_OWNED, 1, key, kind, value)),
        )
      }),
    )
    // Only the ids examined are removed: one added meanwhile by a concurrent login stays indexed.
    await Promise.all([
      this.#call(() => this.#client.srem(indexKey, ...ids)),
      kind === 'sub' ? this.#call(() => this.#client.zrem(this.#key('age', value), ...ids)) : 0,
    ])
    return deleted.reduce<number>((sum, n) => sum + (n === 1 ? 1 : 0), 0)
  }

  /** Translates every failure except caller misuse into `session_store_unavailable`. */
  async #run<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation()
    } catch (error) {
      if (error instanceof SsoTypeError) throw error
      throw this.#unavailable(error)
    }
  }

  /**
   * Bounds one command. A connection known to be down fails at once rather than queueing, and a
   * client passed in (whose own timeouts are unknown) still answers within `commandTimeout`.
   */
  #call<T>(send: () => Promise<T>): Promise<T> {
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
    if (this.#dbProblem !== undefined) return Promise.reject(this.#dbProblem)
    const status = this.#client.status
    if (
      status === 'reconnecting' ||
      status === 'close' ||
      status === 'end' ||
      status === 'disconnecting'
    ) {
      return Promise.reject(
        new Error(
          `Redis connection is ${status}`,
          this.#lastError === undefined ? undefined : { cause: this.#lastError },
        ),
      )
    }
    if (this.#boundedByClient) return send()
    let timer: ReturnType<typeof setTimeout> | undefined
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new Error(`Redis command timed out after ${this.#options.commandTimeout} ms`))
      }, this.#options.commandTimeout)
    })
    return Promise.race([send(), deadline]).finally(() => {
      clearTimeout(timer)
    })
  }
}
