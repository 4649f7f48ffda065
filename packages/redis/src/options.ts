import type { ConnectionOptions as TlsOptions } from 'node:tls'
import { Cluster, Redis } from 'ioredis'
import type { ClusterOptions, RedisOptions } from 'ioredis'
import { SsoTypeError } from '@ssokit/core'
import type { RedisTarget } from './problems.js'

/** ioredis options without `replyMapping`, which its constructors type apart (the default, RESP2 replies, is used). */
type ClientOptions = Omit<RedisOptions, 'replyMapping'>

export interface RedisNode {
  readonly host: string
  readonly port: number
}

/**
 * Where the sessions live. Give exactly one of `client`, `url`, `host`/`port`, `sentinels`
 * (with `name`) or `cluster`.
 */
export interface RedisSessionStoreOptions {
  /**
   * A client you created and manage: the store never closes it. Make sure it does not queue
   * commands forever while disconnected; the store bounds each command by `commandTimeout` anyway.
   */
  readonly client?: Redis | Cluster
  /** `redis://[user:password@]host[:port][/db]` or `rediss://...` for TLS. */
  readonly url?: string
  /** Standalone server host. Default `127.0.0.1` when only `port` is given. */
  readonly host?: string
  /** Standalone server port. Default 6379. */
  readonly port?: number
  /** Sentinel nodes; the master is found by `name`. */
  readonly sentinels?: readonly RedisNode[]
  /** The Sentinel master group name. */
  readonly name?: string
  /** Cluster seed nodes. */
  readonly cluster?: readonly RedisNode[]
  readonly username?: string
  readonly password?: string
  /** Password of the Sentinel nodes themselves, when they require one. */
  readonly sentinelPassword?: string
  /** Database index (standalone and Sentinel only). */
  readonly db?: number
  /** TLS for `host`, `sentinels` and `cluster` connections (`rediss://` URLs imply it). */
  readonly tls?: boolean | TlsOptions
  /** Prefix of every key the store writes. Default `ssokit:`. */
  readonly keyPrefix?: string
  /**
   * Most sessions of one subject kept at once; past it that subject's oldest sessions (by when
   * they were created) are deleted, so one account signing in over and over evicts only its own
   * sessions, never other users'. Default 50.
   */
  readonly maxSessionsPerSubject?: number
  /** Longest wait for one command, in milliseconds, before answering "unavailable". Default 1000. */
  readonly commandTimeout?: number
  /** Longest wait for a connection, in milliseconds. Default 1000. */
  readonly connectTimeout?: number
  /**
   * Session records kept in this process and invalidated by Redis itself (client-side caching
   * with `CLIENT TRACKING`, one extra connection per Redis primary), so most reads cost no round
   * trip. `false` reads Redis on every request. Default `{}` (on).
   */
  readonly cache?: false | RedisSessionCacheOptions
}

export interface RedisSessionCacheOptions {
  /** Records kept at most; the oldest goes first. Default 10 000. */
  readonly maxEntries?: number
  /**
   * The longest a cached record is served after the invalidation channel last proved it was live
   * and caught up, in milliseconds: the bound on how long a session ended elsewhere can still be
   * accepted here when that channel silently stalls. Heartbeats go every quarter of it. Default 1000.
   */
  readonly maxStaleness?: number
}

export interface ResolvedOptions {
  readonly keyPrefix: string
  readonly maxSessionsPerSubject: number
  readonly commandTimeout: number
  readonly connectTimeout: number
  readonly cache: { readonly maxEntries: number; readonly maxStaleness: number } | undefined
}

export const DEFAULT_KEY_PREFIX = 'ssokit:'
const DEFAULT_TIMEOUT_MS = 1000
const DEFAULT_MAX_SESSIONS_PER_SUBJECT = 50
const DEFAULT_CACHE_ENTRIES = 10_000
const DEFAULT_MAX_STALENESS_MS = 1000
const MAX_RECONNECT_DELAY_MS = 2000

/** Reconnects quickly at first, then every two seconds, for as long as the store is open. */
export function reconnectDelay(attempt: number): number {
  return Math.min(100 * 2 ** Math.min(Math.max(attempt - 1, 0), 5), MAX_RECONNECT_DELAY_MS)
}

function fail(message: string, code?: 'ERR_INVALID_ARG_TYPE' | 'ERR_MISSING_OPTION'): never {
  throw new SsoTypeError(message, code)
}

function positive(name: string, value: number | undefined, fallback: number, unit: string): number {
  if (value === undefined) return fallback
  if (!Number.isSafeInteger(value) || value < 1) fail(`${name} must be a positive integer${unit}`)
  return value
}

function timeout(name: string, value: number | undefined): number {
  return positive(name, value, DEFAULT_TIMEOUT_MS, ' of milliseconds')
}

function cacheOptions(value: RedisSessionStoreOptions['cache']): ResolvedOptions['cache'] {
  if (value === false) return undefined
  const given: unknown = value ?? {}
  if (typeof given !== 'object' || given === null) fail('cache must be false or an object')
  const cache = given as RedisSessionCacheOptions
  return Object.freeze({
    maxEntries: positive('cache.maxEntries', cache.maxEntries, DEFAULT_CACHE_ENTRIES, ''),
    maxStaleness: positive(
      'cache.maxStaleness',
      cache.maxStaleness,
      DEFAULT_MAX_STALENESS_MS,
      ' of milliseconds',
    ),
  })
}

function port(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    fail(`${name} must be a port number between 1 and 65535`)
  }
  return value
}

function nodes(name: string, value: readonly RedisNode[]): RedisNode[] {
  const given: unknown = value
  if (!Array.isArray(given) || value.length === 0)
    fail(`${name} must be a non-empty array of { host, port }`)
  return value.map((node, i) => {
    if (typeof node.host !== 'string' || node.host === '')
      fail(`${name}[${i}].host must be a non-empty string`)
    return { host: node.host, port: port(`${name}[${i}].port`, node.port) }
  })
}

export function resolveOptions(options: RedisSessionStoreOptions): ResolvedOptions {
  if (typeof options !== 'object') fail('options must be an object', 'ERR_INVALID_ARG_TYPE')
  const keyPrefix = options.keyPrefix ?? DEFAULT_KEY_PREFIX
  if (typeof keyPrefix !== 'string' || keyPrefix === '')
    fail('keyPrefix must be a non-empty string')
  const ways = [
    options.client !== undefined,
    options.url !== undefined,
    options.host !== undefined || options.port !== undefined,
    options.sentinels !== undefined,
    options.cluster !== undefined,
  ].filter(Boolean).length
  if (ways === 0)
    fail('one of client, url, host/port, sentinels or cluster is required', 'ERR_MISSING_OPTION')
  if (ways > 1) fail('give only one of client, url, host/port, sentinels or cluster')
  if (options.name !== undefined && options.sentinels === undefined)
    fail('name is only used with sentinels')
  if (options.db !== undefined && (!Number.isSafeInteger(options.db) || options.db < 0)) {
    fail('db must be a non-negative integer')
  }
  return Object.freeze({
    keyPrefix,
    maxSessionsPerSubject: positive(
      'maxSessionsPerSubject',
      options.maxSessionsPerSubject,
      DEFAULT_MAX_SESSIONS_PER_SUBJECT,
      '',
    ),
    commandTimeout: timeout('commandTimeout', options.commandTimeout),
    connectTimeout: timeout('connectTimeout', options.connectTimeout),
    cache: cacheOptions(options.cache),
  })
}

/**
 * The settings that make a stopped Redis answer quickly instead of hanging requests: commands are
 * not retried on reconnection (the caller answers 503 and the browser retries) and every command
 * and connection attempt is bounded.
 */
function failFastOptions(resolved: ResolvedOptions): ClientOptions {
  return {
    commandTimeout: resolved.commandTimeout,
    connectTimeout: resolved.connectTimeout,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    retryStrategy: reconnectDelay,
  }
}

function credentials(options: RedisSessionStoreOptions): ClientOptions {
  const out: ClientOptions = {}
  if (options.username !== undefined) out.username = options.username
  if (options.password !== undefined) out.password = options.password
  if (options.db !== undefined) out.db = options.db
  if (options.tls === true) out.tls = {}
  else if (typeof options.tls === 'object') out.tls = { ...options.tls }
  return out
}

/** Creates the client described by the options (never called when a client is given). */
export function createClient(
  options: RedisSessionStoreOptions,
  resolved: ResolvedOptions,
): Redis | Cluster {
  const base = { ...credentials(options), ...failFastOptions(resolved) }
  if (options.url !== undefined) {
    let url: URL
    try {
      url = new URL(options.url)
    } catch {
      fail('url must be a redis:// or rediss:// URL')
    }
    if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
      fail('url must be a redis:// or rediss:// URL')
    return new Redis(options.url, base)
  }
  if (options.sentinels !== undefined) {
    if (typeof options.name !== 'string' || options.name === '') {
      fail('name (the Sentinel master group) is required with sentinels', 'ERR_MISSING_OPTION')
    }
    const sentinelOptions: ClientOptions = {
      ...base,
      sentinels: nodes('sentinels', options.sentinels),
      name: options.name,
      sentinelRetryStrategy: reconnectDelay,
    }
    if (options.sentinelPassword !== undefined)
      sentinelOptions.sentinelPassword = options.sentinelPassword
    if (base.tls !== undefined) sentinelOptions.enableTLSForSentinelMode = true
    return new Redis(sentinelOptions)
  }
  if (options.cluster !== undefined) {
    if (options.db !== undefined) fail('db cannot be used with cluster')
    // Cluster reconnects through clusterRetryStrategy; per-node retryStrategy is not allowed there.
    const redisOptions = { ...base }
    delete redisOptions.retryStrategy
    const clusterOptions: Omit<ClusterOptions, 'redisOptions'> & {
      redisOptions: typeof redisOptions
    } = {
      clusterRetryStrategy: reconnectDelay,
      enableOfflineQueue: true,
      redisOptions,
    }
    return new Cluster(nodes('cluster', options.cluster), clusterOptions)
  }
  return new Redis({
    ...base,
    host: options.host ?? '127.0.0.1',
    port: options.port === undefined ? 6379 : port('port', options.port),
  })
}

/**
 * Options from environment variables: `SSOKIT_REDIS_URL`, or tsgauth's `OIDC_SESSION_STORE_HOST`
 * and `OIDC_SESSION_STORE_PORT`; `SSOKIT_REDIS_KEY_PREFIX` optionally. Resolves to `undefined`
 * when none is set.
 */
export function optionsFromEnv(
  env: Readonly<Record<string, string | undefined>>,
): RedisSessionStoreOptions | undefined {
  const keyPrefix =
    env.SSOKIT_REDIS_KEY_PREFIX === undefined ? {} : { keyPrefix: env.SSOKIT_REDIS_KEY_PREFIX }
  const url = env.SSOKIT_REDIS_URL
  if (url !== undefined && url !== '') return { url, ...keyPrefix }
  const host = env.OIDC_SESSION_STORE_HOST
  const portText = env.OIDC_SESSION_STORE_PORT
  if ((host === undefined || host === '') && (portText === undefined || portText === ''))
    return undefined
  const out: { host: string; port?: number; keyPrefix?: string } = {
    host: host || '127.0.0.1',
    ...keyPrefix,
  }
  if (portText !== undefined && portText !== '') {
    if (!/^\d{1,5}$/.test(portText)) fail('OIDC_SESSION_STORE_PORT must be a port number')
    out.port = port('OIDC_SESSION_STORE_PORT', Number(portText))
  }
  return out
}

function hostPort(host: string, port: number): string {
  return `Redis at ${host.includes(':') ? `[${host}]` : host}:${port}`
}

/** What the messages of the store say about its connection: where, as whom, which db, TLS. */
export function targetOf(
  options: RedisSessionStoreOptions,
  client: Redis | Cluster,
  resolved: ResolvedOptions,
): RedisTarget {
  const base = { commandTimeout: resolved.commandTimeout }
  const tlsOption = options.tls !== undefined && options.tls !== false
  if (options.client !== undefined) {
    if (client instanceof Cluster) {
      return { ...base, where: 'the Redis Cluster', username: undefined, db: 0, tls: false }
    }
    const given = client.options
    return {
      ...base,
      where:
        given.sentinels === undefined
          ? hostPort(given.host ?? '127.0.0.1', given.port ?? 6379)
          : `the Redis Sentinel master "${given.name ?? ''}"`,
      username: given.username,
      db: given.db ?? 0,
      tls: given.tls !== undefined,
    }
  }
  if (options.url !== undefined) {
    const url = new URL(options.url)
    const db = /^\/(\d+)$/.exec(url.pathname)?.[1]
    return {
      ...base,
      where: hostPort(
        url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
        Number(url.port || 6379),
      ),
      username: url.username === '' ? options.username : decodeURIComponent(url.username),
      db: options.db ?? (db === undefined ? 0 : Number(db)),
      tls: url.protocol === 'rediss:' || tlsOption,
    }
  }
  const common = { ...base, username: options.username, db: options.db ?? 0, tls: tlsOption }
  if (options.sentinels !== undefined)
    return { ...common, where: `the Redis Sentinel master "${options.name ?? ''}"` }
  if (options.cluster !== undefined) return { ...common, where: 'the Redis Cluster' }
  return { ...common, where: hostPort(options.host ?? '127.0.0.1', options.port ?? 6379) }
}
