/**
 * Keeps one invalidation channel per Redis primary the store talks to, and their heartbeat: one
 * for a standalone or Sentinel client (its duplicate follows the Sentinel master across
 * failovers), one per primary of a Cluster, following the topology as ioredis learns it.
 */
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import type { SessionCache } from './cache.js'
import { InvalidationChannel } from './invalidation.js'
import { reconnectDelay } from './options.js'

/** What every channel connection overrides: RESP2 pub/sub, set up again by us on each connect. */
const CHANNEL_OPTIONS = {
  protocol: 2,
  autoResubscribe: false,
  enableOfflineQueue: true,
  maxRetriesPerRequest: null,
  retryStrategy: reconnectDelay,
  lazyConnect: false,
} satisfies Partial<RedisOptions>

function isCluster(client: Redis | Cluster): client is Cluster {
  return 'isCluster' in client && client.isCluster
}

function address(node: Redis): string {
  return `${node.options.host ?? ''}:${String(node.options.port ?? '')}`
}

export class Tracking {
  readonly #client: Redis | Cluster
  readonly #cache: SessionCache
  readonly #prefix: string
  readonly #timeoutMs: number
  readonly #timer: ReturnType<typeof setInterval>
  readonly #channels = new Map<string, InvalidationChannel>()

  constructor(
    client: Redis | Cluster,
    cache: SessionCache,
    prefix: string,
    maxStalenessMs: number,
  ) {
    this.#client = client
    this.#cache = cache
    this.#prefix = prefix
    this.#timeoutMs = maxStalenessMs
    if (isCluster(client)) {
      for (const event of ['refresh', '+node', '-node', 'ready'] as const) {
        client.on(event, () => {
          this.#reconcile()
        })
      }
      this.#reconcile()
    } else {
      this.#add('main', client.duplicate(CHANNEL_OPTIONS))
      cache.setChannels([...this.#channels.values()])
    }
    // A quarter of the bound: a heartbeat or two may be slow before the cache is bypassed.
    this.#timer = setInterval(
      () => {
        this.#tick()
      },
      Math.max(10, Math.floor(maxStalenessMs / 4)),
    )
    this.#timer.unref()
  }

  close(): void {
    clearInterval(this.#timer)
    for (const channel of this.#channels.values()) channel.close()
    this.#channels.clear()
    this.#cache.setChannels([])
  }

  #tick(): void {
    if (isCluster(this.#client)) this.#reconcile()
    const now = Date.now()
    for (const channel of this.#channels.values()) channel.heartbeat(now, this.#timeoutMs)
  }

  #add(name: string, connection: Redis): void {
    this.#channels.set(name, new InvalidationChannel(connection, this.#prefix, this.#cache))
  }

  /** One channel per current Cluster primary; any change empties the cache. */
  #reconcile(): void {
    const client = this.#client
    if (!isCluster(client)) return
    const primaries = new Map(client.nodes('master').map((node) => [address(node), node]))
    let changed = false
    for (const [name, channel] of this.#channels) {
      if (!primaries.has(name)) {
        channel.close()
        this.#channels.delete(name)
        changed = true
      }
    }
    for (const [name, node] of primaries) {
      if (this.#channels.has(name)) continue
      this.#add(name, node.duplicate(CHANNEL_OPTIONS))
      changed = true
    }
    if (changed) this.#cache.setChannels([...this.#channels.values()])
  }
}
