/**
 * `ssokit demo` end to end: the development provider and the demo app started by `startDemo`,
 * driven by real Chromium through the provider's login page, and by scripts with bearer tokens.
 * The Redis variant runs against a real redis-server.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import type { Browser, Page } from 'playwright-core'
import { MemorySessionStore, SsoError } from '@ssokit/core'
import { CookieJar, loginWithPassword } from '@ssokit/idp'
import { RedisSessionStore } from '@ssokit/redis'
import { startDemo, startDemoApp, type RunningDemo } from '../../packages/cli/src/demo/index.js'
import { launchBrowser } from '../support/browser.js'
import { startRedis, type RunningRedis } from '../support/redis.js'

interface Fetched {
  status: number
  body: Record<string, unknown>
}

/** A `fetch` from inside the page: same cookies as the page, but an API call, not a navigation. */
function fetchInPage(page: Page, path: string): Promise<Fetched> {
  return page.evaluate(async (target) => {
    const response = await fetch(target, { headers: { accept: 'application/json' } })
    return { status: response.status, body: (await response.json()) as Record<string, unknown> }
  }, path)
}

async function logIn(page: Page, appUrl: string, username: string): Promise<void> {
  await page.goto(`${appUrl}/`)
  await page.click('#login')
  await page.waitForSelector('#kc-form-login')
  await page.fill('input[name="username"]', username)
  await page.fill('input[name="password"]', username)
  await page.click('#kc-login')
  await page.waitForURL(`${appUrl}/`)
  await page.waitForSelector('#logout')
}

async function tokenFor(issuer: string, client: string, secret: string): Promise<string> {
  const response = await fetch(`${issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${btoa(`${client}:${secret}`)}` },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
  })
  assert.equal(response.status, 200)
  const { access_token } = (await response.json()) as { access_token: string }
  return access_token
}

describe('ssokit demo in a browser', () => {
  let demo: RunningDemo
  let browser: Browser

  before(async () => {
    demo = await startDemo({ idpPort: 0, appPort: 0 })
    browser = await launchBrowser()
  })
  after(async () => {
    await browser.close()
    await demo.close()
  })

  it('serves the public home page on the port it really bound', async () => {
    assert.equal(demo.app.url, `http://localhost:${demo.app.port}`)
    assert.notEqual(demo.app.port, 0)
    assert.match(demo.idp.issuer, /^http:\/\/127\.0\.0\.1:\d+\/auth\/realms\/dev$/)
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      const response = await page.goto(`${demo.app.url}/`)
      assert.equal(response?.status(), 200)
      assert.equal(await page.textContent('h1'), 'Hello, World!')
      assert.match((await page.textContent('#server-time')) ?? '', /UTC$/)
      assert.equal(await page.textContent('#login'), 'Log in')
    } finally {
      await context.close()
    }
  })

  it('shows a failed sign-in and a session store outage in the demo style', async () => {
    // A store that cannot answer, as Redis does when it is down.
    const down = new (class extends MemorySessionStore {
      override get(): Promise<undefined> {
        return Promise.reject(new SsoError('session_store_unavailable', 'The store is down.'))
      }
    })()
    const broken = await startDemoApp({ port: 0, issuer: demo.idp.issuer, store: down })
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      for (const [url, status, title] of [
        [`${demo.app.url}/auth/callback?code=forged`, 400, 'Sign-in failed'],
        [`${broken.url}/auth/login`, 503, 'Sign-in is unavailable'],
      ] as const) {
        const response = await page.goto(url)
        assert.equal(response?.status(), status, url)
        assert.equal(await page.textContent('h1'), title)
        assert.equal(await page.textContent('.brand'), 'ssokit demo')
        // The inline style sheet applies (the page's policy allows it): the card is rounded.
        const radius = await page.$eval('.card', (card) => getComputedStyle(card).borderRadius)
        assert.equal(radius, '12px', url)
      }
    } finally {
      await context.close()
      await broken.close()
    }
  })

  it('lets alice log in, see who she is, use the API and admin page, and log out', async () => {
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      await logIn(page, demo.app.url, 'alice')
      assert.equal(await page.textContent('h1'), 'Hello, World!')
      assert.equal(await page.textContent('#name'), 'Alice Example')
      assert.equal(await page.textContent('#username'), 'alice')
      assert.equal(await page.textContent('#email'), 'alice@example.org')
      assert.deepEqual(await page.locator('#roles .chip').allTextContents(), ['admin', 'user'])

      const whoami = await fetchInPage(page, '/api/whoami')
      assert.equal(whoami.status, 200)
      assert.equal(whoami.body.username, 'alice')
      assert.equal(whoami.body.via, 'session')
      assert.deepEqual(whoami.body.roles, ['admin', 'user'])

      const admin = await page.goto(`${demo.app.url}/admin`)
      assert.equal(admin?.status(), 200)
      assert.equal(await page.textContent('h1'), 'Administration')

      // A plain link to the logout route only asks, in the demo's own layout.
      const asked = await page.goto(`${demo.app.url}/auth/logout`)
      assert.equal(asked?.status(), 200)
      assert.equal(await page.textContent('h1'), 'Sign out')
      assert.ok(await page.isVisible('.session form[method="post"] button'))
      assert.equal((await fetchInPage(page, '/api/whoami')).status, 200)

      await page.goto(`${demo.app.url}/`)
      await page.click('#logout')
      await page.waitForSelector('#login')
      assert.equal(new URL(page.url()).origin, demo.app.url)

      const ended = await fetchInPage(page, '/api/whoami')
      assert.equal(ended.status, 401)
      assert.equal(ended.body.error, 'session_missing')
      assert.equal(
        ended.body.login_url,
        `${demo.app.url}/auth/login?returnTo=${encodeURIComponent('/api/whoami')}`,
      )

      // The provider's session ended too: the next login asks for the password again.
      await page.click('#login')
      await page.waitForSelector('#kc-form-login')
    } finally {
      await context.close()
    }
  })

  it('refuses bob the admin page: a friendly page for the browser, JSON for the API', async () => {
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      await logIn(page, demo.app.url, 'bob')
      assert.equal(await page.textContent('#username'), 'bob')
      assert.equal(await page.locator('#roles').count(), 0)

      const admin = await page.goto(`${demo.app.url}/admin`)
      assert.equal(admin?.status(), 403)
      assert.equal(await page.textContent('h1'), 'Access denied')

      const api = await fetchInPage(page, '/admin')
      assert.equal(api.status, 403)
      assert.equal(api.body.error, 'role_required')
    } finally {
      await context.close()
    }
  })

  it('sends a browser that is not signed in from /admin to the login page and back', async () => {
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      await page.goto(`${demo.app.url}/admin`)
      await page.waitForSelector('#kc-form-login')
      assert.ok(page.url().startsWith(`${demo.idp.issuer}/`), page.url())
      await page.fill('input[name="username"]', 'alice')
      await page.fill('input[name="password"]', 'alice')
      await page.click('#kc-login')
      await page.waitForURL(`${demo.app.url}/admin`)
      assert.equal(await page.textContent('h1'), 'Administration')
    } finally {
      await context.close()
    }
  })

  it('sends a browser that came in as 127.0.0.1 to the public host name', async () => {
    const context = await browser.newContext()
    try {
      const page = await context.newPage()
      await page.goto(`http://127.0.0.1:${demo.app.port}/?from=ip`)
      assert.equal(page.url(), `${demo.app.url}/?from=ip`)
      assert.equal(await page.textContent('h1'), 'Hello, World!')
    } finally {
      await context.close()
    }
    // Scripts are answered where they are, whatever name they used.
    const api = await fetch(`http://127.0.0.1:${demo.app.port}/api/whoami`)
    assert.equal(api.status, 401)
  })

  it('answers /api/whoami for a bearer token of demo-app, with no cookie', async () => {
    const token = await tokenFor(demo.idp.issuer, 'demo-app', 'demo-app-secret')
    const response = await fetch(`${demo.app.url}/api/whoami`, {
      headers: { authorization: `Bearer ${token}` },
    })
    assert.equal(response.status, 200)
    const body = (await response.json()) as Record<string, unknown>
    assert.equal(body.subject, 'service-account-demo-app')
    assert.equal(body.kind, 'service')
    assert.equal(body.via, 'bearer')

    // A token issued for another client is not accepted here.
    const other = await tokenFor(demo.idp.issuer, 'demo-api', 'demo-api-secret')
    const refused = await fetch(`${demo.app.url}/api/whoami`, {
      headers: { authorization: `Bearer ${other}` },
    })
    assert.equal(refused.status, 401)
    assert.match(refused.headers.get('www-authenticate') ?? '', /error="invalid_token"/)
  })
})

describe('ssokit demo with Redis', () => {
  let redis: RunningRedis
  let demo: RunningDemo

  before(async () => {
    redis = await startRedis()
    demo = await startDemo({ idpPort: 0, appPort: 0, redis: redis.url })
  })
  after(async () => {
    await demo.close()
    await redis.stop()
  })

  it('keeps sessions in Redis, shared with a second instance of the app', async () => {
    const jar = new CookieJar()
    const { location } = await loginWithPassword({
      issuer: demo.idp.issuer,
      authorizeUrl: `${demo.app.url}/auth/login?returnTo=%2F`,
      username: 'alice',
      password: 'alice',
      cookies: jar,
    })
    assert.ok(location.startsWith(`${demo.app.url}/auth/callback?`), location)
    const callback = await jar.fetch(location)
    assert.equal(callback.status, 302)
    assert.ok(jar.names().includes('ssokit-session'))

    const client = new Redis(redis.url)
    try {
      const keys = await client.keys('ssokit:s:*')
      assert.equal(keys.length, 1)
    } finally {
      client.disconnect()
    }

    const store = new RedisSessionStore({ url: redis.url })
    const second = await startDemoApp({ port: 0, issuer: demo.idp.issuer, store })
    try {
      for (const url of [demo.app.url, second.url]) {
        const response = await fetch(`${url}/api/whoami`, {
          headers: { cookie: jar.header(`${url}/api/whoami`) },
        })
        assert.equal(response.status, 200, url)
        assert.equal(((await response.json()) as Record<string, unknown>).username, 'alice')
      }
    } finally {
      await second.close()
      await store.close()
    }
  })

  it('refuses to start when Redis does not answer', async () => {
    const stopped = await startRedis()
    await stopped.stop()
    await assert.rejects(startDemo({ idpPort: 0, appPort: 0, redis: stopped.url }), {
      name: 'DemoStartError',
      part: 'redis',
    })
  })
})
