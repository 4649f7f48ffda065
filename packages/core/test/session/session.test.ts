import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import {
  createSessionAuth,
  fromRequest,
  MemorySessionStore,
  SsoError,
  type SessionAuth,
  type SessionAuthOptions,
  type SessionStore,
} from '@ssokit/core'
import { decodeJwt } from 'jose'

import {
  APP,
  Browser,
  SECRET,
  sessionIdOf,
  startTestIdp,
  type TestIdp,
  webAppOptions,
} from './support.js'

let t: TestIdp
let clock = Date.now()
let tokenEndpointDown = false
let rewriteRefresh:
  ((body: Record<string, unknown>) => Promise<Record<string, unknown>>) | undefined
const stores: MemorySessionStore[] = []

async function tappedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const url = input instanceof Request ? input.url : String(input)
  const isToken = url.endsWith('/protocol/openid-connect/token')
  const body = init?.body instanceof URLSearchParams ? init.body : undefined
  const refresh = isToken && body?.get('grant_type') === 'refresh_token'
  if (refresh && tokenEndpointDown) throw new TypeError('fetch failed')
  const response = await fetch(input, init)
  if (!refresh || rewriteRefresh === undefined || response.status !== 200) return response
  return Response.json(await rewriteRefresh((await response.json()) as Record<string, unknown>))
}

function newStore(): MemorySessionStore {
  const store = new MemorySessionStore()
  stores.push(store)
  return store
}

function options(store: SessionStore, extra: Partial<SessionAuthOptions> = {}): SessionAuthOptions {
  return webAppOptions(t.issuer, store, {
    expert: { fetch: tappedFetch, now: () => clock },
    ...extra,
  })
}

function refreshCalls(): number {
  return t.idp.requests.filter(
    (r) => r.method === 'POST' && r.path.endsWith('/openid-connect/token'),
  ).length
}

async function record(store: SessionStore, browser: Browser): Promise<Record<string, unknown>> {
  const stored = await store.get(sessionIdOf(browser))
  assert.ok(stored, 'the session is in the store')
  return JSON.parse(stored.data) as Record<string, unknown>
}

async function loggedIn(auth: SessionAuth, user = 'alice'): Promise<Browser> {
  const browser = new Browser(auth, t.issuer)
  assert.equal((await browser.login(user)).status, 302)
  return browser
}

/** A store that cannot answer: every call rejects as a Redis outage would. */
class DownStore implements SessionStore {
  #fail(): Promise<never> {
    return Promise.reject(
      new SsoError('session_store_unavailable', 'The session store cannot be reached.', {
        retryAfter: 2,
      }),
    )
  }
  get() {
    return this.#fail()
  }
  set() {
    return this.#fail()
  }
  delete() {
    return this.#fail()
  }
  deleteBySubject() {
    return this.#fail()
  }
  deleteBySid() {
    return this.#fail()
  }
  lock() {
    return this.#fail()
  }
  close() {
    return Promise.resolve()
  }
}

before(async () => {
  t = await startTestIdp({
    accessTokenTtl: 300,
    users: [{ username: 'mallory', password: 'mallory', email: 'alice@example.org' }],
  })
})

after(async () => {
  for (const store of stores) await store.close()
  await t.close()
})

describe('authenticate', () => {
  it('B29 the user key is (iss, sub), never the e-mail address', async () => {
    const auth = createSessionAuth(options(newStore()))
    const alice = await (await loggedIn(auth, 'alice')).authenticate()
    const mallory = await (await loggedIn(auth, 'mallory')).authenticate()
    assert.equal(mallory.email, alice.email)
    assert.equal(alice.subject, 'alice')
    assert.equal(mallory.subject, 'mallory')
    assert.equal(mallory.roles.has('admin'), false)
  })

  it('the identity is built once per set of tokens, and never outlives the stored record', async () => {
    const store = newStore()
    const auth = createSessionAuth(options(store))
    const browser = await loggedIn(auth)
    const first = await browser.authenticate()
    assert.equal(await browser.authenticate(), first, 'unchanged tokens: the same frozen identity')
    assert.ok(Object.isFrozen(first.claims))
    // Another login's tokens written under this session id: a new identity, built from them.
    const other = await loggedIn(auth)
    const id = sessionIdOf(browser)
    const replacement = (await store.get(sessionIdOf(other)))!
    await store.set(id, replacement, 600)
    const second = await browser.authenticate()
    assert.notEqual(second, first)
    const tokens = JSON.parse(replacement.data) as { accessToken: string; idToken: string }
    assert.equal(second.claims.sid, decodeJwt(tokens.idToken).sid)
    assert.notEqual(second.claims.sid, first.claims.sid)
    // A session deleted from the store is refused at once, whatever this process built before.
    await store.delete(id)
    await assert.rejects(browser.authenticate(), { code: 'session_missing' })
    await store.set(id, replacement, 600)
    assert.equal((await browser.authenticate()).claims.sid, second.claims.sid)
  })

  it('B24 absolute lifetime and idle timeout come from server-side timestamps', async () => {
    const store = newStore()
    const auth = createSessionAuth(options(store, { sessionLifetime: 3600, idleTimeout: 600 }))
    const start = clock
    try {
      const browser = await loggedIn(auth)
      clock = start + 500_000
      assert.equal(
        (await browser.authenticate()).subject,
        'alice',
        'active within the idle timeout',
      )
      clock = start + 1_000_000
      assert.equal(
        (await browser.authenticate()).subject,
        'alice',
        'activity extended the idle window',
      )
      clock = start + 1_700_000
      await assert.rejects(browser.authenticate(), { code: 'session_missing' })

      const absolute = createSessionAuth(options(store, { sessionLifetime: 3600 }))
      const second = await loggedIn(absolute)
      clock += 3_590_000
      assert.equal((await second.authenticate()).subject, 'alice')
      clock += 20_000
      // The store still holds the record (its own clock did not move); the session is over anyway.
      await assert.rejects(second.authenticate(), { code: 'session_missing' })
    } finally {
      clock = start
    }
  })

  it('B25 hostile session cookies are no session, cleared, never a crash', async () => {
    const auth = createSessionAuth(options(newStore(), { secret: [SECRET] }))
    const other = createSessionAuth(
      options(newStore(), { secret: 'another-secret-that-is-long-enough-000' }),
    )
    const foreign = await loggedIn(other)
    const genuine = (await loggedIn(auth)).cookieHeader()
    const value = /__Host-ssokit-session=([^;]+)/.exec(genuine)![1]!
    const hostile = [
      '\u0000\u0001binary',
      'AAAA.BBBB',
      value.slice(0, -5),
      `${value.split('.')[0]}.${'A'.repeat(43)}`,
      /__Host-ssokit-session=([^;]+)/.exec(foreign.cookieHeader())![1]!,
      'x'.repeat(1_000_000),
    ]
    for (const cookie of hostile) {
      // Adapters hand over whatever bytes arrived; a web Request would refuse some of them.
      const request = {
        method: 'GET',
        url: '/page',
        header: (name: string) =>
          name === 'cookie'
            ? [`__Host-ssokit-session=${cookie}`]
            : name === 'accept'
              ? ['text/html']
              : [],
      }
      const error = await auth.authenticate(request).then(
        () => assert.fail('accepted a hostile cookie'),
        (e: unknown) => e,
      )
      assert.ok(error instanceof SsoError && error.code === 'session_missing')
      const parts = auth.reject(error, request)
      assert.equal(parts.status, 302)
      assert.match(
        String(parts.headers['set-cookie']),
        /__Host-ssokit-session=; Path=\/;.*Max-Age=0/,
      )
    }
    const huge = fromRequest(
      new Request(`${APP}/`, {
        headers: { cookie: `a=${'b'.repeat(1_000_000)}; __Host-ssokit-session=${value}` },
      }),
    )
    await assert.rejects(auth.authenticate(huge), { code: 'session_missing' })
  })

  it('O09 a session lost from the store means login again, cookie cleared', async () => {
    const store = newStore()
    const auth = createSessionAuth(options(store))
    const browser = await loggedIn(auth)
    await store.delete(sessionIdOf(browser))
    const request = fromRequest(
      new Request(`${APP}/`, {
        headers: { cookie: browser.cookieHeader(), accept: 'application/json' },
      }),
    )
    const error = await auth.authenticate(request).catch((e: unknown) => e)
    assert.ok(error instanceof SsoError && error.code === 'session_missing')
    const parts = auth.reject(error, request)
    assert.equal(parts.status, 401)
    assert.match(String(parts.headers['set-cookie']), /Max-Age=0/)
  })

  it('O11 cookies signed with a previous secret still open; a removed secret means no session', async () => {
    const store = newStore()
    const oldSecret = 'the-previous-session-secret-0123456789'
    const before = createSessionAuth(options(store, { secret: oldSecret }))
    const browser = await loggedIn(before)
    const rotated = createSessionAuth(options(store, { secret: [SECRET, oldSecret] }))
    const retired = createSessionAuth(options(store, { secret: SECRET }))
    const request = () =>
      fromRequest(new Request(`${APP}/`, { headers: { cookie: browser.cookieHeader() } }))
    assert.equal((await rotated.authenticate(request())).subject, 'alice')
    await assert.rejects(retired.authenticate(request()), { code: 'session_missing' })
  })

  it('O13 a record in a newer format is no session and is left alone', async () => {
    const store = newStore()
    const auth = createSessionAuth(options(store))
    const browser = await loggedIn(auth)
    const id = sessionIdOf(browser)
    const current = await store.get(id)
    await store.set(id, { ...current!, data: JSON.stringify({ v: 2, future: true }) }, 60)
    const request = fromRequest(
      new Request(`${APP}/`, { headers: { cookie: browser.cookieHeader() } }),
    )
    const error = await auth.authenticate(request).catch((e: unknown) => e)
    assert.ok(error instanceof SsoError && error.code === 'session_missing')
    const cookies = [auth.reject(error, request).headers['set-cookie'] ?? []].flat()
    assert.ok(!cookies.some((c) => c.startsWith('__Host-ssokit-session=')), 'the cookie is kept')
    assert.ok(await store.get(id), 'the newer record was not deleted')
  })
})

describe('refresh', () => {
  it('refreshes the access token shortly before it expires and keeps the identity', async () => {
    const store = newStore()
    const auth = createSessionAuth(options(store))
    const browser = await loggedIn(auth)
    const first = await record(store, browser)
    const start = clock
    try {
      clock = start + 200_000
      await browser.authenticate()
      assert.equal((await record(store, browser)).accessToken, first.accessToken, 'not yet')
      clock = start + 280_000
      const identity = await browser.authenticate()
      const second = await record(store, browser)
      assert.notEqual(second.accessToken, first.accessToken)
      assert.equal(identity.subject, 'alice')
      assert.equal(decodeJwt(String(second.accessToken)).sub, 'alice')
    } finally {
      clock = start
    }
  })

  it('O07 twenty concurrent requests on two replicas cause one refresh', async () => {
    const store = newStore()
    const replicaA = createSessionAuth(options(store))
    const replicaB = createSessionAuth(options(store))
    const browser = await loggedIn(replicaA)
    const cookie = browser.cookieHeader()
    const start = clock
    try {
      clock = start + 290_000
      const before = refreshCalls()
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 === 0 ? replicaA : replicaB).authenticate(
            fromRequest(new Request(`${APP}/`, { headers: { cookie } })),
          ),
        ),
      )
      assert.ok(results.every((identity) => identity.subject === 'alice'))
      assert.equal(refreshCalls() - before, 1)
    } finally {
      clock = start
    }
  })

  it('O06 a refresh refused with invalid_grant ends the session', async () => {
    const store = newStore()
    const auth = createSessionAuth(options(store))
    const browser = await loggedIn(auth)
    const id = sessionIdOf(browser)
    const stored = await store.get(id)
    const data = JSON.parse(stored!.data) as Record<string, unknown>
    await store.set(
      id,
      { ...stored!, data: JSON.stringify({ ...data, refreshToken: 'revoked-token' }) },
      3600,
    )
    const start = clock
    try {
      clock = start + 290_000
      await assert.rejects(browser.authenticate(), { code: 'session_missing' })
      assert.equal(await store.get(id), undefined)
    } finally {
      clock = start
    }
  })

  it('O06 a provider that does not answer keeps the session and serves the request', async () => {
    const store = newStore()
    const auth = createSessionAuth(options(store))
    const browser = await loggedIn(auth)
    const before = await record(store, browser)
    const start = clock
    tokenEndpointDown = true
    try {
      clock = start + 290_000
      assert.equal((await browser.authenticate()).subject, 'alice')
      assert.equal((await record(store, browser)).accessToken, before.accessToken)
      tokenEndpointDown = false
      clock = start + 295_000
      // Within the back-off the session is served as is; after it, the refresh is retried.
      await browser.authenticate()
      clock = start + 301_000
      await browser.authenticate()
      assert.notEqual((await record(store, browser)).accessToken, before.accessToken)
    } finally {
      tokenEndpointDown = false
      clock = start
    }
  })

  it('B15 a refresh that returns tokens for someone else ends the session', async () => {
    const store = newStore()
    const auth = createSessionAuth(options(store))
    const variants: [string, (claims: Record<string, unknown>) => Record<string, unknown>][] = [
      ['sub', (c) => ({ ...c, sub: 'mallory' })],
      ['aud', (c) => ({ ...c, aud: ['web-app', 'other-app'] })],
      ['azp', (c) => ({ ...c, azp: 'other-app', aud: ['web-app', 'other-app'] })],
    ]
    for (const [name, change] of variants) {
      const browser = await loggedIn(auth)
      const id = sessionIdOf(browser)
      const original = decodeJwt(String((await record(store, browser)).idToken))
      const now = Math.floor(Date.now() / 1000)
      rewriteRefresh = async (body) => ({
        ...body,
        id_token: await t.sign(change({ ...original, nonce: undefined, iat: now, exp: now + 300 })),
      })
      const start = clock
      try {
        clock = start + 290_000
        await assert.rejects(browser.authenticate(), { code: 'session_missing' }, name)
        assert.equal(await store.get(id), undefined, name)
      } finally {
        rewriteRefresh = undefined
        clock = start
      }
    }
    // The same rewrite with unchanged claims keeps the session: the cases above fail on the claims.
    const browser = await loggedIn(auth)
    const original = decodeJwt(String((await record(store, browser)).idToken))
    const now = Math.floor(Date.now() / 1000)
    rewriteRefresh = async (body) => ({
      ...body,
      id_token: await t.sign({ ...original, nonce: undefined, iat: now, exp: now + 300 }),
    })
    const start = clock
    try {
      clock = start + 290_000
      assert.equal((await browser.authenticate()).subject, 'alice')
    } finally {
      rewriteRefresh = undefined
      clock = start
    }
  })
})

describe('store outage', () => {
  it('O08 a failing store answers 503 with the cookie kept and no redirect; bearer requests still work', async () => {
    const healthy = createSessionAuth(options(newStore()))
    const browser = await loggedIn(healthy)
    const accessToken = String((await record(stores.at(-1)!, browser)).accessToken)
    const down = createSessionAuth(options(new DownStore()))
    const request = fromRequest(
      new Request(`${APP}/page`, {
        headers: { cookie: browser.cookieHeader(), accept: 'text/html' },
      }),
    )
    const error = await down.authenticate(request).catch((e: unknown) => e)
    assert.ok(error instanceof SsoError && error.code === 'session_store_unavailable')
    const parts = down.reject(error, request)
    assert.equal(parts.status, 503)
    assert.ok(Number(parts.headers['retry-after']) > 0)
    assert.equal(parts.headers.location, undefined)
    assert.equal(parts.headers['set-cookie'], undefined)
    // A login started while the store answered and finished after it failed: 503, not a loop.
    const started = new Browser(healthy, t.issuer)
    const callbackUrl = await started.atIdp(await started.start())
    const callback = await down.handle(
      new Request(callbackUrl, { headers: { cookie: started.app.header(callbackUrl) } }),
    )
    assert.equal(callback?.status, 503)
    // Bearer tokens do not need the store.
    const bearer = fromRequest(
      new Request(`${APP}/api`, { headers: { authorization: `Bearer ${accessToken}` } }),
    )
    const identity = await down.authenticate(bearer)
    assert.equal(identity.subject, 'alice')
    assert.equal(identity.via, 'bearer')
  })

  it('O08 a new login answers 503 before any round trip to the provider', async () => {
    const down = createSessionAuth(options(new DownStore()))
    const seen = t.idp.requests.length
    const login = await new Browser(down, t.issuer).route('/auth/login?returnTo=%2F')
    assert.equal(login.status, 503)
    assert.ok(Number(login.headers.get('retry-after')) > 0)
    assert.equal(login.headers.get('location'), null)
    assert.match(await login.text(), /session service cannot be reached/)
    assert.equal(t.idp.requests.length, seen, 'the provider was not contacted')
    // The same route on a store that answers sends the browser to the provider.
    const healthy = createSessionAuth(options(newStore()))
    const started = await new Browser(healthy, t.issuer).route('/auth/login?returnTo=%2F')
    assert.equal(started.status, 302)
  })

  it('O08 a genuinely missing session is still “no session”', async () => {
    const auth = createSessionAuth(options(newStore()))
    const browser = await loggedIn(auth)
    const other = createSessionAuth(options(newStore()))
    await assert.rejects(
      other.authenticate(
        fromRequest(new Request(`${APP}/`, { headers: { cookie: browser.cookieHeader() } })),
      ),
      {
        code: 'session_missing',
      },
    )
  })
})
