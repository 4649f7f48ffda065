/**
 * A real Chromium signs in at the development provider through `ssokit proxy`, in front of a
 * Python app under uWSGI that prints the headers it received: the page shows the user's identity
 * headers and none of the proxy's cookies or tokens; logout through the proxy ends the session.
 * Then the B cases of the login flow, as they apply to the proxy's `/_ssokit` routes: state and
 * PKCE, callback CSRF and replay, open redirects through `returnTo` and `rd`, cookie attributes,
 * fixation, forwarded headers, hostile cookies, parameter injection.
 */
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { CookieJar, DEFAULT_IDP_CONFIG, loginWithPassword, startIdp } from '@ssokit/idp'
import type { RunningIdp } from '@ssokit/idp'
import { loadProxyConfig, startProxy, type RunningProxy } from '@ssokit/proxy'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { launchBrowser } from '../support/browser.js'
import { freePort } from '../support/redis.js'
import { startUwsgi, type RunningUwsgi } from '../support/uwsgi.js'

let idp: RunningIdp
let app: RunningUwsgi
let proxy: RunningProxy
/** The same proxy configuration with an https public URL, as in production. */
let production: RunningProxy
let browser: Browser
let base = ''
let productionBase = ''

async function startProxyAt(publicUrl: (port: number) => string): Promise<[RunningProxy, string]> {
  const port = await freePort()
  const url = publicUrl(port)
  const config = await loadProxyConfig({
    flags: {
      upstream: app.origin,
      issuer: idp.issuer,
      'client-id': 'demo-app',
      'public-url': url,
      port,
      host: '127.0.0.1',
    },
    env: { OIDC_CLIENT_SECRET: 'demo-app-secret' },
  })
  return [await startProxy(config, { onEvent: () => {} }), url]
}

before(async () => {
  idp = await startIdp({
    port: 0,
    log: false,
    config: {
      ...DEFAULT_IDP_CONFIG,
      clients: (DEFAULT_IDP_CONFIG.clients ?? []).map((client) =>
        client.client_id === 'demo-app'
          ? {
              ...client,
              redirect_uris: [...(client.redirect_uris ?? []), 'https://app.example/*'],
            }
          : client,
      ),
    },
  })
  app = await startUwsgi()
  ;[proxy, base] = await startProxyAt((port) => `http://localhost:${port}`)
  ;[production] = await startProxyAt(() => 'https://app.example')
  productionBase = `http://127.0.0.1:${production.port}`
  browser = await launchBrowser()
})

after(async () => {
  await browser.close()
  await proxy.close()
  await production.close()
  await app.stop()
  await idp.close()
})

const tokenCalls = () => idp.requests.filter((r) => r.path.endsWith('/token')).length

async function signInWithChromium(context: BrowserContext, path: string): Promise<Page> {
  const page = await context.newPage()
  await page.goto(`${base}${path}`)
  await page.waitForSelector('#kc-form-login')
  assert.ok(page.url().startsWith(idp.issuer), page.url())
  await page.fill('input[name="username"]', 'alice')
  await page.fill('input[name="password"]', 'alice')
  await Promise.all([page.waitForURL(`${base}${path}`), page.click('#kc-login')])
  return page
}

/** The headers table the app printed: `HTTP_*` key -> value. */
async function printedHeaders(page: Page): Promise<Map<string, string>> {
  const rows = await page.$$eval('table tr', (trs) =>
    trs.map((tr) => [
      tr.querySelector('th')?.textContent ?? '',
      tr.querySelector('td')?.textContent ?? '',
    ]),
  )
  return new Map(rows.map(([k = '', v = '']) => [k, v]))
}

/** `/_ssokit/login` with `search`: the jar's flow, and the provider's authorization URL. */
async function beginLogin(search: string, jar = new CookieJar(), at = base) {
  const start = await jar.fetch(`${at}/_ssokit/login${search}`)
  assert.equal(start.status, 302, search)
  return { jar, start, authorize: new URL(start.headers.get('location') ?? '') }
}

/** Signs alice in at the provider for `authorize`; the callback URL the browser would open. */
async function atProvider(authorize: URL): Promise<string> {
  const { location } = await loginWithPassword({
    issuer: idp.issuer,
    authorizeUrl: authorize.href,
    username: 'alice',
    password: 'alice',
  })
  return location
}

/**
 * A page navigation as a browser sends it (Node's fetch() announces itself as
 * `sec-fetch-mode: cors`, which is no navigation): status and Location.
 */
function navigate(path: string, cookie?: string): Promise<{ status: number; location: string }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { accept: 'text/html,application/xhtml+xml' }
    if (cookie !== undefined) headers.cookie = cookie
    const req = request(`http://127.0.0.1:${proxy.port}${path}`, { headers }, (res) => {
      res.resume()
      resolve({ status: res.statusCode ?? 0, location: res.headers.location ?? '' })
    })
    req.on('error', reject)
    req.end()
  })
}

/** A JSON request as a script on the page makes it: 200 with a session, 401 without. */
async function scriptStatus(jar: CookieJar): Promise<number> {
  const response = await jar.fetch(`${base}/whoami`, { headers: { accept: 'application/json' } })
  await response.arrayBuffer()
  return response.status
}

describe('Chromium through ssokit proxy', () => {
  it('signs in at the provider; the app prints identity headers and no proxy cookie or token', async () => {
    const context = await browser.newContext()
    try {
      const page = await signInWithChromium(context, '/set-cookie')
      const seen = await printedHeaders(page)
      assert.equal(seen.get('HTTP_X_FORWARDED_PREFERRED_USERNAME'), 'alice')
      assert.equal(seen.get('HTTP_X_FORWARDED_EMAIL'), 'alice@example.org')
      assert.equal(seen.get('HTTP_X_FORWARDED_GROUPS'), 'admin,user')
      assert.match(seen.get('HTTP_X_FORWARDED_USER') ?? '', /^\S+$/)
      assert.equal((seen.get('HTTP_X_SSOKIT_ASSERTION') ?? '').split('.').length, 3)
      assert.equal(seen.get('HTTP_AUTHORIZATION'), undefined)
      // The app's own cookie comes back to it; the proxy's never does.
      await page.reload()
      const again = await printedHeaders(page)
      assert.equal(again.get('HTTP_COOKIE'), 'app_theme=dark')
      const cookies = await context.cookies(base)
      const session = cookies.find((c) => c.name === 'ssokit-session')
      assert.ok(session !== undefined, cookies.map((c) => c.name).join(','))
      const html = await page.content()
      assert.ok(!html.includes(session.value), 'the session cookie value reached the app')
      assert.doesNotMatch(html, /ssokit-session|ssokit-tx|HTTP_AUTHORIZATION/)
      for (const token of [...html.matchAll(/eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+/g)].map((m) => m[0])) {
        assert.equal(
          token,
          again.get('HTTP_X_SSOKIT_ASSERTION'),
          'a token other than the assertion reached the app',
        )
      }
    } finally {
      await context.close()
    }
  })

  it('B20 logout through the proxy ends the session: the cookie goes, its replay is refused, sign-in is asked again', async () => {
    const context = await browser.newContext()
    try {
      const page = await signInWithChromium(context, '/')
      const [session] = (await context.cookies(base)).filter((c) => c.name === 'ssokit-session')
      assert.ok(session !== undefined)
      const replay = new CookieJar()
      replay.store(
        new Response(null, {
          headers: { 'set-cookie': `${session.name}=${session.value}; Path=/` },
        }),
      )
      assert.equal(await scriptStatus(replay), 200)
      await page.goto(`${base}/_ssokit/logout`)
      const [ended] = await Promise.all([
        page.waitForRequest((r) =>
          r.url().startsWith(`${idp.issuer}/protocol/openid-connect/logout`),
        ),
        page.waitForSelector('#kc-form-login'),
        page.click('button'),
      ])
      assert.ok(
        new URL(ended.url()).searchParams.get('id_token_hint'),
        'logout carries id_token_hint',
      )
      assert.ok(page.url().startsWith(idp.issuer), 'back at the provider login page')
      assert.equal(
        (await context.cookies(base)).find((c) => c.name === 'ssokit-session'),
        undefined,
      )
      assert.equal(await scriptStatus(replay), 401)
    } finally {
      await context.close()
    }
  })
})

describe('the proxy login flow: B cases', () => {
  it('B03 every login uses S256 PKCE, fresh state and nonce, and the exact registered redirect_uri', async () => {
    const [a, b] = await Promise.all([beginLogin('?returnTo=/a'), beginLogin('?returnTo=/b')])
    for (const { authorize } of [a, b]) {
      const p = authorize.searchParams
      assert.equal(p.get('code_challenge_method'), 'S256')
      assert.match(p.get('code_challenge') ?? '', /^[\w-]{43}$/)
      assert.match(p.get('state') ?? '', /^[\w-]{22,}$/)
      assert.match(p.get('nonce') ?? '', /^[\w-]{22,}$/)
      assert.equal(p.get('redirect_uri'), `${base}/_ssokit/callback`)
      assert.equal(p.get('response_type'), 'code')
      assert.equal(p.get('code_verifier'), null)
    }
    for (const key of ['code_challenge', 'state', 'nonce']) {
      assert.notEqual(a.authorize.searchParams.get(key), b.authorize.searchParams.get(key), key)
    }
  })

  it('B30 login parameters cannot override redirect_uri, response_type, client_id, PKCE or drop openid', async () => {
    const { authorize } = await beginLogin(
      '?returnTo=/&scope=admin&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=token' +
        '&client_id=other&code_challenge=x&code_challenge_method=plain&state=s&nonce=n',
    )
    const p = authorize.searchParams
    assert.equal(p.get('redirect_uri'), `${base}/_ssokit/callback`)
    assert.equal(p.get('response_type'), 'code')
    assert.equal(p.get('client_id'), 'demo-app')
    assert.equal(p.get('code_challenge_method'), 'S256')
    assert.notEqual(p.get('code_challenge'), 'x')
    assert.notEqual(p.get('state'), 's')
    assert.notEqual(p.get('nonce'), 'n')
    assert.ok((p.get('scope') ?? '').split(' ').includes('openid'))
    assert.equal(p.getAll('redirect_uri').length, 1)
  })

  it('B18 forwarded headers from a client change neither the redirect_uri nor the return address', async () => {
    const jar = new CookieJar()
    const start = await jar.fetch(`${base}/_ssokit/login?returnTo=/page`, {
      headers: {
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'https',
        forwarded: 'host=evil.example;proto=https',
      },
    })
    const authorize = new URL(start.headers.get('location') ?? '')
    assert.equal(authorize.searchParams.get('redirect_uri'), `${base}/_ssokit/callback`)
    const callback = await jar.fetch(await atProvider(authorize), {
      headers: { 'x-forwarded-host': 'evil.example' },
    })
    assert.equal(callback.status, 302)
    assert.equal(callback.headers.get('location'), `${base}/page`)
  })

  it('B01 a callback without state, with a wrong state, without the flow cookie, or from another browser’s flow logs nobody in and asks no token', async () => {
    const attacker = await beginLogin('?returnTo=/')
    const attackerCallback = new URL(await atProvider(attacker.authorize))
    const victim = await beginLogin('?returnTo=/')
    const victimCallback = new URL(await atProvider(victim.authorize))
    const noState = new URL(victimCallback)
    noState.searchParams.delete('state')
    const wrongState = new URL(victimCallback)
    wrongState.searchParams.set('state', 'A'.repeat(43))
    for (const [url, jar] of [
      [noState, victim.jar],
      [wrongState, victim.jar],
      [attackerCallback, victim.jar],
      [victimCallback, new CookieJar()],
    ] as const) {
      const calls = tokenCalls()
      const response = await jar.fetch(url.href)
      await response.arrayBuffer()
      assert.equal(response.status, 400, url.search)
      assert.ok(
        !response.headers.getSetCookie().some((c) => /^ssokit-session=[^;]/.test(c)),
        `a session cookie was set for ${url.search}`,
      )
      assert.equal(tokenCalls(), calls, `a token request for ${url.search}`)
      assert.equal(await scriptStatus(jar), 401)
    }
    // The victim's own flow is untouched by the attempts and still completes.
    assert.equal((await victim.jar.fetch(victimCallback.href)).status, 302)
    assert.equal(await scriptStatus(victim.jar), 200)
  })

  it('B02 a replayed callback does not exchange the code again', async () => {
    const { jar, authorize } = await beginLogin('?returnTo=/page')
    const callback = await atProvider(authorize)
    assert.equal((await jar.fetch(callback)).status, 302)
    const calls = tokenCalls()
    const replay = await jar.fetch(callback)
    assert.equal(replay.status, 302)
    assert.equal(new URL(replay.headers.get('location') ?? '', base).origin, new URL(base).origin)
    assert.equal(tokenCalls(), calls)
    assert.equal(await scriptStatus(jar), 200)
  })

  it('B19 returnTo and rd lead back only to this origin: every open-redirect vector lands on /', async () => {
    const land = async (search: string): Promise<string> => {
      const { jar, authorize } = await beginLogin(search)
      const callback = await jar.fetch(await atProvider(authorize))
      assert.equal(callback.status, 302, search)
      return new URL(callback.headers.get('location') ?? '', base).href
    }
    const home = `${base}/`
    const vectors = [
      'https://evil.example',
      '//evil.example',
      '///evil.example',
      '/\\evil.example',
      '\\/evil.example',
      '/\t/evil.example',
      '/%09/evil.example',
      '/ /evil.example',
      '/\n/evil.example',
      '/\r\\evil.example',
      '/./\\evil.example',
      '/./../../\\evil.example',
      'https:evil.example',
      'javascript:alert(1)',
      'data:text/html,<script>alert(1)</script>',
      `${base}@evil.example`,
      `http://localhost.evil.example/`,
      `http://localhost:${String(new URL(base).port === '1' ? 2 : 1)}/`,
      `/${'a'.repeat(4096)}`,
    ]
    for (const vector of vectors) {
      for (const key of ['returnTo', 'rd']) {
        const landed = await land(`?${key}=${encodeURIComponent(vector)}`)
        assert.equal(landed, home, `${key}=${JSON.stringify(vector)} landed on ${landed}`)
      }
    }
    assert.equal(await land(`?returnTo=${encodeURIComponent('/page?x=1')}`), `${base}/page?x=1`)
    assert.equal(await land(`?rd=${encodeURIComponent(`${base}/page`)}`), `${base}/page`)
    // A protected request whose path looks like another host returns to this origin.
    const start = await navigate('//evil.example/x')
    assert.equal(start.status, 302)
    const login = new URL(start.location, base)
    assert.equal(login.origin, new URL(base).origin)
    const returnTo = login.searchParams.get('returnTo') ?? ''
    assert.ok(returnTo.startsWith('/') && !/^\/[/\\]/.test(returnTo), returnTo)
  })

  it('B17 cookie attributes: __Host-, Secure, HttpOnly, SameSite=Lax, no Domain, a short-lived flow cookie', async () => {
    const { jar, start, authorize } = await beginLogin(
      '?returnTo=/',
      new CookieJar(),
      productionBase,
    )
    const tx = start.headers.getSetCookie().find((c) => c.startsWith('__Host-ssokit-tx-'))
    assert.ok(tx !== undefined, start.headers.getSetCookie().join(' | '))
    assert.match(tx, /; Path=\/; HttpOnly; SameSite=Lax; Secure; Max-Age=(\d+)$/)
    assert.ok(Number(/Max-Age=(\d+)$/.exec(tx)?.[1]) <= 900)
    assert.doesNotMatch(tx, /Domain=/i)
    assert.equal(authorize.searchParams.get('redirect_uri'), 'https://app.example/_ssokit/callback')
    // The provider sends the browser to the public URL; deliver that callback to this proxy.
    const callback = new URL(await atProvider(authorize))
    const answer = await jar.fetch(`${productionBase}${callback.pathname}${callback.search}`)
    assert.equal(answer.status, 302)
    const session = answer.headers
      .getSetCookie()
      .find((c) => c.startsWith('__Host-ssokit-session='))
    assert.ok(session !== undefined, answer.headers.getSetCookie().join(' | '))
    assert.match(session, /; Path=\/; HttpOnly; SameSite=Lax; Secure; Max-Age=\d+$/)
    assert.doesNotMatch(session, /Domain=/i)
    // Development on http://localhost: the same attributes without Secure (browsers drop it there).
    const dev = await beginLogin('?returnTo=/')
    const devTx = dev.start.headers.getSetCookie().find((c) => c.startsWith('ssokit-tx-'))
    assert.match(devTx ?? '', /; Path=\/; HttpOnly; SameSite=Lax; Max-Age=\d+$/)
  })

  it('B16 a planted session cookie is replaced at sign-in, never adopted', async () => {
    const { jar, authorize } = await beginLogin('?returnTo=/')
    jar.store(
      new Response(null, {
        headers: { 'set-cookie': 'ssokit-session=planted-by-attacker; Path=/' },
      }),
    )
    const callback = await jar.fetch(await atProvider(authorize))
    assert.equal(callback.status, 302)
    const set = callback.headers.getSetCookie().find((c) => c.startsWith('ssokit-session='))
    assert.ok(set !== undefined)
    assert.doesNotMatch(set, /planted-by-attacker/)
    assert.equal(await scriptStatus(jar), 200)
    const planted = new CookieJar()
    planted.store(
      new Response(null, {
        headers: { 'set-cookie': 'ssokit-session=planted-by-attacker; Path=/' },
      }),
    )
    assert.equal(await scriptStatus(planted), 401)
  })

  it('B25 hostile session cookies are no session: 401 for scripts, 302 for pages, never 500', async () => {
    for (const value of ['garbage', 'A'.repeat(3000), 'eyJhbGciOiJub25lIn0.e30.', '%00%ff', '..']) {
      const jar = new CookieJar()
      jar.store(
        new Response(null, { headers: { 'set-cookie': `ssokit-session=${value}; Path=/` } }),
      )
      assert.equal(await scriptStatus(jar), 401, value)
      const page = await navigate('/', `ssokit-session=${value}`)
      assert.equal(page.status, 302, value)
      assert.equal(new URL(page.location, base).pathname, '/_ssokit/login', value)
    }
  })

  it('B28 requests that are not page navigations get 401, never a redirect to the provider', async () => {
    const cases: [string, Record<string, string>][] = [
      ['GET', { accept: 'application/json' }],
      ['GET', { 'x-requested-with': 'XMLHttpRequest' }],
      ['GET', { 'sec-fetch-mode': 'cors' }],
      ['POST', { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' }],
      ['PUT', {}],
      ['DELETE', {}],
    ]
    for (const [method, headers] of cases) {
      const response = await fetch(`${base}/api/items`, { method, headers, redirect: 'manual' })
      assert.equal(response.status, 401, `${method} ${JSON.stringify(headers)}`)
      assert.match(response.headers.get('www-authenticate') ?? '', /^Bearer /)
    }
  })
})
