/**
 * One connection that receives Redis's invalidation messages for the store's session keys:
 * server-assisted client-side caching in broadcast mode (`CLIENT TRACKING ON BCAST PREFIX ..
 * REDIRECT <itself>`), over RESP2, where Redis publishes them on `__redis__:invalidate`. In
 * broadcast mode Redis reports every change to a key under the prefix, whichever connection read
 * it, so one such connection per Redis primary covers every read the store makes.
 *
 * A heartbeat PING goes down the same connection. Redis answers in order, so its PONG proves that
 * every invalidation for a write made before the PING has been received: `confirmedAt` is when the
 * last answered PING was sent, and a cache may trust its entries only that far back.
 */
import type { Redis } from 'ioredis'

const CHANNEL = '__redis__:invalidate'

export interface InvalidationListener {
  /** Keys changed, deleted, expired or evicted; `null` when Redis dropped everything (FLUSHALL). */
  invalidate(keys: readonly string[] | null): void
  /** The channel was lost or re-established: anything cached may have missed an invalidation. */
  lost(): void
}

export class InvalidationChannel {
  readonly #connection: Redis
  readonly #prefix: string
  readonly #listener: InvalidationListener
  /** When the last answered heartbeat was sent (ms since the epoch), or undefined while not live. */
  #confirmedAt: number | undefined
  /** When the heartbeat now awaiting its answer was sent. */
  #pingSentAt: number | undefined
  /** Bumped whenever the channel is lost, so answers from an older connection are ignored. */
  #epoch = 0
  #subscribed = false
  #closed = false

  /** `connection` is a fresh RESP2 connection this channel owns (it sets it up on every connect). */
  constructor(connection: Redis, prefix: string, listener: InvalidationListener) {
    this.#connection = connection
    this.#prefix = prefix
    this.#listener = listener
    connection.on('error', () => {
      // Reported through `lost` and the cache bypass; ioredis reconnects by itself.
    })
    connection.on('ready', () => {
      void this.#setUp()
    })
    for (const event of ['close', 'reconnecting', 'end'] as const) {
      connection.on(event, () => {
        this.#lose()
      })
    }
    connection.on('messageBuffer', (channel: Buffer, message: unknown) => {
      if (channel.toString() !== CHANNEL) return
      if (message === null) {
        listener.invalidate(null)
      } else if (Array.isArray(message)) {
        listener.invalidate(message.map((key: unknown) => String(key)))
      } else if (Buffer.isBuffer(message)) {
        listener.invalidate([message.toString()])
      }
    })
    if (connection.status === 'ready') void this.#setUp()
  }

  /** When the channel last proved it was live and caught up, or undefined. */
  get confirmedAt(): number | undefined {
    return this.#confirmedAt
  }

  /**
   * Sends a heartbeat unless one is in flight. One unanswered for longer than `timeoutMs` means a
   * stalled connection: it is dropped (ioredis reconnects) rather than trusted.
   */
  heartbeat(now: number, timeoutMs: number): void {
    if (this.#closed || !this.#subscribed) return
    const sent = this.#pingSentAt
    if (sent !== undefined) {
      if (now - sent > timeoutMs) {
        this.#lose()
        this.#connection.disconnect(true)
      }
      return
    }
    const epoch = this.#epoch
    this.#pingSentAt = now
    this.#connection.ping().then(
      () => {
        if (epoch !== this.#epoch) return
        this.#pingSentAt = undefined
        this.#confirmedAt = now
      },
      () => {
        if (epoch === this.#epoch) this.#pingSentAt = undefined
      },
    )
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#lose()
    this.#connection.disconnect()
  }

  async #setUp(): Promise<void> {
    const epoch = this.#epoch
    const connection = this.#connection
    try {
      const id = await connection.call('CLIENT', 'ID')
      await connection.call(
        'CLIENT',
        'TRACKING',
        'ON',
        'REDIRECT',
        String(id),
        'BCAST',
        'PREFIX',
        this.#prefix,
      )
      await connection.subscribe(CHANNEL)
    } catch {
      // Not live; the next reconnection tries again. Drop this one so that it does.
      if (epoch === this.#epoch && !this.#closed) connection.disconnect(true)
      return
    }
    if (epoch !== this.#epoch || this.#closed) return
    this.#subscribed = true
    this.heartbeat(Date.now(), Number.POSITIVE_INFINITY)
  }

  #lose(): void {
    this.#epoch += 1
    this.#subscribed = false
    this.#pingSentAt = undefined
    this.#confirmedAt = undefined
    // Also when it was never live: a read may have started while it was coming up.
    this.#listener.lost()
  }
}
