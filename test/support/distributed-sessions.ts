/**
 * The same proof for every Redis topology: the store contract suite, then browser sessions on
 * two application instances sharing the topology (login on one, use on the other, logout and
 * back-channel logout ending both, one refresh for a race across both), then a primary killed
 * mid-traffic. The caller starts the topology once for its file and says how to fail it over.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import type { SessionAuthOptions } from '@ssokit/core'
import { runSessionStoreContract } from '@ssokit/core/store-contract'
import { CookieJar, logoutAtIdp, startIdp, type RunningIdp } from '@ssokit/idp'
import type { RedisSessionStore } from '@ssokit/redis'

import {
  CLIENT_ID,
  CLIENT_SECRET,
  fetchLogin,
  idpConfigFor,
  me,
  startRedisSessionApp,
  type RedisSessionApp,
} from './session-redis.js'

export interface Topology {
  /** `Redis Cluster`, `Redis Sentinel`: names the suites. */
  readonly name: string
  /** A new store on the topology, under `keyPrefix`. */
  store(keyPrefix: string): RedisSessionStore
  /** Waits until every write so far has reached a replica (`WAIT` on each primary). */
  replicated(): Promise<void>
  /** Kills the primary that holds `key` and resolves once a replica has taken over. */
  failover(key: string): Promise<void>
}

const SECRET = 'distributed-session-secret-0123456789'
const SESSION_COOKIE = 'ssokit-session'
const PREFIX = 'shared:'

function sessionId(jar: CookieJar, base: string): string {
  const pair = jar
    .header(`${base}/`)
    .split('; ')
    .find((p) => p.startsWith(`${SESSION_COOKIE}=`))
  assert.ok(pair, 'the jar holds a session cookie')
  const signed = pair.slice(SESSION_COOKIE.length + 1)
  return signed.slice(0, signed.lastIndexOf('.'))
}

/** `GET /api/me` with a fixed Cookie header: a browser that kept a cookie it was told to drop. */
async function withCookie(base: string, cookie: string): Promise<Response> {
  const response = await fetch(`${base}/api/me`, {
    headers: { accept: 'application/json', cookie },
  })
  await response.body?.cancel()
  return response
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export function runDistributedSessionSuite(topology: Topology): void {
  runSessionStoreContract(`RedisSessionStore on ${topology.name}`, () =>
    topology.store(`contract:${Math.random().toString(36).slice(2)}:`),
  )

  describe(`browser sessions on ${topology.name}`, { timeout: 90_000 }, () => {
    let idp: RunningIdp
    let app1: RedisSessionApp
    let app2: RedisSessionApp
    let clockOffset = 0
    const now = (): number => Date.now() + clockOffset
    let refreshGrants = 0
    const countingFetch: typeof fetch = (input, init) => {
      if (init?.body instanceof URLSearchParams && init.body.get('grant_type') === 'refresh_token')
        refreshGrants += 1
      return fetch(input, init)
    }
    const options = (): Omit<SessionAuthOptions, 'publicUrl' | 'cookies'> => ({
      issuer: idp.issuer,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      secret: SECRET,
      store: topology.store(PREFIX),
      expert: { now, fetch: countingFetch },
    })

    before(async () => {
      app1 = await startRedisSessionApp({
        options: async (publicUrl) => {
          idp = await startIdp({
            port: 0,
            log: false,
            accessTokenTtl: 60,
            config: idpConfigFor(publicUrl),
          })
          return options()
        },
      })
      app2 = await startRedisSessionApp({ options })
    })

    after(async () => {
      await app2.close()
      await app1.close()
      await idp.close()
    })

    it('a session made on one instance works on the other; logout on one ends it on both', async () => {
      const alice = await fetchLogin(idp.issuer, app1.url, 'alice')
      assert.equal(alice.callback.status, 302)
      assert.deepEqual((await me(app2.url, alice.app)).body, { subject: 'alice', via: 'session' })
      assert.equal((await me(app1.url, alice.app)).status, 200)
      const cookie = alice.app.header(`${app1.url}/`)
      const logout = await alice.app.fetch(`${app1.url}/auth/logout`, { method: 'POST' })
      assert.equal(logout.status, 302)
      await logout.body?.cancel()
      // The browser that kept the old cookie is refused everywhere, at once.
      assert.equal((await withCookie(app2.url, cookie)).status, 401)
      assert.equal((await withCookie(app1.url, cookie)).status, 401)
    })

    it('a back-channel logout sent to one instance ends the session on both', async () => {
      const alice = await fetchLogin(idp.issuer, app2.url, 'alice')
      assert.equal((await me(app1.url, alice.app)).status, 200)
      assert.equal((await me(app2.url, alice.app)).status, 200)
      const cookie = alice.app.header(`${app2.url}/`)
      const seen = app1.requests.length
      await logoutAtIdp({ issuer: idp.issuer, cookies: alice.idp, clientId: CLIENT_ID })
      assert.ok(app1.requests.slice(seen).includes('POST /auth/backchannel-logout'))
      assert.equal((await withCookie(app2.url, cookie)).status, 401)
      assert.equal((await withCookie(app1.url, cookie)).status, 401)
    })

    it('twenty parallel requests on both instances after the access token expired: one refresh', async () => {
      const alice = await fetchLogin(idp.issuer, app1.url, 'alice')
      assert.equal((await me(app2.url, alice.app)).status, 200)
      const grants = refreshGrants
      clockOffset += 61_000
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) => me(i % 2 === 0 ? app1.url : app2.url, alice.app)),
      )
      for (const answer of answers) assert.equal(answer.status, 200)
      assert.equal(refreshGrants - grants, 1, 'one refresh grant for the whole race')
      assert.equal((await me(app2.url, alice.app)).status, 200)
      assert.equal((await me(app1.url, alice.app)).status, 200)
      assert.equal(refreshGrants - grants, 1)
    })

    it('a primary killed mid-traffic: 503 with Retry-After meanwhile, never a login, never a logged-out session; all sessions work afterwards', async (t) => {
      const alice = await fetchLogin(idp.issuer, app1.url, 'alice')
      // Alice again, from a second browser: a second session, most likely in another slot.
      const carol = await fetchLogin(idp.issuer, app2.url, 'alice')
      const bob = await fetchLogin(idp.issuer, app1.url, 'bob')
      const bobCookie = bob.app.header(`${app1.url}/`)
      const out = await bob.app.fetch(`${app1.url}/auth/logout`, { method: 'POST' })
      await out.body?.cancel()
      assert.equal((await withCookie(app2.url, bobCookie)).status, 401)
      await topology.replicated()

      const seen: string[] = []
      const running = { value: true }
      const traffic = (async () => {
        for (let i = 0; running.value; i++) {
          const base = i % 2 === 0 ? app1.url : app2.url
          const [a, c, b] = await Promise.all([
            me(base, alice.app),
            me(base, carol.app),
            withCookie(base, bobCookie),
          ])
          for (const [who, response] of [
            ['alice', a.response],
            ['alice2', c.response],
            ['bob', b],
          ] as const) {
            seen.push(`${who} ${response.status}`)
            if (response.status === 503)
              assert.match(response.headers.get('retry-after') ?? '', /^[1-9]\d*$/)
            assert.equal(response.headers.get('location'), null, 'no redirect to the provider')
          }
          await sleep(25)
        }
      })()
      await sleep(200)
      await topology.failover(`${PREFIX}s:${sessionId(alice.app, app1.url)}`)
      await sleep(200)
      running.value = false
      await traffic

      const counts = new Map<string, number>()
      for (const s of seen) counts.set(s, (counts.get(s) ?? 0) + 1)
      t.diagnostic(
        `answers during the failover: ${[...counts].map(([k, n]) => `${k} x${n}`).join(', ')}`,
      )
      const statuses = (who: string) =>
        new Set(seen.filter((s) => s.startsWith(`${who} `)).map((s) => Number(s.split(' ')[1])))
      for (const who of ['alice', 'alice2']) {
        for (const status of statuses(who))
          assert.ok(
            status === 200 || status === 503,
            `${who} got ${status}: ${[...statuses(who)].join(',')}`,
          )
      }
      for (const status of statuses('bob'))
        assert.ok(status === 401 || status === 503, `the logged-out cookie got ${status}`)

      // Afterwards every session Redis kept still works, on both instances, once they reconnect.
      for (const [jar, base] of [
        [alice.app, app1.url],
        [alice.app, app2.url],
        [carol.app, app1.url],
        [carol.app, app2.url],
      ] as const) {
        let answer = await me(base, jar)
        for (let i = 0; i < 100 && answer.status === 503; i++) {
          await sleep(100)
          answer = await me(base, jar)
        }
        assert.equal(answer.status, 200, `a kept session works after the failover (${base})`)
      }
      assert.equal((await withCookie(app1.url, bobCookie)).status, 401)
      const dave = await fetchLogin(idp.issuer, app2.url, 'bob')
      assert.equal(dave.callback.status, 302)
      assert.equal((await me(app1.url, dave.app)).status, 200, 'new logins work too')
    })
  })
}
