/**
 * The login-loop guard: it stops sign-ins the application itself keeps refusing, and nothing
 * else, so no other site can lock a user out of their own sign-in.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import {
  createSessionAuth,
  fromRequest,
  MemorySessionStore,
  toResponse,
  type SessionAuth,
  type SessionAuthOptions,
} from '@ssokit/core'

import {
  APP,
  Browser,
  FROM_ANOTHER_SITE,
  FROM_THE_APP,
  sessionIdOf,
  startTestIdp,
  type TestIdp,
  webAppOptions,
} from './support.js'

let t: TestIdp
let store: MemorySessionStore
let clock = Date.now()

function guarded(extra: Partial<SessionAuthOptions> = {}): SessionAuth {
  return createSessionAuth(
    webAppOptions(t.issuer, store, { bearer: false, expert: { now: () => clock }, ...extra }),
  )
}

/** A navigation to an application page, answered as an adapter would: the page, or a refusal. */
async function visit(auth: SessionAuth, browser: Browser, path = '/reports'): Promise<Response> {
  const cookie = browser.cookieHeader(path)
  const request = fromRequest(
    new Request(`${APP}${path}`, {
      headers: { accept: 'text/html', ...(cookie ? { cookie } : {}) },
    }),
  )
  try {
    await auth.authenticate(request)
    return new Response('the page', { status: 200 })
  } catch (error) {
    const response = toResponse(auth.reject(error, request))
    browser.app.store(response)
    return response
  }
}

/** Follows a redirect to the provider through its login, then back to the callback. */
async function roundTrip(browser: Browser, start: Response): Promise<Response> {
  assert.equal(start.status, 302, `the login answered ${start.status}`)
  return browser.route(await browser.atIdp(new URL(start.headers.get('location')!)))
}

/** The session is not kept: the browser drops the cookie, or the server loses the record. */
function lose(browser: Browser): void {
  browser.app.store(
    new Response(null, {
      headers: { 'set-cookie': '__Host-ssokit-session=; Path=/; Max-Age=0' },
    }),
  )
}

before(async () => {
  t = await startTestIdp()
  store = new MemorySessionStore()
})

after(async () => {
  await store.close()
  await t.close()
})

describe('login-loop guard', () => {
  it('H09 forced cross-site sign-in round trips never lead to 429 for the user’s own sign-in', async () => {
    const auth = guarded()
    const browser = new Browser(auth, t.issuer)
    assert.equal((await browser.login()).status, 302)
    for (let round = 0; round < 12; round++) {
      // Another site sends the browser to the login route again and again; when the session is
      // live it is shown, otherwise a sign-in runs. Some rounds the server loses the session.
      const forced = await browser.route('/auth/login', { headers: FROM_ANOTHER_SITE })
      assert.notEqual(forced.status, 429, `round ${round}`)
      if (forced.status === 302) assert.equal((await roundTrip(browser, forced)).status, 302)
      else assert.equal(forced.status, 200)
      if (round % 2 === 0) await store.delete(sessionIdOf(browser))
    }
    // The user's own sign-in, from the application, goes to the provider.
    const own = await browser.route('/auth/login', { headers: FROM_THE_APP })
    assert.equal(own.status, 302)
    assert.equal((await roundTrip(browser, own)).status, 302)
    assert.equal((await browser.authenticate()).subject, 'alice')
    await auth.close()
  })

  it('H09 signing in again and again from the application’s own pages is no loop', async () => {
    const auth = guarded({ maxLoginAttempts: 2 })
    const browser = new Browser(auth, t.issuer)
    for (let round = 0; round < 6; round++) {
      const start = await browser.route('/auth/login', { headers: FROM_THE_APP })
      assert.equal((await roundTrip(browser, start)).status, 302, `round ${round}`)
      assert.equal((await visit(auth, browser)).status, 200)
    }
    await auth.close()
  })

  it('H09 a real loop is still caught: the app sends the browser to sign in, it completes, the app refuses again', async () => {
    const auth = guarded({ maxLoginAttempts: 3 })
    const browser = new Browser(auth, t.issuer)
    let stopped: Response | undefined
    for (let round = 0; round < 10 && stopped === undefined; round++) {
      const refused = await visit(auth, browser)
      assert.equal(refused.status, 302)
      const loginUrl = refused.headers.get('location')!
      assert.ok(loginUrl.startsWith(`${APP}/auth/login?`))
      const start = await browser.route(loginUrl, { headers: FROM_THE_APP })
      if (start.status === 429) {
        stopped = start
        break
      }
      assert.equal((await roundTrip(browser, start)).status, 302)
      lose(browser)
    }
    assert.ok(stopped, 'the loop was stopped')
    assert.ok(Number(stopped.headers.get('retry-after')) > 0)
    assert.equal(stopped.headers.get('location'), null)
    assert.match(await stopped.text(), /cookie/)
    // It stays stopped for the window, then sign-in works again.
    assert.equal((await browser.route('/auth/login', { headers: FROM_THE_APP })).status, 429)
    clock += 121_000
    assert.equal((await browser.route('/auth/login', { headers: FROM_THE_APP })).status, 302)
    await auth.close()
  })

  it('H09 a single-page application’s loop (401 from its API, then login_url) is caught too', async () => {
    const auth = guarded({ maxLoginAttempts: 2 })
    const browser = new Browser(auth, t.issuer)
    assert.equal((await browser.login()).status, 302)
    let stopped = false
    for (let round = 0; round < 8 && !stopped; round++) {
      lose(browser)
      const cookie = browser.cookieHeader('/api/items')
      const request = fromRequest(
        new Request(`${APP}/api/items`, {
          headers: { accept: 'application/json', ...(cookie ? { cookie } : {}) },
        }),
      )
      const error = await auth.authenticate(request).catch((e: unknown) => e)
      const answer = toResponse(auth.reject(error, request))
      browser.app.store(answer)
      assert.equal(answer.status, 401)
      const { login_url } = (await answer.json()) as { login_url: string }
      const start = await browser.route(login_url, { headers: FROM_THE_APP })
      if (start.status === 429) stopped = true
      else assert.equal((await roundTrip(browser, start)).status, 302)
    }
    assert.ok(stopped, 'the loop was stopped')
    await auth.close()
  })
})
