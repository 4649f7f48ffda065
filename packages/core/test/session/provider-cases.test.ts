/**
 * Cases about what the provider tells us and when: `max_age` (B08), UserInfo (B14), metadata
 * that changes under a running application (O16), and shutdown during a refresh (O14).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import {
  createSessionAuth,
  fromRequest,
  MemorySessionStore,
  SsoTypeError,
  type SessionAuthOptions,
  type SessionStore,
} from '@ssokit/core'

import { APP, Browser, startTestIdp, type TestIdp, webAppOptions } from './support.js'

let t: TestIdp
let clock = Date.now()
/** Rewrites the discovery document, or fails it; `undefined` leaves it alone. */
let discovery: ((document: Record<string, unknown>) => Record<string, unknown> | 'fail') | undefined
/** Holds token-endpoint requests until released. */
let tokenGate: Promise<void> | undefined

async function tappedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const url = input instanceof Request ? input.url : String(input)
  if (url.endsWith('/token') && tokenGate) await tokenGate
  const response = await fetch(input, init)
  if (!url.endsWith('/.well-known/openid-configuration') || discovery === undefined) return response
  const rewritten = discovery((await response.json()) as Record<string, unknown>)
  if (rewritten === 'fail') return new Response('unavailable', { status: 500 })
  return Response.json(rewritten)
}

function options(store: SessionStore, extra: Partial<SessionAuthOptions> = {}): SessionAuthOptions {
  return webAppOptions(t.issuer, store, {
    bearer: false,
    expert: { fetch: tappedFetch, now: () => clock },
    ...extra,
  })
}

function calls(path: string, method = 'POST'): number {
  return t.idp.requests.filter((r) => r.method === method && r.path.endsWith(path)).length
}

before(async () => {
  t = await startTestIdp({ accessTokenTtl: 300 })
})

after(async () => {
  await t.close()
})

describe('provider cases', () => {
  it('B08 max_age cannot be passed through, so an ID token is never accepted without auth_time checks', async () => {
    assert.throws(
      () => createSessionAuth(options(new MemorySessionStore(), { loginParams: ['max_age'] })),
      SsoTypeError,
    )
    const auth = createSessionAuth(options(new MemorySessionStore()))
    try {
      const browser = new Browser(auth, t.issuer)
      const authorize = await browser.start('/')
      assert.equal(authorize.searchParams.get('max_age'), null)
      const response = await browser.route('/auth/login?max_age=0&returnTo=/')
      const location = new URL(response.headers.get('location') ?? '')
      assert.equal(location.searchParams.get('max_age'), null)
    } finally {
      await auth.close()
    }
  })

  it('B14 UserInfo is never consulted: the identity comes from the verified tokens only', async () => {
    const auth = createSessionAuth(options(new MemorySessionStore()))
    try {
      const before = calls('/protocol/openid-connect/userinfo', 'GET') + calls('/userinfo')
      const browser = new Browser(auth, t.issuer)
      const callback = await browser.login('alice')
      assert.equal(callback.status, 302)
      const identity = await browser.authenticate('/')
      assert.equal(identity.subject, 'alice')
      assert.equal(identity.email, 'alice@example.org')
      assert.equal(identity.name, 'Alice Example')
      const afterLogin = calls('/protocol/openid-connect/userinfo', 'GET') + calls('/userinfo')
      assert.equal(afterLogin, before, 'no UserInfo request was made')
    } finally {
      await auth.close()
    }
  })

  it('O16 metadata is re-read on a schedule, a failed re-read keeps the last good copy, a changed issuer is never adopted', async () => {
    const auth = createSessionAuth(options(new MemorySessionStore()))
    const start = clock
    try {
      const browser = new Browser(auth, t.issuer)
      const first = await browser.start('/')
      assert.equal(first.pathname, new URL(`${t.issuer}/protocol/openid-connect/auth`).pathname)
      const reads = () => calls('/.well-known/openid-configuration', 'GET')

      // Discovery fails after the metadata went stale: logins go on with the last good copy.
      discovery = () => 'fail'
      clock = start + 2 * 60 * 60 * 1000
      const readsBefore = reads()
      const during = await browser.start('/')
      assert.equal(during.origin + during.pathname, first.origin + first.pathname)
      await new Promise((resolve) => setTimeout(resolve, 50))
      assert.ok(reads() > readsBefore, 'the stale metadata was read again')

      // A document naming another issuer is refused; the good copy stays in use.
      discovery = (document) => ({
        ...document,
        issuer: `${t.issuer}/`,
        authorization_endpoint: 'https://evil.example/authorize',
      })
      clock = start + 4 * 60 * 60 * 1000
      await browser.start('/')
      await new Promise((resolve) => setTimeout(resolve, 50))
      const refused = await browser.start('/')
      assert.notEqual(refused.host, 'evil.example')

      // A genuine change of endpoints (same issuer) is adopted at the next scheduled read.
      discovery = (document) => ({
        ...document,
        authorization_endpoint: `${t.issuer}/protocol/openid-connect/auth?moved=1`,
      })
      clock = start + 6 * 60 * 60 * 1000
      await browser.start('/')
      await new Promise((resolve) => setTimeout(resolve, 50))
      const moved = await browser.start('/')
      assert.equal(moved.searchParams.get('moved'), '1')
    } finally {
      discovery = undefined
      clock = start
      await auth.close()
    }
  })

  it('O14 closing during a refresh lets the in-flight request finish with the refreshed tokens stored', async () => {
    const store = new MemorySessionStore()
    const auth = createSessionAuth(options(store))
    const start = clock
    let release = () => {}
    try {
      const browser = new Browser(auth, t.issuer)
      assert.equal((await browser.login('alice')).status, 302)
      clock = start + 290_000
      tokenGate = new Promise<void>((resolve) => {
        release = resolve
      })
      const refreshesBefore = calls('/protocol/openid-connect/token')
      const inFlight = browser.authenticate('/')
      // Shutdown begins while the refresh waits on the provider.
      await auth.close()
      release()
      const identity = await inFlight
      assert.equal(identity.subject, 'alice')
      assert.equal(calls('/protocol/openid-connect/token') - refreshesBefore, 1)

      // The refreshed tokens were persisted whole: another replica on the same store does not
      // need to refresh again.
      tokenGate = undefined
      const replica = createSessionAuth(options(store))
      try {
        const again = await replica.authenticate(
          fromRequest(new Request(`${APP}/`, { headers: { cookie: browser.cookieHeader() } })),
        )
        assert.equal(again.subject, 'alice')
        assert.equal(calls('/protocol/openid-connect/token') - refreshesBefore, 1)
      } finally {
        await replica.close()
      }
    } finally {
      release()
      tokenGate = undefined
      clock = start
      await store.close()
    }
  })
})
