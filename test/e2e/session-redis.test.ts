/**
 * Browser sessions kept in a real redis-server, shared by several application instances, against
 * the development provider: restarts (O10), back-channel logout across replicas (O15), one
 * refresh per session across replicas (O07), Redis down or stalled (O08), configuration from
 * environment variables. Logins are driven with plain fetch and a cookie jar.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import { Redis } from 'ioredis'
import { loadSessionConfig, type SessionAuthOptions } from '@ssokit/core'
import { CookieJar, logoutAtIdp, startIdp, type RunningIdp } from '@ssokit/idp'
import { RedisSessionStore } from '@ssokit/redis'

import { startRedis, type RunningRedis } from '../support/redis.js'
import {
  CLIENT_ID,
  CLIENT_SECRET,
  idpConfigFor,
  beginLogin,
  fetchLogin,
  finishLogin,
  me,
  startRedisSessionApp,
  type RedisSessionApp,
} from '../support/session-redis.js'

const SECRET = 'redis-session-secret-0123456789abcdef'
const ACCESS_TOKEN_TTL = 60
/** The session cookie over http://localhost (no `__Host-` prefix without `Secure`). */
const SESSION_COOKIE = 'ssokit-session'
const TOKEN_PATH = '/protocol/openid-connect/token'

let redis: RunningRedis
let raw: Redis
let idp: RunningIdp
/** Two replicas behind one (imaginary) load balancer, sharing sessions under `shared:`. */
let app1: RedisSessionApp
let app2: RedisSessionApp

/** The replicas' clock: tests move it forward instead of sleeping. */
let clockOffset = 0
const now = (): number => Date.now() + clockOffset
/** Refresh grants sent by any instance, seen on the way out. */
let refreshGrants = 0
const countingFetch: typeof fetch = (input, init) => {
  if (init?.body instanceof URLSearchParams && init.body.get('grant_type') === 'refresh_token')
    refreshGrants += 1
  return fetch(input, init)
}

type BaseOptions = Omit<SessionAuthOptions, 'publicUrl' | 'cookies' | 'store'>

function baseOptions(): BaseOptions {
  return {
    issuer: idp.issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    secret: SECRET,
  }
}

function replica(): Promise<RedisSessionApp> {
  return startRedisSessionApp({
    options: () => ({
      ...baseOptions(),
      store: new RedisSessionStore({ url: redis.url, keyPrefix: 'shared:' }),
      expert: { now, fetch: countingFetch },
    }),
  })
}

before(async () => {
  redis = await startRedis()
  raw = new Redis(redis.url)
  // Redis is stopped on purpose below; the raw client reconnects by itself.
  raw.on('error', () => undefined)
  app1 = await startRedisSessionApp({
    options: async (publicUrl) => {
      idp = await startIdp({
        port: 0,
        log: false,
        accessTokenTtl: ACCESS_TOKEN_TTL,
        // Only the first replica is registered: the provider reaches one instance.
        config: idpConfigFor(publicUrl),
      })
      return {
        ...baseOptions(),
        store: new RedisSessionStore({ url: redis.url, keyPrefix: 'shared:' }),
        expert: { now, fetch: countingFetch },
      }
    },
  })
  app2 = await replica()
})

after(async () => {
  await app2.close()
  await app1.close()
  await idp.close()
  raw.disconnect()
  await redis.stop()
})

/** The session id inside the signed session cookie a jar holds. */
function sessionId(jar: CookieJar, base: string): string {
  const pair = jar
    .header(`${base}/`)
    .split('; ')
    .find((p) => p.startsWith(`${SESSION_COOKIE}=`))
  assert.ok(pair, 'the jar holds a session cookie')
  const signed = pair.slice(SESSION_COOKIE.length + 1)
  return signed.slice(0, signed.lastIndexOf('.'))
}

interface StoredRecord {
  readonly sub: string
  readonly accessToken: string
  readonly accessExpiresAt: number
  readonly refreshAt: number
}

/** The session record as the replicas left it in Redis. */
async function storedRecord(prefix: string, id: string): Promise<StoredRecord | undefined> {
  const value = await raw.get(`${prefix}s:${id}`)
  if (value === null) return undefined
  // The header line, then the session data as the session module wrote it.
  const newline = value.indexOf('\n')
  assert.ok(newline > 0, 'the record is in the header-line format')
  return JSON.parse(value.slice(newline + 1)) as StoredRecord
}

function tokenPosts(): number {
  return idp.requests.filter((r) => r.method === 'POST' && r.path.endsWith(TOKEN_PATH)).length
}

async function serviceToken(): Promise<string> {
  const response = await fetch(`${idp.issuer}${TOKEN_PATH}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'demo-app',
      client_secret: 'demo-app-secret',
      audience: CLIENT_ID,
    }),
  })
  const body = (await response.json()) as { access_token?: string }
  assert.equal(response.status, 200)
  assert.ok(body.access_token)
  return body.access_token
}

function assertRedirectedToApp(response: Response, base: string, path: string): void {
  assert.equal(response.status, 302)
  assert.equal(response.headers.get('location'), `${base}${path}`)
}

describe('browser sessions in Redis', () => {
  it('O10 sessions and in-flight logins survive a restart of the application', async () => {
    const options = (): Omit<SessionAuthOptions, 'publicUrl' | 'cookies'> => ({
      ...baseOptions(),
      store: new RedisSessionStore({ url: redis.url, keyPrefix: 'restart:' }),
    })
    let app = await startRedisSessionApp({ options })
    try {
      const alice = await fetchLogin(idp.issuer, app.url, 'alice')
      assertRedirectedToApp(alice.callback, app.url, '/api/me')
      const id = sessionId(alice.app, app.url)
      assert.equal((await storedRecord('restart:', id))?.sub, 'alice', 'the session is in Redis')
      assert.equal((await me(app.url, alice.app)).status, 200)
      // Another browser is at the provider's login form while the application restarts.
      const bobJar = new CookieJar()
      const authorizeUrl = await beginLogin(app.url, bobJar)

      const port = app.port
      await app.close()
      app = await startRedisSessionApp({ port, options })

      const after = await me(app.url, alice.app)
      assert.equal(after.status, 200)
      assert.deepEqual(after.body, { subject: 'alice', via: 'session' })
      assert.deepEqual(after.response.headers.getSetCookie(), [])
      const bob = await finishLogin(idp.issuer, authorizeUrl, 'bob', bobJar)
      assertRedirectedToApp(bob.callback, app.url, '/api/me')
      assert.deepEqual((await me(app.url, bobJar)).body, { subject: 'bob', via: 'session' })
    } finally {
      await app.close()
    }
  })

  it('O15 a session made on one replica works on the other; back-channel logout to one ends it on both', async () => {
    const alice = await fetchLogin(idp.issuer, app1.url, 'alice')
    assertRedirectedToApp(alice.callback, app1.url, '/api/me')
    const id = sessionId(alice.app, app1.url)
    assert.deepEqual((await me(app2.url, alice.app)).body, { subject: 'alice', via: 'session' })
    assert.equal((await me(app1.url, alice.app)).status, 200)

    const seen1 = app1.requests.length
    const seen2 = app2.requests.length
    // The user signs out at the provider (from any application); it notifies replica 1 only.
    await logoutAtIdp({ issuer: idp.issuer, cookies: alice.idp, clientId: CLIENT_ID })
    assert.ok(app1.requests.slice(seen1).includes('POST /auth/backchannel-logout'))
    assert.ok(!app2.requests.slice(seen2).includes('POST /auth/backchannel-logout'))

    // No polling: the session is gone from the shared store before the provider's logout returns.
    const onReplica2 = await me(app2.url, alice.app)
    assert.equal(onReplica2.status, 401)
    assert.equal(onReplica2.body.error, 'session_missing')
    assert.equal(await storedRecord('shared:', id), undefined)
    assert.ok(!alice.app.names().includes(SESSION_COOKIE), 'the ended session’s cookie is cleared')
  })

  it('O07 one refresh grant for twenty parallel requests on two replicas after the access token expired', async () => {
    const alice = await fetchLogin(idp.issuer, app1.url, 'alice')
    assertRedirectedToApp(alice.callback, app1.url, '/api/me')
    const id = sessionId(alice.app, app1.url)
    const before = await storedRecord('shared:', id)
    assert.ok(before)
    const grantsBefore = refreshGrants
    const postsBefore = tokenPosts()

    // Past the access token's expiry on the replicas' clock.
    clockOffset += before.accessExpiresAt - now() + 1000
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => me(i % 2 === 0 ? app1.url : app2.url, alice.app)),
    )
    for (const answer of answers) {
      assert.equal(answer.status, 200)
      assert.deepEqual(answer.body, { subject: 'alice', via: 'session' })
      assert.deepEqual(answer.response.headers.getSetCookie(), [])
    }
    assert.equal(refreshGrants - grantsBefore, 1, 'one refresh grant sent')
    assert.equal(tokenPosts() - postsBefore, 1, 'one token request reached the provider')

    const afterwards = await storedRecord('shared:', id)
    assert.ok(afterwards, 'the session is intact')
    assert.equal(afterwards.sub, 'alice')
    assert.notEqual(afterwards.accessToken, before.accessToken)
    assert.ok(afterwards.refreshAt > now(), 'the new token is fresh on the replicas’ clock')
    assert.equal((await me(app2.url, alice.app)).status, 200)
    assert.equal((await me(app1.url, alice.app)).status, 200)
    assert.equal(
      refreshGrants - grantsBefore,
      1,
      'the refreshed token is reused, not refreshed again',
    )
  })

  it('OIDC_SESSION_STORE_TYPE=redis with OIDC_SESSION_STORE_HOST/PORT gives Redis-backed sessions', async () => {
    let store: RedisSessionStore | undefined
    const app = await startRedisSessionApp({
      options: (publicUrl) => {
        const env = {
          OIDC_ISSUER: idp.issuer,
          OIDC_CLIENT_ID: CLIENT_ID,
          OIDC_CLIENT_SECRET: CLIENT_SECRET,
          SSOKIT_SESSION_SECRET: SECRET,
          SSOKIT_PUBLIC_URL: publicUrl,
          OIDC_SESSION_STORE_TYPE: 'redis',
          OIDC_SESSION_STORE_HOST: '127.0.0.1',
          OIDC_SESSION_STORE_PORT: String(redis.port),
          SSOKIT_REDIS_KEY_PREFIX: 'env:',
          OIDC_SESSION_AUTH_ALLOWED: 'true',
        }
        const config = loadSessionConfig(env)
        assert.ok(config.sessionAuthAllowed)
        assert.equal(config.store.type, 'redis')
        assert.equal(config.store.port, redis.port)
        store = RedisSessionStore.fromEnv(env)
        assert.ok(store, 'the environment names a Redis store')
        const { publicUrl: fromEnv, ...auth } = config.auth
        assert.equal(fromEnv, publicUrl)
        return { ...auth, store }
      },
    })
    try {
      assert.equal(store?.keyPrefix, 'env:')
      const alice = await fetchLogin(idp.issuer, app.url, 'alice')
      assertRedirectedToApp(alice.callback, app.url, '/api/me')
      assert.deepEqual((await me(app.url, alice.app)).body, { subject: 'alice', via: 'session' })
      const record = await storedRecord('env:', sessionId(alice.app, app.url))
      assert.equal(
        record?.sub,
        'alice',
        'the session was written to the Redis the environment names',
      )
    } finally {
      await app.close()
    }
  })

  it('O08 a stalled Redis answers 503 within the command timeout and keeps the session', async () => {
    const app = await startRedisSessionApp({
      options: () => ({
        ...baseOptions(),
        // Uncached reads: with the cache, a stall shorter than its bound is answered from it
        // (redis-cache.test.ts covers that case).
        store: new RedisSessionStore({
          url: redis.url,
          keyPrefix: 'stall:',
          commandTimeout: 300,
          cache: false,
        }),
      }),
    })
    try {
      const alice = await fetchLogin(idp.issuer, app.url, 'alice')
      assert.equal((await me(app.url, alice.app)).status, 200)
      // Every client's commands wait, the way a Redis busy with a slow command makes them wait.
      await raw.call('CLIENT', 'PAUSE', '1000', 'ALL')
      const stalled = await me(app.url, alice.app)
      assert.equal(stalled.status, 503)
      assert.equal(stalled.body.error, 'session_store_unavailable')
      assert.deepEqual(stalled.response.headers.getSetCookie(), [])
      await raw.call('CLIENT', 'UNPAUSE')
      assert.deepEqual((await me(app.url, alice.app)).body, { subject: 'alice', via: 'session' })
    } finally {
      await app.close()
    }
  })

  it('O08 a stopped Redis: 503 with the cookie kept, no provider redirect, bearer still served, recovery without a new login', async () => {
    const app = await startRedisSessionApp({
      options: () => ({
        ...baseOptions(),
        store: new RedisSessionStore({ url: redis.url, keyPrefix: 'outage:' }),
      }),
    })
    try {
      const alice = await fetchLogin(idp.issuer, app.url, 'alice')
      assert.equal((await me(app.url, alice.app)).status, 200)
      const token = await serviceToken()
      const bearer = { authorization: `Bearer ${token}` }
      assert.deepEqual((await me(app.url, new CookieJar(), bearer)).body, {
        subject: 'service-account-demo-app',
        via: 'bearer',
      })
      // What a Redis with persistence would load again after its restart.
      const keys = await raw.keys('outage:*')
      const saved = await Promise.all(
        keys.map(async (key) => ({
          key,
          ttl: await raw.pttl(key),
          dump: await raw.dumpBuffer(key),
        })),
      )
      await redis.stop()

      const api = await me(app.url, alice.app)
      assert.equal(api.status, 503)
      assert.equal(api.body.error, 'session_store_unavailable')
      assert.match(api.response.headers.get('retry-after') ?? '', /^[1-9]\d*$/)
      assert.deepEqual(api.response.headers.getSetCookie(), [], 'the session cookie is kept')
      assert.equal(api.response.headers.get('location'), null)

      const idpRequests = idp.requests.length
      const page = await alice.app.fetch(`${app.url}/`, {
        headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' },
      })
      assert.equal(page.status, 503, 'a page view is not sent round the login loop')
      assert.equal(page.headers.get('location'), null)
      assert.match(page.headers.get('retry-after') ?? '', /^[1-9]\d*$/)
      assert.deepEqual(page.headers.getSetCookie(), [])
      await page.body?.cancel()

      // Signing in again from this browser is refused at once, before any trip to the provider.
      const relogin = await alice.app.fetch(`${app.url}/auth/login?returnTo=%2F`)
      assert.equal(relogin.status, 503)
      assert.equal(relogin.headers.get('location'), null)
      assert.match(relogin.headers.get('retry-after') ?? '', /^[1-9]\d*$/)
      assert.deepEqual(relogin.headers.getSetCookie(), [])
      await relogin.body?.cancel()
      assert.equal(idp.requests.length, idpRequests, 'the provider saw none of it')
      assert.ok(alice.app.names().includes(SESSION_COOKIE))

      // A browser with no session is refused at /login too, before any trip to the provider.
      const bob = new CookieJar()
      const bobLogin = await bob.fetch(`${app.url}/auth/login?returnTo=%2F`)
      assert.equal(bobLogin.status, 503)
      assert.equal(bobLogin.headers.get('location'), null)
      assert.match(bobLogin.headers.get('retry-after') ?? '', /^[1-9]\d*$/)
      await bobLogin.body?.cancel()
      assert.equal(idp.requests.length, idpRequests, 'the provider saw none of it')
      assert.ok(!bob.names().includes(SESSION_COOKIE))

      // Tokens never touch the store.
      assert.equal((await me(app.url, new CookieJar(), bearer)).status, 200)

      await redis.restart()
      for (const { key, ttl, dump } of saved) await raw.restore(key, Math.max(ttl, 1), dump)
      const statuses: number[] = []
      let answer = await me(app.url, alice.app)
      // The store reconnects on its own within a couple of seconds; meanwhile it answers 503.
      for (let i = 0; i < 50 && answer.status === 503; i++) {
        statuses.push(answer.status)
        await new Promise((resolve) => setTimeout(resolve, 100))
        answer = await me(app.url, alice.app)
      }
      assert.equal(answer.status, 200)
      assert.deepEqual(answer.body, { subject: 'alice', via: 'session' })
      assert.ok(statuses.every((s) => s === 503))
    } finally {
      await app.close()
    }
  })
})
