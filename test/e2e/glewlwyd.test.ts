/**
 * ssokit against a second, independent OpenID provider: Debian's glewlwyd 2.7, started for the
 * suite with its own SQLite database. A client id with a dash (`app-one`) authenticates with
 * client_secret_basic; glewlwyd compares the Basic credentials without decoding them. The
 * settings here are the ones docs/providers.md shows for glewlwyd.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import {
  createVerifier,
  isSsoError,
  MemorySessionStore,
  type SessionAuthOptions,
  type SsoEvent,
} from '@ssokit/core'
import { CookieJar } from '@ssokit/idp'
import { decodeJwt } from 'jose'

import { GlewlwydBrowser, startGlewlwyd, type RunningGlewlwyd } from '../support/glewlwyd.js'
import { startSessionApp, type SessionApp } from '../support/session-app.js'

const API = 'https://api.example.org/'
const CLIENT_ID = 'app-one'
const CLIENT_SECRET = 'app-one-secret-0123456789'
const SECRET = 'glewlwyd-session-secret-0123456789abcdef'

let glewlwyd: RunningGlewlwyd
let app: SessionApp
let clock = Date.now()
const store = new MemorySessionStore()
const events: SsoEvent[] = []

/** The application's browser: cookies for the app, and glewlwyd's own browser half. */
class Browser {
  readonly cookies = new CookieJar()
  readonly provider = new GlewlwydBrowser(glewlwyd)

  async get(url: string, accept = 'text/html'): Promise<Response> {
    const response = await fetch(url, {
      redirect: 'manual',
      headers: { accept, cookie: this.cookies.header(url) },
    })
    this.cookies.store(response)
    return response
  }

  /** A form post from the app's own page, as the sign-out button sends it. */
  async post(url: string): Promise<Response> {
    const response = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        origin: app.url,
        'sec-fetch-site': 'same-origin',
        cookie: this.cookies.header(url),
      },
    })
    this.cookies.store(response)
    return response
  }

  /** `/auth/login` at the app, sign-in at glewlwyd, back to the callback. */
  async signIn(): Promise<Response> {
    const login = await this.get(`${app.url}/auth/login?returnTo=/api/me`)
    assert.equal(login.status, 302)
    const authorize = new URL(login.headers.get('location') ?? '')
    assert.equal(authorize.origin + authorize.pathname, `${glewlwyd.issuer}/auth`)
    assert.deepEqual(authorize.searchParams.getAll('resource'), [API])
    return this.get(await this.provider.authorize(authorize))
  }

  async me(): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await this.get(`${app.url}/api/me`, 'application/json')
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }

  /** The session's stored tokens. */
  async record(): Promise<{ accessToken: string; idToken: string }> {
    const match = /ssokit-session=([^.;]+)\./.exec(this.cookies.header(`${app.url}/`))
    assert.ok(match?.[1], 'the browser holds a session cookie')
    const stored = await store.get(match[1])
    assert.ok(stored, 'the session is in the store')
    return JSON.parse(stored.data) as { accessToken: string; idToken: string }
  }
}

before(async () => {
  glewlwyd = await startGlewlwyd(API)
  app = await startSessionApp(async (publicUrl) => {
    const port = new URL(publicUrl).port
    await glewlwyd.registerClient({
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      redirect_uri: [`${publicUrl}/auth/callback`],
      post_logout_redirect_uris: [`${publicUrl}/`],
      backchannel_logout_uri: `http://127.0.0.1:${port}/auth/backchannel-logout`,
    })
    const options: Omit<SessionAuthOptions, 'publicUrl'> = {
      issuer: glewlwyd.issuer,
      clientId: CLIENT_ID,
      clientSecret: CLIENT_SECRET,
      secret: SECRET,
      store,
      roles: 'roles',
      resource: API,
      // glewlwyd's access tokens name the resource (or the scopes) as audience, never this client.
      bearer: false,
      onEvent: (event) => events.push(event),
      expert: { now: () => clock },
    }
    return options
  })
})

after(async () => {
  await app.close()
  await store.close()
  await glewlwyd.close()
})

describe('glewlwyd', () => {
  it('ready(): discovery, keys and client_secret_basic from its method list', async () => {
    await app.auth.ready()
    const discovery = (await (
      await fetch(`${glewlwyd.issuer}/.well-known/openid-configuration`)
    ).json()) as { issuer: string; token_endpoint_auth_methods_supported: string[] }
    assert.equal(discovery.issuer, glewlwyd.issuer)
    assert.deepEqual(discovery.token_endpoint_auth_methods_supported, [
      'client_secret_basic',
      'client_secret_post',
    ])
  })

  it('signs in app-one with client_secret_basic and reads the roles glewlwyd sends', async () => {
    const browser = new Browser()
    const callback = await browser.signIn()
    assert.equal(callback.status, 302, await callback.text())
    assert.equal(callback.headers.get('location'), `${app.url}/api/me`)
    const { status, body } = await browser.me()
    assert.equal(status, 200)
    assert.equal(body.via, 'session')
    assert.deepEqual([...(body.roles as string[])].sort(), ['admin', 'user'])
    const { idToken } = await browser.record()
    assert.equal(body.subject, decodeJwt(idToken).sub)
  })

  it('verifies its access tokens as bearer tokens for the resource, and refuses its ID tokens', async () => {
    const browser = new Browser()
    assert.equal((await browser.signIn()).status, 302)
    const { accessToken, idToken } = await browser.record()
    assert.equal(decodeJwt(accessToken).aud, API)
    const api = createVerifier({ issuer: glewlwyd.issuer, clientId: API, roles: 'roles' })
    const identity = await api.verify(accessToken)
    assert.equal(identity.subject, decodeJwt(idToken).sub)
    assert.deepEqual([...identity.roles].sort(), ['admin', 'user'])
    await assert.rejects(
      api.verify(idToken),
      (error: unknown) => isSsoError(error) && error.code === 'audience_mismatch',
    )
    const forClient = createVerifier({ issuer: glewlwyd.issuer, clientId: CLIENT_ID })
    await assert.rejects(
      forClient.verify(idToken),
      (error: unknown) => isSsoError(error) && error.code === 'token_invalid',
    )
  })

  it('refreshes the session with the same resource and keeps the identity', async () => {
    const browser = new Browser()
    assert.equal((await browser.signIn()).status, 302)
    const before = await browser.record()
    const start = clock
    try {
      clock = start + 290_000
      const { status, body } = await browser.me()
      assert.equal(status, 200)
      const after = await browser.record()
      assert.notEqual(after.accessToken, before.accessToken, 'the session was refreshed')
      assert.equal(decodeJwt(after.accessToken).aud, API)
      assert.equal(body.subject, decodeJwt(before.idToken).sub)
    } finally {
      clock = start
    }
  })

  it('RP-initiated logout ends the session here and at glewlwyd', async () => {
    const browser = new Browser()
    assert.equal((await browser.signIn()).status, 302)
    const logout = await browser.post(`${app.url}/auth/logout`)
    assert.equal(logout.status, 302)
    const endSession = new URL(logout.headers.get('location') ?? '')
    assert.equal(endSession.origin + endSession.pathname, `${glewlwyd.issuer}/end_session`)
    assert.equal(endSession.searchParams.get('post_logout_redirect_uri'), `${app.url}/`)
    assert.ok(endSession.searchParams.get('id_token_hint'))
    const back = await browser.provider.endSession(endSession)
    assert.equal(new URL(back).origin + new URL(back).pathname, `${app.url}/`)
    assert.equal((await browser.me()).status, 401)
    // glewlwyd's session is gone too: the same browser must sign in there again.
    const again = await browser.get(`${app.url}/auth/login`)
    const resumed = new URL(await browser.provider.resume(again.headers.get('location') ?? ''))
    assert.equal(resumed.pathname, '/login.html')
    assert.equal(resumed.searchParams.has('code'), false)
  })

  it('back-channel logout from glewlwyd ends the session of that sign-in only', async () => {
    const ended = new Browser()
    const kept = new Browser()
    assert.equal((await ended.signIn()).status, 302)
    assert.equal((await kept.signIn()).status, 302)
    const { idToken } = await ended.record()
    const sid = decodeJwt(idToken).sid
    assert.equal(typeof sid, 'string')
    // A logout at glewlwyd (from another application): it POSTs a logout token to the app.
    await ended.provider.endProviderSession(String(sid))
    // glewlwyd sends the logout token from a thread of its own, around the time it answers.
    let status = (await ended.me()).status
    for (let i = 0; i < 100 && status === 200; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
      status = (await ended.me()).status
    }
    assert.equal(
      status,
      401,
      JSON.stringify(events.filter((e) => e.type === 'logout_token_rejected')),
    )
    assert.equal((await kept.me()).status, 200)
  })
})
