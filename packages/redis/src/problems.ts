/**
 * Why Redis cannot be used, in words an operator can act on: a refused password, an unknown
 * ACL user, a missing permission, a database index the server does not have, TLS on one side
 * only, a server that is not there. ioredis reports these as a reply or a socket error, often
 * on its `error` event rather than on the command that failed, so both are looked at.
 */

/** What a message says about the configured connection (never the password). */
export interface RedisTarget {
  /** `Redis at 127.0.0.1:6379`, `the Redis Sentinel master "mymaster"`, `the Redis Cluster`. */
  readonly where: string
  readonly username: string | undefined
  readonly db: number
  readonly tls: boolean
  readonly commandTimeout: number
}

/** The cause of a store failure: a short reason (`redis_wrongpass`, ...) and a sentence. */
export class RedisProblem extends Error {
  override readonly name = 'RedisProblem'
  readonly reason: string
  constructor(reason: string, message: string, cause: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.reason = reason
  }
}

const DB_OUT_OF_RANGE = /DB index is out of range/i

/** Whether an error is Redis refusing the configured database index. */
export function isDbOutOfRange(error: unknown): boolean {
  return error instanceof Error && DB_OUT_OF_RANGE.test(error.message)
}

function chain(errors: readonly unknown[]): Error[] {
  const out: Error[] = []
  for (const first of errors) {
    let current: unknown = first
    for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
      if (current instanceof RedisProblem) return [current]
      out.push(current)
      current = current.cause
    }
  }
  return out
}

function systemCode(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code
  return typeof code === 'string' && /^E[A-Z_]+$/.test(code) ? code : undefined
}

function user(target: RedisTarget): string {
  return target.username === undefined ? 'the default user' : `the user "${target.username}"`
}

/** Names the cause among `errors` (the command's failure first, then the connection's last). */
export function describeRedisFailure(
  errors: readonly unknown[],
  target: RedisTarget,
  connecting: boolean,
): RedisProblem {
  const all = chain(errors)
  const [known] = all
  if (known instanceof RedisProblem) return known
  const cause = errors.find((error) => error !== undefined)
  const { where } = target
  for (const error of all) {
    const message = error.message
    if (message.startsWith('NOAUTH')) {
      return new RedisProblem(
        'redis_noauth',
        `${where} requires a password (NOAUTH) and none was given: set password (or a redis://:password@host URL).`,
        cause,
      )
    }
    if (message.startsWith('WRONGPASS') || /invalid password/i.test(message)) {
      return new RedisProblem(
        'redis_wrongpass',
        `${where} refused ${user(target)} or its password (WRONGPASS): the ACL user does not exist, is disabled, or the password is wrong.`,
        cause,
      )
    }
    if (message.startsWith('NOPERM')) {
      return new RedisProblem(
        'redis_noperm',
        `${where} does not allow ${user(target)} a command or key the session store needs (NOPERM): grant it +@read +@write +@scripting +@connection and the keys ~<keyPrefix>*.`,
        cause,
      )
    }
    if (DB_OUT_OF_RANGE.test(message)) {
      return new RedisProblem(
        'redis_db_out_of_range',
        `${where} has no database ${target.db} (DB index is out of range): use an index below its "databases" setting (16 by default).`,
        cause,
      )
    }
  }
  for (const error of all) {
    const code = systemCode(error)
    if (code === 'ECONNREFUSED') {
      return new RedisProblem(
        'redis_unreachable',
        `${where} refuses connections (ECONNREFUSED): is redis-server running there?`,
        cause,
      )
    }
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      return new RedisProblem(
        'redis_host_unknown',
        `${where}: the host name is not known (${code}).`,
        cause,
      )
    }
    if ((code === 'ECONNRESET' || code === 'EPIPE') && !target.tls) {
      return new RedisProblem(
        'redis_tls_expected',
        `${where} closed the connection before answering (${code}): does it expect TLS (a rediss:// URL, or tls: true)?`,
        cause,
      )
    }
    if (/wrong version number|packet length too long/i.test(error.message) && target.tls) {
      return new RedisProblem(
        'redis_tls_refused',
        `${where} does not speak TLS (${error.message}): use a redis:// URL, or the server's tls-port.`,
        cause,
      )
    }
  }
  const timedOut = all.some(
    (error) => /timed out/i.test(error.message) || systemCode(error) === 'ETIMEDOUT',
  )
  if (timedOut && connecting && target.tls) {
    return new RedisProblem(
      'redis_tls_refused',
      `${where} completed no TLS handshake within ${target.commandTimeout} ms: is TLS enabled there (its tls-port), or should the URL be redis://?`,
      cause,
    )
  }
  if (timedOut) {
    return new RedisProblem(
      'redis_timeout',
      `${where} did not answer within ${target.commandTimeout} ms.`,
      cause,
    )
  }
  const first = all[0]
  return new RedisProblem(
    'redis_error',
    `${where} cannot be used: ${first === undefined ? 'no answer' : first.message}`,
    cause,
  )
}
