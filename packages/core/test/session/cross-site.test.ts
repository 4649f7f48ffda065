/**
 * Requests that other sites make a browser send to the session routes: a link, an image or a
 * form on any page must never end the user's session.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import {
  createSessionAuth,
  MemorySessionStore,
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
let auth: SessionAuth

function options(extra: Partial<SessionAuthOptions> = {}): SessionAuthOptions {
  return webAppOptions(t.issuer, store, { bearer: false, ...extra })
}

async function loggedIn(on: SessionAuth = auth): Promise<Browser> {
  const browser = new Browser(on, t.issuer)
  assert.equal((await browser.login()).status, 302)
  return browser
}

async function stillSignedIn(browser: Browser, id: string): Promise<void> {
  assert.equal((await browser.authenticate()).subject, 'alice')
  assert.ok((await store.get(id)) !== undefined, 'the session record is kept')
}

function clearsSession(response: Response): boolean {
  return response.headers.getSetCookie().some((c) => c.startsWith('__Host-ssokit-session=;'))
}

/** The one form of a session page: its method, action and fields. */
function formOf(html: string): { method: string; action: string; fields: URLSearchParams } {
  const form = /<form method="(get|post)" action="([^"]+)">(.*?)<button/s.exec(html)
  assert.ok(form, 'the page has a form')
  const fields = new URLSearchParams()
  for (const [, name = '', value = ''] of form[3]!.matchAll(
    /<input type="hidden" name="([^"]*)" value="([^"]*)">/g,
  ))
    fields.append(name, value.replaceAll('&amp;', '&'))
  return { method: form[1]!, action: form[2]!.replaceAll('&amp;', '&'), fields }
}

before(async () => {
  t = await startTestIdp()
  store = new MemorySessionStore()
  auth = createSessionAuth(options())
})

after(async () => {
  await store.close()
  await t.close()
})

describe('cross-site requests to logout', () => {
  it('H08 a GET of the logout route ends nothing: it asks, and its button posts the sign-out', async () => {
    const browser = await loggedIn()
    const id = sessionIdOf(browser)
    for (const headers of [FROM_ANOTHER_SITE, FROM_THE_APP, {}]) {
      const asked = await browser.route('/auth/logout', { headers })
      assert.equal(asked.status, 200)
      assert.equal(asked.headers.get('location'), null)
      assert.equal(asked.headers.get('cache-control'), 'no-store')
      assert.equal(clearsSession(asked), false)
      const form = formOf(await asked.text())
      assert.deepEqual([form.method, form.action], ['post', `${APP}/auth/logout`])
      await stillSignedIn(browser, id)
    }
    const done = await browser.route('/auth/logout', { method: 'POST', headers: FROM_THE_APP })
    assert.equal(done.status, 302)
    assert.ok(done.headers.get('location')!.startsWith(`${t.issuer}/`))
    assert.ok(clearsSession(done))
    assert.equal(await store.get(id), undefined)
  })

  it('H08 a logout posted by another site is refused with 403 and a page that says why', async () => {
    const browser = await loggedIn()
    const id = sessionIdOf(browser)
    for (const headers of [
      FROM_ANOTHER_SITE,
      { 'sec-fetch-site': 'same-site' },
      { origin: 'https://evil.example' },
      { origin: 'null' },
      { origin: 'https://app.example.org.evil.example' },
    ]) {
      const refused = await browser.route('/auth/logout', { method: 'POST', headers })
      assert.equal(refused.status, 403, JSON.stringify(headers))
      assert.equal(refused.headers.get('location'), null)
      assert.equal(refused.headers.get('cache-control'), 'no-store')
      assert.equal(clearsSession(refused), false)
      const html = await refused.text()
      assert.match(html, /another site/)
      assert.equal(formOf(html).action, `${APP}/auth/logout`)
      await stillSignedIn(browser, id)
    }
    // This origin's own form, as a browser without Sec-Fetch-Site sends it, signs out.
    const own = await browser.route('/auth/logout', { method: 'POST', headers: { origin: APP } })
    assert.equal(own.status, 302)
    assert.equal(await store.get(id), undefined)
  })

  it('H08 a script without browser headers still signs out with a POST', async () => {
    const browser = await loggedIn()
    const id = sessionIdOf(browser)
    assert.equal((await browser.route('/auth/logout', { method: 'POST' })).status, 302)
    assert.equal(await store.get(id), undefined)
  })
})

describe('cross-site requests to login', () => {
  it('H08 a cross-site GET of the login route shows the current session and ends nothing', async () => {
    const browser = await loggedIn()
    const id = sessionIdOf(browser)
    for (const headers of [FROM_ANOTHER_SITE, { 'sec-fetch-site': 'same-site' }, {}]) {
      const shown = await browser.route('/auth/login?returnTo=%2Freports', { headers })
      assert.equal(shown.status, 200, JSON.stringify(headers))
      assert.equal(shown.headers.get('location'), null)
      assert.equal(clearsSession(shown), false)
      const html = await shown.text()
      assert.match(html, /signed in as alice/)
      assert.ok(html.includes(`href="${APP}/reports"`), 'a link continues to the page')
      await stillSignedIn(browser, id)
    }
    // A confirm value made up by another site is no confirmation.
    const forged = await browser.route(`/auth/login?confirm=${'A'.repeat(43)}`, {
      headers: FROM_ANOTHER_SITE,
    })
    assert.equal(forged.status, 200)
    await stillSignedIn(browser, id)
  })

  it('H08 the page’s own button signs in again, even from a browser that sends no Sec-Fetch-Site', async () => {
    const browser = await loggedIn()
    const id = sessionIdOf(browser)
    const shown = await browser.route('/auth/login?returnTo=%2Freports')
    const form = formOf(await shown.text())
    assert.deepEqual([form.method, form.action], ['get', `${APP}/auth/login`])
    assert.equal(form.fields.get('returnTo'), '/reports')
    const again = await browser.route(`${form.action}?${form.fields.toString()}`)
    assert.equal(again.status, 302)
    assert.ok(again.headers.get('location')!.startsWith(`${t.issuer}/`))
    assert.ok(clearsSession(again))
    assert.equal(await store.get(id), undefined)
    // The value is bound to that session: it ends no other.
    const other = await loggedIn()
    const otherId = sessionIdOf(other)
    const reused = await other.route(`${form.action}?${form.fields.toString()}`, {
      headers: FROM_ANOTHER_SITE,
    })
    assert.equal(reused.status, 200)
    await stillSignedIn(other, otherId)
  })

  it('H08 a cross-site login of a browser without a session still starts a sign-in', async () => {
    const browser = new Browser(auth, t.issuer)
    const start = await browser.route('/auth/login', { headers: FROM_ANOTHER_SITE })
    assert.equal(start.status, 302)
    const callback = await browser.route(
      await browser.atIdp(new URL(start.headers.get('location')!)),
    )
    assert.equal(callback.status, 302)
    assert.equal((await browser.authenticate()).subject, 'alice')
  })

  it('H08 the confirmation pages are laid out by the pages option', async () => {
    const styled = createSessionAuth(
      options({
        pages: {
          render: (page) =>
            `<!doctype html><title>${page.titleHtml}</title><main class="app">${page.bodyHtml}</main>`,
          contentSecurityPolicy: "default-src 'none'; form-action 'self'",
        },
      }),
    )
    const browser = await loggedIn(styled)
    for (const [path, init] of [
      ['/auth/logout', {}],
      ['/auth/logout', { method: 'POST', headers: FROM_ANOTHER_SITE }],
      ['/auth/login', { headers: FROM_ANOTHER_SITE }],
    ] as const) {
      const response = await browser.route(path, init)
      assert.equal(
        response.headers.get('content-security-policy'),
        "default-src 'none'; form-action 'self'",
      )
      const html = await response.text()
      assert.match(html, /^<!doctype html><title>[^<]+<\/title><main class="app">/)
      formOf(html)
    }
  })
})
