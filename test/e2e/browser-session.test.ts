import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'

import { DEFAULT_IDP_CONFIG, startIdp, type RunningIdp } from '@ssokit/idp'
import type { Browser, BrowserContext, Page } from 'playwright-core'

import { launchBrowser } from '../support/browser.js'
import { startSessionApp, type SessionApp } from '../support/session-app.js'

const SECRET = 'browser-session-secret-0123456789abcdef'
/** Short enough that a refresh happens during the test, long enough for a login to finish. */
const ACCESS_TOKEN_TTL = 6

let idp: RunningIdp
let app: SessionApp
let browser: Browser
/** Another site (127.0.0.1, while the app is localhost) whose pages aim at the app's routes. */
let otherSite: Server
let otherUrl: string

before(async () => {
  app = await startSessionApp(async (publicUrl) => {
    idp = await startIdp({
      port: 0,
      log: false,
      accessTokenTtl: ACCESS_TOKEN_TTL,
      config: {
        ...DEFAULT_IDP_CONFIG,
        clients: [
          ...(DEFAULT_IDP_CONFIG.clients ?? []),
          {
            client_id: 'session-app',
            secret: 'session-app-secret',
            grant_types: ['authorization_code', 'refresh_token'],
            redirect_uris: [`${publicUrl}/*`],
            post_logout_redirect_uris: [`${publicUrl}/*`],
            backchannel_logout_uri: `${publicUrl}/auth/backchannel-logout`,
          },
        ],
      },
    })
    return {
      issuer: idp.issuer,
      clientId: 'session-app',
      clientSecret: 'session-app-secret',
      secret: SECRET,
    }
  })
  otherSite = createServer((req, res) => {
    const pages: Record<string, string> = {
      '/post-logout': `<form id="f" method="post" action="${app.url}/auth/logout"></form><script>document.getElementById('f').submit()</script>`,
      '/link-logout': `<a id="go" href="${app.url}/auth/logout">win a prize</a>`,
      '/link-login': `<a id="go" href="${app.url}/auth/login?returnTo=%2F">win a prize</a>`,
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end(`<!doctype html><title>Elsewhere</title>${pages[req.url ?? ''] ?? ''}`)
  })
  otherSite.listen(0, '127.0.0.1')
  await once(otherSite, 'listening')
  otherUrl = `http://127.0.0.1:${(otherSite.address() as AddressInfo).port}`
  browser = await launchBrowser()
})

after(async () => {
  await browser.close()
  await app.close()
  await idp.close()
  otherSite.closeAllConnections()
  await new Promise((resolve) => otherSite.close(resolve))
})

async function signIn(context: BrowserContext, username: string, path = '/'): Promise<Page> {
  const page = await context.newPage()
  await page.goto(`${app.url}${path}`)
  await page.waitForSelector('#kc-form-login')
  await page.fill('input[name="username"]', username)
  await page.fill('input[name="password"]', username)
  await Promise.all([page.waitForURL(`${app.url}${path}`), page.click('#kc-login')])
  return page
}

/** `/api/me` with the browser's cookies, as a script on the page would call it. */
async function me(
  context: BrowserContext,
): Promise<{ status: number; body: { subject?: string; exp?: number } }> {
  const cookie = (await context.cookies(app.url)).map((c) => `${c.name}=${c.value}`).join('; ')
  const response = await fetch(`${app.url}/api/me`, {
    headers: { accept: 'application/json', cookie },
  })
  return {
    status: response.status,
    body: (await response.json()) as { subject?: string; exp?: number },
  }
}

async function poll<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  attempts = 60,
): Promise<T> {
  let value = await probe()
  for (let i = 0; i < attempts && !done(value); i++) {
    await new Promise((resolve) => setTimeout(resolve, 250))
    value = await probe()
  }
  return value
}

describe('browser sessions in Chromium', () => {
  it('logs in through the provider page, shows the user, keeps the session across a token refresh', async () => {
    const context = await browser.newContext()
    try {
      const page = await signIn(context, 'alice', '/')
      assert.equal(await page.textContent('#user'), 'alice')
      assert.equal(await page.textContent('#roles'), 'admin,user')
      const cookies = await context.cookies(app.url)
      const session = cookies.find((c) => c.name === 'ssokit-session')
      assert.ok(session?.httpOnly)
      assert.equal(session.sameSite, 'Lax')
      const first = await me(context)
      assert.equal(first.status, 200)
      const refreshesBefore = idp.requests.filter((r) => r.path.endsWith('/token')).length
      // The ID token is refreshed along with the access token, so `exp` moves when a refresh lands.
      const later = await poll(
        () => me(context),
        (value) => value.body.exp !== first.body.exp,
      )
      assert.equal(later.status, 200)
      assert.equal(later.body.subject, 'alice')
      assert.notEqual(later.body.exp, first.body.exp)
      assert.ok(idp.requests.filter((r) => r.path.endsWith('/token')).length > refreshesBefore)
      await page.goto(`${app.url}/admin`)
      assert.equal(await page.textContent('#admin'), 'Admin area')
    } finally {
      await context.close()
    }
  })

  it('answers bob with 403 on the admin page', async () => {
    const context = await browser.newContext()
    try {
      const page = await signIn(context, 'bob', '/')
      assert.equal(await page.textContent('#user'), 'bob')
      const response = await page.goto(`${app.url}/admin`)
      assert.equal(response?.status(), 403)
    } finally {
      await context.close()
    }
  })

  it('logs out at the provider: the next visit asks for credentials again', async () => {
    const context = await browser.newContext()
    try {
      const page = await signIn(context, 'alice', '/')
      await Promise.all([page.waitForSelector('#kc-form-login'), page.click('#logout')])
      assert.ok(page.url().startsWith(idp.issuer), 'back at the provider login page')
      const cookies = await context.cookies(app.url)
      assert.equal(
        cookies.find((c) => c.name === 'ssokit-session'),
        undefined,
      )
      assert.equal((await me(context)).status, 401)
    } finally {
      await context.close()
    }
  })

  it('H08 pages of another site can neither log the user out nor end the session through login', async () => {
    const context = await browser.newContext()
    try {
      const page = await signIn(context, 'alice', '/')
      const logout = `${app.url}/auth/logout`
      // A form another site submits on its own.
      const [posted] = await Promise.all([
        page.waitForResponse((r) => r.url() === logout),
        page.goto(`${otherUrl}/post-logout`),
      ])
      assert.equal(posted.request().method(), 'POST')
      assert.equal(posted.status(), 403)
      await page.waitForURL(logout)
      assert.match((await page.textContent('body')) ?? '', /another site/)
      assert.equal((await me(context)).status, 200)

      // Links another site shows: the logout route asks, the login route shows the session.
      await page.goto(`${otherUrl}/link-login`)
      await Promise.all([page.waitForURL(/\/auth\/login/), page.click('#go')])
      assert.match((await page.textContent('body')) ?? '', /signed in as alice/)
      assert.equal((await me(context)).status, 200)
      await page.goto(`${otherUrl}/link-logout`)
      await Promise.all([page.waitForURL(logout), page.click('#go')])
      assert.equal((await me(context)).status, 200)

      // The confirmation page's own button signs out, here and at the provider.
      await Promise.all([page.waitForSelector('#kc-form-login'), page.click('button')])
      assert.ok(page.url().startsWith(idp.issuer), 'back at the provider login page')
      assert.equal((await me(context)).status, 401)
    } finally {
      await context.close()
    }
  })

  it('ends the app session when the provider sends a back-channel logout', async () => {
    const context = await browser.newContext()
    try {
      const page = await signIn(context, 'alice', '/')
      assert.equal((await me(context)).status, 200)
      // Sign out at the provider directly (another application's logout would do the same).
      await page.goto(`${idp.issuer}/protocol/openid-connect/logout`)
      await Promise.all([page.waitForLoadState(), page.click('#kc-logout')])
      const after = await poll(
        () => me(context),
        (value) => value.status === 401,
        20,
      )
      assert.equal(after.status, 401)
    } finally {
      await context.close()
    }
  })

  it('B21 the post-logout landing with an unknown state leads to a plain sign-in, never a 500', async () => {
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      const response = await page.goto(`${app.url}/?state=bogus&sid=unknown`)
      assert.equal(response?.status(), 200)
      assert.ok(page.url().startsWith(idp.issuer))
      assert.ok(await page.isVisible('#kc-form-login'))
      let first = response.request()
      for (let previous = first.redirectedFrom(); previous; previous = previous.redirectedFrom())
        first = previous
      assert.equal(first.url(), `${app.url}/?state=bogus&sid=unknown`)
      assert.equal((await first.response())?.status(), 302)
    } finally {
      await context.close()
    }
  })
})
