/**
 * How long after a logout on replica A replica B still accepts the old cookie, B serving the
 * session from its per-process cache that Redis invalidates. Two app instances share one Redis;
 * each round signs in on A, warms B's cache, keeps sequential requests with the cookie going to
 * B, logs out on A, and records the window from A's answer to the logout to the start of the
 * last request B still accepted (0 when B refused everything sent after the answer).
 */
import { CookieJar, startIdp, type RunningIdp } from '@ssokit/idp'
import { RedisSessionStore } from '@ssokit/redis'

import {
  CLIENT_ID,
  CLIENT_SECRET,
  fetchLogin,
  idpConfigFor,
  startRedisSessionApp,
  type RedisSessionApp,
} from '../test/support/session-redis.js'

const SECRET = 'bench-invalidation-secret-0123456789'
/** A round that sees no refusal for this long failed: the bound is far below it. */
const GIVE_UP_MS = 5000

export interface InvalidationDelays {
  /** Milliseconds, sorted: per round, how long B still accepted the cookie after A's logout. */
  readonly windows: readonly number[]
  /** Milliseconds, sorted: per round, from A's answer to B's first refusal arriving. */
  readonly firstRefusals: readonly number[]
}

async function status(base: string, cookie: string): Promise<number> {
  const response = await fetch(`${base}/api/me`, {
    headers: { accept: 'application/json', cookie },
  })
  await response.body?.cancel()
  return response.status
}

async function round(idp: RunningIdp, a: RedisSessionApp, b: RedisSessionApp) {
  const login = await fetchLogin(idp.issuer, a.url, 'alice', new CookieJar())
  if (login.callback.status !== 302) throw new Error(`login answered ${login.callback.status}`)
  const cookie = login.app.header(`${b.url}/`)
  for (let i = 0; i < 3; i++) {
    if ((await status(b.url, cookie)) !== 200) throw new Error('B does not accept the session')
  }
  const answers: { sentAt: number; arrivedAt: number; status: number }[] = []
  const logoutAnswered: { at?: number } = {}
  const traffic = (async () => {
    const deadline = performance.now() + GIVE_UP_MS
    while (performance.now() < deadline) {
      const sentAt = performance.now()
      const answer = await status(b.url, cookie)
      answers.push({ sentAt, arrivedAt: performance.now(), status: answer })
      if (logoutAnswered.at !== undefined && answer !== 200) return
    }
  })()
  await new Promise((resolve) => setTimeout(resolve, 5))
  const logout = await login.app.fetch(`${a.url}/auth/logout`, {
    method: 'POST',
    headers: { origin: a.url },
  })
  const loggedOutAt = performance.now()
  logoutAnswered.at = loggedOutAt
  await logout.body?.cancel()
  if (logout.status !== 302 && logout.status !== 303) {
    throw new Error(`the logout on A answered ${logout.status}`)
  }
  await traffic
  const refused = answers.find((x) => x.status !== 200 && x.arrivedAt >= loggedOutAt)
  if (refused === undefined) throw new Error(`B still accepted the cookie ${GIVE_UP_MS} ms later`)
  const accepted = answers.filter((x) => x.status === 200).map((x) => x.sentAt)
  return {
    window: Math.max(0, Math.max(...accepted) - loggedOutAt),
    firstRefusal: Math.max(0, refused.arrivedAt - loggedOutAt),
  }
}

export async function measureInvalidation(
  redisUrl: string,
  rounds: number,
): Promise<InvalidationDelays> {
  let idp: RunningIdp | undefined
  const keyPrefix = 'bench-inval:'
  const a = await startRedisSessionApp({
    options: async (publicUrl) => {
      idp = await startIdp({ port: 0, log: false, config: idpConfigFor(publicUrl) })
      return {
        issuer: idp.issuer,
        clientId: CLIENT_ID,
        clientSecret: CLIENT_SECRET,
        secret: SECRET,
        store: new RedisSessionStore({ url: redisUrl, keyPrefix }),
      }
    },
  })
  const provider = idp
  if (provider === undefined) throw new Error('the provider did not start')
  const storeB = new RedisSessionStore({ url: redisUrl, keyPrefix })
  const b = await startRedisSessionApp({
    options: () => ({
      issuer: provider.issuer,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      secret: SECRET,
      store: storeB,
    }),
  })
  try {
    // Measured from B's steady state: its invalidation channel up, so it serves from its cache.
    for (let i = 0; i < 500 && storeB.cache?.live !== true; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10))
    }
    if (storeB.cache?.live !== true) throw new Error('B’s invalidation channel did not come up')
    const windows: number[] = []
    const firstRefusals: number[] = []
    for (let i = 0; i < rounds; i++) {
      const result = await round(provider, a, b)
      windows.push(result.window)
      firstRefusals.push(result.firstRefusal)
    }
    const sorted = (values: number[]) => values.sort((x, y) => x - y)
    return { windows: sorted(windows), firstRefusals: sorted(firstRefusals) }
  } finally {
    await b.close()
    await a.close()
    await provider.close()
  }
}

/** The value below which `share` (0 to 1) of the sorted `values` lie. */
export function quantile(values: readonly number[], share: number): number {
  if (values.length === 0) return Number.NaN
  return values[Math.min(values.length - 1, Math.floor(share * values.length))] ?? Number.NaN
}
