/**
 * How soon a session ended on one replica is refused on another that serves it from its
 * per-process cache. The bound is a protocol property, not a speed: replica B refuses the old
 * cookie on the first request it handles after Redis's invalidation message for the session key
 * has reached it, and never accepts it again. Delivery is observed as B's cache dropping the
 * record (or being emptied), so nothing here depends on how fast the machine is.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import { CookieJar, logoutAtIdp, startIdp, type RunningIdp } from '@ssokit/idp'
import { RedisSessionStore } from '@ssokit/redis'

import { startRedis, type RunningRedis } from '../support/redis.js'
import {
  CLIENT_ID,
  CLIENT_SECRET,
  idpConfigFor,
  fetchLogin,
  me,
  startRedisSessionApp,
  type RedisSessionApp,
} from '../support/session-redis.js'

const SECRET = 'invalidation-session-secret-0123456789'
/** Generous: the cap on waiting for a delivery, far above any real one. */
const DELIVERY_CAP_MS = 10_000

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** `GET /api/me` with a fixed Cookie header: a browser that kept a cookie it was told to drop. */
async function withCookie(base: string, cookie: string): Promise<number> {
  const response = await fetch(`${base}/api/me`, {
    headers: { accept: 'application/json', cookie },
  })
  await response.body?.cancel()
  return response.status
}

function cached(store: RedisSessionStore): number {
  return store.cache?.entries ?? 0
}

async function live(store: RedisSessionStore): Promise<void> {
  for (let i = 0; i < 500 && store.cache?.live !== true; i++) await sleep(10)
  assert.equal(store.cache?.live, true, 'the invalidation channel comes up')
}

/** Resolves once `store` has dropped a cached record; fails only past the generous cap. */
async function delivered(store: RedisSessionStore, before: number): Promise<void> {
  const deadline = Date.now() + DELIVERY_CAP_MS
  while (cached(store) >= before && Date.now() < deadline) await sleep(1)
  assert.ok(cached(store) < before, 'the invalidation reached the other replica')
}

describe('a session ended on one replica, served from the cache of another', () => {
  let redis: RunningRedis
  let idp: RunningIdp
  let appA: RedisSessionApp
  let appB: RedisSessionApp
  let storeB: RedisSessionStore

  before(async () => {
    redis = await startRedis()
    const storeA = new RedisSessionStore({ url: redis.url, keyPrefix: 'inval:' })
    storeB = new RedisSessionStore({ url: redis.url, keyPrefix: 'inval:' })
    appA = await startRedisSessionApp({
      options: async (publicUrl) => {
        idp = await startIdp({
          port: 0,
          log: false,
          config: idpConfigFor(publicUrl),
        })
        return { ...options(), store: storeA }
      },
    })
    appB = await startRedisSessionApp({ options: () => ({ ...options(), store: storeB }) })
    await Promise.all([live(storeA), live(storeB)])
  })

  after(async () => {
    await appB.close()
    await appA.close()
    await idp.close()
    await redis.stop()
  })

  function options() {
    return { issuer: idp.issuer, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, secret: SECRET }
  }

  /** Signs in on A, uses the session on B until B answers from its cache; returns the cookie. */
  async function cachedOnB(jar = new CookieJar()) {
    const login = await fetchLogin(idp.issuer, appA.url, 'alice', jar)
    assert.equal(login.callback.status, 302)
    assert.equal((await me(appB.url, login.app)).status, 200)
    assert.equal((await me(appB.url, login.app)).status, 200)
    assert.ok(cached(storeB) > 0, 'B keeps the record')
    return { login, cookie: login.app.header(`${appB.url}/`) }
  }

  it('a logout on A: B refuses the old cookie on its first request after the invalidation, and ever after', async () => {
    for (let round = 0; round < 5; round++) {
      const { login, cookie } = await cachedOnB()
      const before = cached(storeB)
      const logout = await login.app.fetch(`${appA.url}/auth/logout`, { method: 'POST' })
      assert.equal(logout.status, 302)
      await logout.body?.cancel()
      await delivered(storeB, before)
      for (let i = 0; i < 20; i++) assert.equal(await withCookie(appB.url, cookie), 401)
      assert.equal(await withCookie(appA.url, cookie), 401)
    }
  })

  it('a back-channel logout received by A: B refuses the old cookie after the invalidation, and ever after', async () => {
    const { login, cookie } = await cachedOnB()
    const before = cached(storeB)
    const seen = appA.requests.length
    await logoutAtIdp({ issuer: idp.issuer, cookies: login.idp, clientId: CLIENT_ID })
    assert.ok(appA.requests.slice(seen).includes('POST /auth/backchannel-logout'))
    await delivered(storeB, before)
    for (let i = 0; i < 20; i++) assert.equal(await withCookie(appB.url, cookie), 401)
  })

  it('under steady traffic on B during the logout: once refused, the old cookie is never accepted again', async () => {
    for (let round = 0; round < 5; round++) {
      const { login, cookie } = await cachedOnB()
      const answers: number[] = []
      const running = { value: true }
      const traffic = (async () => {
        const deadline = Date.now() + DELIVERY_CAP_MS
        // Sequential requests, so their order is the order B answered them in.
        while (running.value && Date.now() < deadline)
          answers.push(await withCookie(appB.url, cookie))
      })()
      await sleep(5)
      const logout = await login.app.fetch(`${appA.url}/auth/logout`, { method: 'POST' })
      assert.equal(logout.status, 302)
      await logout.body?.cancel()
      // Keep the traffic going until B refuses, then for 20 requests more.
      const deadline = Date.now() + DELIVERY_CAP_MS
      while (Date.now() < deadline) {
        const first = answers.indexOf(401)
        if (first !== -1 && answers.length >= first + 21) break
        await sleep(1)
      }
      running.value = false
      await traffic
      const first = answers.indexOf(401)
      assert.ok(first !== -1, 'B refuses the old cookie')
      assert.ok(
        answers.slice(0, first).every((s) => s === 200),
        `accepted before: ${answers.join(',')}`,
      )
      assert.ok(
        answers.slice(first).every((s) => s === 401),
        `never accepted after the first refusal: ${answers.join(',')}`,
      )
      assert.ok(answers.length >= first + 21)
    }
  })
})
