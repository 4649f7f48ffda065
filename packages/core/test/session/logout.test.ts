import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'

import {
  createSessionAuth,
  fromRequest,
  MemorySessionStore,
  type SessionAuth,
  type SessionAuthOptions,
} from '@ssokit/core'
import { decodeJwt, SignJWT } from 'jose'

import { APP, Browser, sessionIdOf, startTestIdp, type TestIdp, webAppOptions } from './support.js'

const EVENT = 'http://schemas.openid.net/event/backchannel-logout'
let t: TestIdp
let store: MemorySessionStore
let auth: SessionAuth

function options(extra: Partial<SessionAuthOptions> = {}): SessionAuthOptions {
  return webAppOptions(t.issuer, store, {
    bearer: false,
    ...extra,
  })
}

async function loggedIn(on: SessionAuth = auth, user = 'alice'): Promise<Browser> {
  const browser = new Browser(on, t.issuer)
  assert.equal((await browser.login(user)).status, 302)
  return browser
}

async function sidOf(browser: Browser): Promise<string> {
  const stored = await store.get(sessionIdOf(browser))
  return (JSON.parse(stored!.data) as { sid: string }).sid
}

function cookieRequest(browser: Browser) {
  return fromRequest(new Request(`${APP}/`, { headers: { cookie: browser.cookieHeader() } }))
}

function postLogout(on: SessionAuth, token: string | undefined, init: RequestInit = {}) {
  const body = token === undefined ? '' : new URLSearchParams({ logout_token: token }).toString()
  return on.handle(
    new Request(`${APP}/auth/backchannel-logout`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body,
      ...init,
    }),
  )
}

function logoutClaims(extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000)
  return {
    iss: t.issuer,
    aud: 'web-app',
    iat: now,
    exp: now + 120,
    jti: randomUUID(),
    events: { [EVENT]: {} },
    ...extra,
  }
}

/** A user whose 500 roles make an ID token of about 18 kB. */
const MANY_ROLES = {
  username: 'many-roles',
  password: 'many-roles',
  roles: { 'web-app': Array.from({ length: 500 }, (_, i) => `experiment-member-group-${i}`) },
}

before(async () => {
  t = await startTestIdp({ users: [MANY_ROLES] })
  store = new MemorySessionStore()
  auth = createSessionAuth(options())
})

after(async () => {
  await store.close()
  await t.close()
})

describe('RP-initiated logout', () => {
  it('B20 logout deletes the session, expires the cookie and ends the provider session with id_token_hint', async () => {
    const browser = await loggedIn()
    const captured = browser.cookieHeader()
    const id = sessionIdOf(browser)
    const idToken = (JSON.parse((await store.get(id))!.data) as { idToken: string }).idToken
    const response = await browser.route('/auth/logout', { method: 'POST' })
    assert.equal(response.status, 302)
    assert.equal(response.headers.get('cache-control'), 'no-store')
    const target = new URL(response.headers.get('location')!)
    assert.equal(`${target.origin}${target.pathname}`, `${t.issuer}/protocol/openid-connect/logout`)
    assert.equal(target.searchParams.get('id_token_hint'), idToken)
    assert.equal(target.searchParams.get('post_logout_redirect_uri'), `${APP}/`)
    assert.ok(
      response.headers
        .getSetCookie()
        .some((c) => c.startsWith('__Host-ssokit-session=;') && c.includes('Max-Age=0')),
    )
    assert.equal(await store.get(id), undefined)
    const replay = fromRequest(
      new Request(`${APP}/`, { headers: { cookie: captured, accept: 'text/html' } }),
    )
    const error = await auth.authenticate(replay).catch((e: unknown) => e)
    assert.equal(auth.reject(error, replay).status, 302)
    const xhr = fromRequest(
      new Request(`${APP}/`, { headers: { cookie: captured, accept: 'application/json' } }),
    )
    assert.equal(
      auth.reject(await auth.authenticate(xhr).catch((e: unknown) => e), xhr).status,
      401,
    )
    // The provider accepts the end-session request it was sent to.
    const atIdp = await browser.idpCookies.fetch(target)
    assert.ok(atIdp.status < 500)
  })

  it('B21 logout without a session, or with a bogus state, is a neutral redirect and never a 500', async () => {
    for (const path of ['/auth/logout', '/auth/logout?state=bogus&sid=x']) {
      const response = await new Browser(auth, t.issuer).route(path, { method: 'POST' })
      assert.equal(response.status, 302)
      const target = new URL(response.headers.get('location')!)
      assert.equal(target.origin, new URL(t.issuer).origin)
      assert.equal(target.searchParams.get('post_logout_redirect_uri'), `${APP}/`)
      assert.equal(target.searchParams.get('id_token_hint'), null)
    }
  })

  it('H04 a user with a huge ID token is logged out at the provider too: the redirect stays small', async () => {
    const browser = await loggedIn(auth, MANY_ROLES.username)
    const id = sessionIdOf(browser)
    const idToken = (JSON.parse((await store.get(id))!.data) as { idToken: string }).idToken
    assert.ok(idToken.length > 16_000, `the ID token is ${idToken.length} characters`)
    const response = await browser.route('/auth/logout', { method: 'POST' })
    assert.equal(response.status, 302)
    const location = response.headers.get('location')!
    assert.ok(location.length <= 4096, `the logout redirect is ${location.length} characters`)
    const target = new URL(location)
    assert.equal(`${target.origin}${target.pathname}`, `${t.issuer}/protocol/openid-connect/logout`)
    assert.equal(target.searchParams.get('id_token_hint'), null)
    assert.equal(target.searchParams.get('client_id'), 'web-app')
    assert.equal(target.searchParams.get('post_logout_redirect_uri'), `${APP}/`)
    assert.equal(await store.get(id), undefined)

    // The provider takes the request; without the hint it asks, and the user confirms.
    const atIdp = await browser.idpCookies.fetch(target)
    assert.equal(atIdp.status, 200)
    const html = await atIdp.text()
    const action = /<form id="op\.logoutForm" method="post" action="([^"]+)"/.exec(html)?.[1]
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1]
    assert.ok(action !== undefined && xsrf !== undefined, 'the provider shows its confirmation')
    const confirmed = await browser.idpCookies.fetch(new URL(action, target), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    })
    assert.equal(confirmed.status, 303)
    assert.equal(confirmed.headers.get('location'), `${APP}/`)

    // The provider session really ended: the next sign-in asks for the password again.
    const forms = () =>
      t.idp.requests.filter((r) => r.path.includes('/login-actions/') && r.method === 'POST').length
    const before = forms()
    assert.equal((await browser.login(MANY_ROLES.username)).status, 302)
    assert.equal(forms(), before + 1)
    assert.equal((await auth.authenticate(cookieRequest(browser))).subject, MANY_ROLES.username)
  })

  it('B23 nothing is ended by a GET naming a sid', async () => {
    const browser = await loggedIn()
    const sid = await sidOf(browser)
    for (const path of [
      `/auth/frontchannel-logout?iss=${encodeURIComponent(t.issuer)}&sid=${sid}`,
      `/auth/backchannel-logout?sid=${sid}`,
    ]) {
      await auth.handle(new Request(`${APP}${path}`))
    }
    assert.equal((await auth.authenticate(cookieRequest(browser))).subject, 'alice')
  })
})

describe('back-channel logout', () => {
  it('B22 a valid logout token by sid ends that session only, answered 200 no-store', async () => {
    const browser = await loggedIn()
    const other = await loggedIn()
    const sid = await sidOf(browser)
    const otherSid = await sidOf(other)
    assert.notEqual(sid, otherSid)
    const response = await postLogout(
      auth,
      await t.sign(logoutClaims({ sid }), { typ: 'logout+jwt' }),
    )
    assert.equal(response?.status, 200)
    assert.equal(response.headers.get('cache-control'), 'no-store')
    await assert.rejects(auth.authenticate(cookieRequest(browser)), { code: 'session_missing' })
    assert.equal((await auth.authenticate(cookieRequest(other))).subject, 'alice')
  })

  it('B22 a logout token typed JWT (as many providers send) ends the session; its claims tell it apart', async () => {
    const browser = await loggedIn()
    const sid = await sidOf(browser)
    // An ID token of the same session, typed JWT too, is refused: it has a nonce and no event.
    const idTokenLike = await t.sign(
      { ...logoutClaims({ sid }), events: undefined, nonce: 'n' },
      { typ: 'JWT' },
    )
    assert.equal((await postLogout(auth, idTokenLike))?.status, 400)
    assert.equal((await auth.authenticate(cookieRequest(browser))).subject, 'alice')
    for (const typ of ['JWT', 'application/jwt']) {
      const other = await loggedIn()
      const otherSid = await sidOf(other)
      const response = await postLogout(
        auth,
        await t.sign(logoutClaims({ sid: otherSid }), { typ }),
      )
      assert.equal(response?.status, 200, typ)
      await assert.rejects(auth.authenticate(cookieRequest(other)), { code: 'session_missing' })
    }
    const response = await postLogout(auth, await t.sign(logoutClaims({ sid }), { typ: 'JWT' }))
    assert.equal(response?.status, 200)
    await assert.rejects(auth.authenticate(cookieRequest(browser)), { code: 'session_missing' })
  })

  it('B22 a logout token with only sub ends every session of that user', async () => {
    const a = await loggedIn(auth, 'bob')
    const b = await loggedIn(auth, 'bob')
    const alice = await loggedIn(auth, 'alice')
    const response = await postLogout(auth, await t.sign(logoutClaims({ sub: 'bob' })))
    assert.equal(response?.status, 200)
    await assert.rejects(auth.authenticate(cookieRequest(a)), { code: 'session_missing' })
    await assert.rejects(auth.authenticate(cookieRequest(b)), { code: 'session_missing' })
    assert.equal((await auth.authenticate(cookieRequest(alice))).subject, 'alice')
  })

  it('B22 a logout token with only sub spares the sessions created after its iat, on every replica', async () => {
    // A replica whose clock reads ten seconds ahead makes sessions "created after" the token.
    const later = createSessionAuth(options({ expert: { now: () => Date.now() + 10_000 } }))
    const before = await loggedIn(auth, 'bob')
    const iat = Math.floor(Date.now() / 1000)
    const after = await loggedIn(later, 'bob')
    const delayed = await t.sign(logoutClaims({ sub: 'bob', iat: iat - 60 }))
    assert.equal(
      (await postLogout(auth, await t.sign(logoutClaims({ sub: 'bob', iat }))))?.status,
      200,
    )
    for (const replica of [auth, later]) {
      await assert.rejects(replica.authenticate(cookieRequest(before)), { code: 'session_missing' })
      assert.equal((await replica.authenticate(cookieRequest(after))).subject, 'bob')
    }
    assert.equal(await store.get(sessionIdOf(before)), undefined, 'the ended session is deleted')
    // A token issued earlier but delivered now does not move the mark back in time.
    assert.equal((await postLogout(later, delayed))?.status, 200)
    await assert.rejects(auth.authenticate(cookieRequest(before)), { code: 'session_missing' })
    assert.equal((await auth.authenticate(cookieRequest(after))).subject, 'bob')
    // A later logout of the same user ends the newer session too.
    const next = await t.sign(logoutClaims({ sub: 'bob', iat: iat + 20 }))
    assert.equal((await postLogout(auth, next))?.status, 200)
    await assert.rejects(later.authenticate(cookieRequest(after)), { code: 'session_missing' })
  })

  it('B22 invalid logout tokens answer 400 no-store and end nothing', async () => {
    const browser = await loggedIn()
    const sid = await sidOf(browser)
    const now = Math.floor(Date.now() / 1000)
    const hmac = new TextEncoder().encode('x'.repeat(32))
    const evil = await crypto.subtle.generateKey(
      {
        name: 'RSASSA-PKCS1-v1_5',
        modulusLength: 2048,
        publicExponent: new Uint8Array([1, 0, 1]),
        hash: 'SHA-256',
      },
      true,
      ['sign', 'verify'],
    )
    const unsigned = (claims: Record<string, unknown>) =>
      `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`
    const replayed = await t.sign(logoutClaims({ sid: 'some-other-sid' }))
    assert.equal((await postLogout(auth, replayed))?.status, 200)
    const cases: [string, string | undefined][] = [
      ['alg none', unsigned(logoutClaims({ sid }))],
      [
        'HS256',
        await new SignJWT(logoutClaims({ sid })).setProtectedHeader({ alg: 'HS256' }).sign(hmac),
      ],
      [
        'foreign key',
        await new SignJWT(logoutClaims({ sid }))
          .setProtectedHeader({ alg: 'RS256', kid: 'evil' })
          .sign(evil.privateKey),
      ],
      ['wrong iss', await t.sign(logoutClaims({ sid, iss: 'https://evil.example' }))],
      ['wrong aud', await t.sign(logoutClaims({ sid, aud: 'other-app' }))],
      ['no events', await t.sign(logoutClaims({ sid, events: undefined }))],
      [
        'wrong event',
        await t.sign(logoutClaims({ sid, events: { 'http://example.org/other': {} } })),
      ],
      ['nonce', await t.sign(logoutClaims({ sid, nonce: 'n' }))],
      ['no sid or sub', await t.sign(logoutClaims())],
      ['no iat', await t.sign(logoutClaims({ sid, iat: undefined }))],
      ['no jti', await t.sign(logoutClaims({ sid, jti: undefined }))],
      ['expired', await t.sign(logoutClaims({ sid, iat: now - 600, exp: now - 300 }))],
      ['typ at+jwt', await t.sign(logoutClaims({ sid }), { typ: 'at+jwt' })],
      ['typ secevent+jwt', await t.sign(logoutClaims({ sid }), { typ: 'secevent+jwt' })],
      ['replayed jti', replayed],
      ['no logout_token', undefined],
    ]
    for (const [name, token] of cases) {
      const response = await postLogout(auth, token)
      assert.equal(response?.status, 400, name)
      assert.equal(response.headers.get('cache-control'), 'no-store', name)
    }
    const wrongType = await postLogout(auth, await t.sign(logoutClaims({ sid })), {
      headers: { 'content-type': 'application/json' },
    })
    assert.equal(wrongType?.status, 400)
    const get = await auth.handle(new Request(`${APP}/auth/backchannel-logout`))
    assert.equal(get?.status, 405)
    assert.equal((await auth.authenticate(cookieRequest(browser))).subject, 'alice')
  })

  it('O15 a logout delivered to one replica ends the session on every replica', async () => {
    const replicaA = createSessionAuth(options())
    const replicaB = createSessionAuth(options())
    const browser = await loggedIn(replicaA)
    assert.equal((await replicaB.authenticate(cookieRequest(browser))).subject, 'alice')
    const sid = await sidOf(browser)
    assert.equal((await postLogout(replicaA, await t.sign(logoutClaims({ sid }))))?.status, 200)
    await assert.rejects(replicaB.authenticate(cookieRequest(browser)), { code: 'session_missing' })
    // A token replayed to the other replica is refused there too (the jti is shared through the store).
    const token = await t.sign(logoutClaims({ sid: 'x' }))
    assert.equal((await postLogout(replicaA, token))?.status, 200)
    assert.equal((await postLogout(replicaB, token))?.status, 400)
  })

  it('the sid in the session record is the one in the ID token', async () => {
    const browser = await loggedIn()
    const data = JSON.parse((await store.get(sessionIdOf(browser)))!.data) as {
      sid: string
      idToken: string
    }
    assert.equal(decodeJwt(data.idToken).sid, data.sid)
  })
})
