import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import {
  createSessionAuth,
  MemorySessionStore,
  type SessionAuth,
  type SessionAuthOptions,
} from '@ssokit/core'
import { decodeJwt, SignJWT } from 'jose'

import { APP, Browser, FROM_THE_APP, startTestIdp, type TestIdp, webAppOptions } from './support.js'

let t: TestIdp
let auth: SessionAuth
let store: MemorySessionStore
let sets = 0
/** Rewrites token endpoint answers for the ID token cases; `undefined` leaves them alone. */
let rewriteIdToken: ((claims: Record<string, unknown>) => Promise<string>) | undefined
let tokenEndpointDown = false

function options(extra: Partial<SessionAuthOptions> = {}): SessionAuthOptions {
  return webAppOptions(t.issuer, store, {
    bearer: false,
    expert: { fetch: tappedFetch },
    ...extra,
  })
}

async function tappedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const url = input instanceof Request ? input.url : String(input)
  if (url.endsWith('/token') && tokenEndpointDown) throw new TypeError('fetch failed')
  const response = await fetch(input, init)
  if (!url.endsWith('/token') || rewriteIdToken === undefined || response.status !== 200)
    return response
  const body = (await response.json()) as Record<string, unknown>
  body.id_token = await rewriteIdToken(decodeJwt(String(body.id_token)))
  return Response.json(body, { status: 200, headers: { 'cache-control': 'no-store' } })
}

function tokenCalls(): number {
  return t.idp.requests.filter(
    (r) => r.method === 'POST' && r.path.endsWith('/protocol/openid-connect/token'),
  ).length
}

function setCookies(response: Response): string[] {
  return response.headers.getSetCookie()
}

/** Asserts §0 "nothing logged in": 4xx page, no session cookie, no store write, flow cookie expired. */
async function assertNothingLoggedIn(
  browser: Browser,
  response: Response,
  writesBefore: number,
  status = 400,
) {
  assert.equal(response.status, status)
  assert.equal(response.headers.get('cache-control'), 'no-store')
  assert.match(response.headers.get('content-type') ?? '', /text\/html/)
  assert.ok(
    !setCookies(response).some(
      (c) => c.startsWith('__Host-ssokit-session=') && !c.includes('Max-Age=0'),
    ),
  )
  assert.equal(sets, writesBefore, 'nothing was written to the store')
  await assert.rejects(browser.authenticate('/'), { code: 'session_missing' })
}

before(async () => {
  t = await startTestIdp()
  const memory = new MemorySessionStore()
  store = memory
  // Count writes without changing behaviour.
  const originalSet = memory.set.bind(memory)
  memory.set = async (...args) => {
    sets++
    return originalSet(...args)
  }
  auth = createSessionAuth(options())
})

after(async () => {
  await store.close()
  await t.close()
})

describe('login', () => {
  it('logs alice in and returns to the requested page', async () => {
    const browser = new Browser(auth, t.issuer)
    const response = await browser.login('alice', '/reports?year=2024')
    assert.equal(response.status, 302)
    assert.equal(response.headers.get('location'), `${APP}/reports?year=2024`)
    const identity = await browser.authenticate('/reports')
    assert.equal(identity.subject, 'alice')
    assert.equal(identity.username, 'alice')
    assert.equal(identity.via, 'session')
    assert.equal(identity.kind, 'user')
    assert.ok(identity.roles.has('admin'))
    assert.equal(identity.claims.iss, t.issuer)
  })

  it('B17 cookie attributes of the session and the transaction', async () => {
    const browser = new Browser(auth, t.issuer)
    const start = await browser.route('/auth/login?returnTo=/')
    const tx = setCookies(start).find((c) => c.startsWith('__Host-ssokit-tx-'))!
    assert.match(tx, /; Path=\/; HttpOnly; SameSite=Lax; Secure; Max-Age=600$/)
    assert.doesNotMatch(tx, /Domain=/i)
    const callback = await browser.route(
      await browser.atIdp(new URL(start.headers.get('location')!)),
    )
    const session = setCookies(callback).find((c) => c.startsWith('__Host-ssokit-session='))!
    assert.match(session, /; Path=\/; HttpOnly; SameSite=Lax; Secure; Max-Age=28800$/)
    assert.doesNotMatch(session, /Domain=/i)
    assert.ok(
      setCookies(callback).some(
        (c) => c.startsWith('__Host-ssokit-tx-') && c.includes('Max-Age=0'),
      ),
    )
  })

  it('B26 the session cookie is a small handle; tokens stay in the store', async () => {
    const browser = new Browser(auth, t.issuer)
    const callback = await browser.login()
    const session = setCookies(callback).find((c) => c.startsWith('__Host-ssokit-session='))!
    assert.ok(session.length < 200)
    assert.doesNotMatch(session, /eyJ/)
  })

  it('B31 the callback answers an immediate no-store, no-referrer redirect', async () => {
    const response = await new Browser(auth, t.issuer).login()
    assert.equal(response.status, 302)
    assert.equal(response.headers.get('cache-control'), 'no-store')
    assert.equal(response.headers.get('referrer-policy'), 'no-referrer')
    assert.equal(await response.text(), '')
  })

  it('B03 every login uses S256 PKCE, fresh state and nonce, and an exact redirect_uri', async () => {
    const browser = new Browser(auth, t.issuer)
    const [a, b] = await Promise.all([browser.start('/a'), browser.start('/b')])
    for (const url of [a, b]) {
      assert.equal(url.searchParams.get('code_challenge_method'), 'S256')
      assert.match(url.searchParams.get('code_challenge') ?? '', /^[A-Za-z0-9_-]{43}$/)
      assert.equal(url.searchParams.get('redirect_uri'), `${APP}/auth/callback`)
      assert.equal(url.searchParams.get('response_type'), 'code')
      assert.equal(url.searchParams.get('code_verifier'), null)
      assert.ok((url.searchParams.get('scope') ?? '').split(' ').includes('openid'))
    }
    assert.notEqual(a.searchParams.get('code_challenge'), b.searchParams.get('code_challenge'))
    assert.notEqual(a.searchParams.get('state'), b.searchParams.get('state'))
    assert.notEqual(a.searchParams.get('nonce'), b.searchParams.get('nonce'))
  })

  it('offline sessions: a lifetime above 12 hours asks for offline_access', async () => {
    const scopeOf = async (lifetime: number) => {
      const browser = new Browser(
        createSessionAuth(options({ sessionLifetime: lifetime })),
        t.issuer,
      )
      return (await browser.start()).searchParams.get('scope')?.split(' ') ?? []
    }
    assert.ok((await scopeOf(43_201)).includes('offline_access'))
    assert.ok(!(await scopeOf(43_200)).includes('offline_access'))
    const long = createSessionAuth(options({ sessionLifetime: 7 * 86_400 }))
    const browser = new Browser(long, t.issuer)
    assert.equal((await browser.login()).status, 302)
    assert.equal((await browser.authenticate()).subject, 'alice')
  })

  it('B30 login parameters cannot override the request; only allow-listed ones pass', async () => {
    const browser = new Browser(auth, t.issuer)
    const response = await browser.route(
      '/auth/login?scope=admin&redirect_uri=https://evil.example&response_type=token&prompt=none&client_id=other&code_challenge=x&nonce=n&state=s',
    )
    const url = new URL(response.headers.get('location')!)
    assert.equal(url.searchParams.get('scope'), 'openid profile email')
    assert.equal(url.searchParams.get('redirect_uri'), `${APP}/auth/callback`)
    assert.equal(url.searchParams.get('response_type'), 'code')
    assert.equal(url.searchParams.get('client_id'), 'web-app')
    assert.equal(url.searchParams.get('prompt'), null)
    assert.notEqual(url.searchParams.get('state'), 's')
    assert.notEqual(url.searchParams.get('nonce'), 'n')
    assert.equal(url.searchParams.getAll('scope').length, 1)
    const hinted = createSessionAuth(options({ loginParams: ['kc_idp_hint'] }))
    const hint = await new Browser(hinted, t.issuer).route(
      '/auth/login?kc_idp_hint=cern&prompt=none',
    )
    const hintUrl = new URL(hint.headers.get('location')!)
    assert.equal(hintUrl.searchParams.get('kc_idp_hint'), 'cern')
    assert.equal(hintUrl.searchParams.get('prompt'), null)
  })

  it('B34 a third-party-initiated login for an unknown issuer is refused; target_link_uri is ignored', async () => {
    const browser = new Browser(auth, t.issuer)
    const refused = await browser.route(
      '/auth/login?iss=https://unknown.example&target_link_uri=https://evil.example',
    )
    assert.equal(refused.status, 400)
    assert.equal(refused.headers.get('location'), null)
    const ours = await browser.route(
      `/auth/login?iss=${encodeURIComponent(t.issuer)}&target_link_uri=https://evil.example`,
    )
    assert.equal(ours.status, 302)
    const callback = await browser.route(
      await browser.atIdp(new URL(ours.headers.get('location')!)),
    )
    assert.equal(callback.headers.get('location'), `${APP}/`)
  })

  it('B19 a hostile returnTo lands on / after login', async () => {
    for (const returnTo of ['//evil.example', '/\\evil.example', 'https://evil.example/x']) {
      const response = await new Browser(auth, t.issuer).login('alice', returnTo)
      assert.equal(response.headers.get('location'), `${APP}/`)
    }
  })

  it('B20 opening the login page from the application ends the current session', async () => {
    const browser = new Browser(auth, t.issuer)
    await browser.login()
    const captured = browser.cookieHeader()
    const start = await browser.route('/auth/login', { headers: FROM_THE_APP })
    assert.ok(
      setCookies(start).some(
        (c) => c.startsWith('__Host-ssokit-session=;') && c.includes('Max-Age=0'),
      ),
    )
    const replay = auth.authenticate({
      method: 'GET',
      url: '/',
      header: (n) => (n === 'cookie' ? [captured] : []),
    })
    await assert.rejects(replay, { code: 'session_missing' })
  })

  it('B16 login issues a new session id; a planted session no longer resolves', async () => {
    const attacker = new Browser(auth, t.issuer)
    await attacker.login('bob')
    const planted = attacker.cookieHeader()
    const victim = new Browser(auth, t.issuer)
    const start = await victim.route('/auth/login', {
      headers: { cookie: planted, ...FROM_THE_APP },
    })
    const callback = await victim.route(
      await victim.atIdp(new URL(start.headers.get('location')!), 'alice'),
    )
    assert.equal(callback.status, 302)
    const fresh = victim.cookieHeader()
    assert.notEqual(fresh, planted)
    assert.match(fresh, /__Host-ssokit-session=/)
    assert.equal((await victim.authenticate()).subject, 'alice')
    const old = auth.authenticate({
      method: 'GET',
      url: '/',
      header: (n) => (n === 'cookie' ? [planted] : []),
    })
    await assert.rejects(old, { code: 'session_missing' })
  })

  it('B09 a login after the provider rotates its signing key succeeds', async () => {
    await new Browser(auth, t.issuer).login()
    await t.idp.rotateKeys()
    const response = await new Browser(auth, t.issuer).login()
    assert.equal(response.status, 302)
  })
})

describe('callback validation', () => {
  it('B01 no state, a wrong state, a missing flow cookie, or another browser’s flow: nothing logged in, no token request', async () => {
    const attacker = new Browser(auth, t.issuer)
    const attackerCallback = new URL(await attacker.atIdp(await attacker.start()))
    const victim = new Browser(auth, t.issuer)
    const victimAuthorize = await victim.start()
    const victimCallback = new URL(await victim.atIdp(victimAuthorize))
    const noState = new URL(victimCallback)
    noState.searchParams.delete('state')
    const wrongState = new URL(victimCallback)
    wrongState.searchParams.set('state', 'A'.repeat(43))
    const cases = [noState, wrongState, attackerCallback]
    for (const url of cases) {
      const calls = tokenCalls()
      const writes = sets
      await assertNothingLoggedIn(victim, await victim.route(url.href), writes)
      assert.equal(tokenCalls(), calls, `no token request for ${url.search}`)
    }
    const fresh = new Browser(auth, t.issuer)
    const calls = tokenCalls()
    await assertNothingLoggedIn(fresh, await fresh.route(victimCallback.href), sets)
    assert.equal(tokenCalls(), calls)
    // The victim's own flow is untouched by the attempts and still completes.
    assert.equal((await victim.route(victimCallback.href)).status, 302)
  })

  it('B02 a replayed callback does not exchange the code again', async () => {
    const browser = new Browser(auth, t.issuer)
    const callback = await browser.atIdp(await browser.start('/page'))
    assert.equal((await browser.route(callback)).status, 302)
    const calls = tokenCalls()
    const replay = await browser.route(callback)
    assert.equal(replay.status, 302)
    assert.equal(replay.headers.get('location'), `${APP}/`)
    assert.equal(tokenCalls(), calls)
    const stranger = new Browser(auth, t.issuer)
    await assertNothingLoggedIn(stranger, await stranger.route(callback), sets)
    assert.equal(tokenCalls(), calls)
  })

  it('B04 an injected code from another flow fails at the provider: nothing logged in', async () => {
    const attacker = new Browser(auth, t.issuer)
    const attackerCode = new URL(await attacker.atIdp(await attacker.start())).searchParams.get(
      'code',
    )!
    const victim = new Browser(auth, t.issuer)
    const victimCallback = new URL(await victim.atIdp(await victim.start()))
    victimCallback.searchParams.set('code', attackerCode)
    const writes = sets
    const response = await victim.route(victimCallback.href)
    await assertNothingLoggedIn(victim, response, writes)
    assert.doesNotMatch(await response.clone().text(), new RegExp(attackerCode))
  })

  it('B11 an iss parameter that is not our provider’s, or a missing one, is refused before the token request', async () => {
    for (const mutate of [
      (u: URL) => {
        u.searchParams.set('iss', 'https://evil.example')
      },
      (u: URL) => {
        u.searchParams.delete('iss')
      },
    ]) {
      const browser = new Browser(auth, t.issuer)
      const callback = new URL(await browser.atIdp(await browser.start()))
      assert.equal(callback.searchParams.get('iss'), t.issuer, 'the provider sends RFC 9207 iss')
      mutate(callback)
      const calls = tokenCalls()
      await assertNothingLoggedIn(browser, await browser.route(callback.href), sets)
      assert.equal(tokenCalls(), calls)
    }
  })

  it('B12 duplicated or unexpected response parameters are refused', async () => {
    const mutations: ((u: URL) => void)[] = [
      (u) => {
        u.searchParams.append('code', 'other')
      },
      (u) => {
        u.searchParams.append('state', u.searchParams.get('state')!)
      },
      (u) => {
        u.searchParams.set('id_token', 'x.y.z')
      },
      (u) => {
        u.searchParams.set('access_token', 'abc')
      },
    ]
    for (const mutate of mutations) {
      const browser = new Browser(auth, t.issuer)
      const callback = new URL(await browser.atIdp(await browser.start()))
      mutate(callback)
      const calls = tokenCalls()
      await assertNothingLoggedIn(browser, await browser.route(callback.href), sets)
      assert.equal(tokenCalls(), calls)
    }
  })

  it('B13 a provider error is shown escaped and length-capped', async () => {
    const browser = new Browser(auth, t.issuer)
    const authorize = await browser.start()
    const state = authorize.searchParams.get('state')!
    const description = `<script>alert(1)</script>${'x'.repeat(10_000)}`
    const url = `${APP}/auth/callback?error=access_denied&error_description=${encodeURIComponent(description)}&state=${state}&iss=${encodeURIComponent(t.issuer)}`
    const response = await browser.route(url)
    const html = await response.clone().text()
    await assertNothingLoggedIn(browser, response, sets)
    assert.doesNotMatch(html, /<script>/)
    assert.match(html, /&lt;script&gt;/)
    assert.ok(html.length < 3000)
    assert.ok(setCookies(response).some((c) => c.includes('ssokit-tx-') && c.includes('Max-Age=0')))
    const noState = await new Browser(auth, t.issuer).route(
      `${APP}/auth/callback?error=login_required`,
    )
    assert.equal(noState.status, 400)
  })

  it('H10 provider error text is shown only for a callback matching this browser’s own sign-in', async () => {
    const text = 'Your account is locked: call +1 555 0100 and read out your password'
    const forged = (state?: string) =>
      `${APP}/auth/callback?error=access_denied&error_description=${encodeURIComponent(text)}` +
      (state === undefined ? '' : `&state=${state}&iss=${encodeURIComponent(t.issuer)}`)
    const other = new Browser(auth, t.issuer)
    const otherState = (await other.start()).searchParams.get('state')!
    const victim = new Browser(auth, t.issuer)
    for (const url of [forged(), forged('A'.repeat(43)), forged(otherState)]) {
      const response = await victim.route(url)
      const html = await response.clone().text()
      await assertNothingLoggedIn(victim, response, sets)
      assert.doesNotMatch(html, /locked|555|access_denied/, url)
      assert.match(html, /not started in this browser/)
    }
    // The same response for the browser's own sign-in shows what the provider said.
    const own = (await victim.start()).searchParams.get('state')!
    const html = await (await victim.route(forged(own))).text()
    assert.match(html, /access_denied/)
    assert.match(html, /locked/)
  })

  it('B05 B06 B07 ID tokens with a wrong nonce, signature, issuer, audience, azp or times are refused', async () => {
    const now = Math.floor(Date.now() / 1000)
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
    const variants: [string, (claims: Record<string, unknown>) => Promise<string>][] = [
      ['B05 wrong nonce', (c) => t.sign({ ...c, nonce: 'wrong' })],
      ['B05 missing nonce', (c) => t.sign({ ...c, nonce: undefined })],
      [
        'B06 foreign key',
        (c) =>
          new SignJWT(c).setProtectedHeader({ alg: 'RS256', kid: 'evil' }).sign(evil.privateKey),
      ],
      [
        'B06 alg none',
        (c) =>
          Promise.resolve(
            `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${Buffer.from(JSON.stringify(c)).toString('base64url')}.`,
          ),
      ],
      ['B07 wrong iss', (c) => t.sign({ ...c, iss: 'https://evil.example' })],
      ['B07 wrong aud', (c) => t.sign({ ...c, aud: 'other-app' })],
      [
        'B07 untrusted extra aud',
        (c) => t.sign({ ...c, aud: ['web-app', 'other-app'], azp: 'web-app' }),
      ],
      ['B07 azp mismatch', (c) => t.sign({ ...c, azp: 'other-app' })],
      ['B07 sub missing', (c) => t.sign({ ...c, sub: undefined })],
      ['B07 iat missing', (c) => t.sign({ ...c, iat: undefined })],
      ['B07 exp past', (c) => t.sign({ ...c, exp: now - 3600 })],
      ['B07 iat a week old', (c) => t.sign({ ...c, iat: now - 7 * 86400, exp: now + 3600 })],
    ]
    try {
      for (const [name, rewrite] of variants) {
        rewriteIdToken = rewrite
        const browser = new Browser(auth, t.issuer)
        const response = await browser.login()
        assert.equal(response.status, 400, name)
        await assertNothingLoggedIn(browser, response, sets)
      }
      rewriteIdToken = (c) => t.sign({ ...c, aud: ['web-app'] })
      assert.equal(
        (await new Browser(auth, t.issuer).login()).status,
        302,
        'aud as a one-element array is fine',
      )
    } finally {
      rewriteIdToken = undefined
    }
  })
})

describe('robustness', () => {
  it('B27 parallel logins each complete; flow cookies are capped', async () => {
    const browser = new Browser(auth, t.issuer)
    const starts: URL[] = []
    for (let i = 0; i < 10; i++) starts.push(await browser.start(`/tab${i}`))
    const flows = browser.app.names().filter((n) => n.startsWith('__Host-ssokit-tx-'))
    assert.ok(flows.length <= 5, `at most 5 flow cookies, got ${flows.length}`)
    const recent = starts.slice(-3)
    const callbacks = []
    for (const url of recent) callbacks.push(await browser.atIdp(url))
    const results = []
    for (const callback of callbacks) results.push(await browser.route(callback))
    assert.deepEqual(
      results.map((r) => r.headers.get('location')),
      ['/tab7', '/tab8', '/tab9'].map((p) => `${APP}${p}`),
    )
  })

  it('B32 anonymous login starts store nothing server-side', async () => {
    const writes = sets
    const before = await store.get('x')
    for (let i = 0; i < 200; i++) await auth.handle(new Request(`${APP}/auth/login`))
    assert.equal(sets, writes)
    assert.equal(before, undefined)
  })

  it('O05 provider unreachable at login: 503 with Retry-After, no redirect', async () => {
    const down = createSessionAuth(
      options({ issuer: 'http://127.0.0.1:9/auth/realms/dev', expert: { httpTimeout: 2 } }),
    )
    const browser = new Browser(down, 'http://127.0.0.1:9/auth/realms/dev')
    for (let i = 0; i < 2; i++) {
      const response = await browser.route('/auth/login')
      assert.equal(response.status, 503)
      assert.ok(Number(response.headers.get('retry-after')) > 0)
      assert.equal(response.headers.get('location'), null)
    }
  })

  it('O05 token endpoint down at the callback: 503 with Retry-After, no session, flow cleared', async () => {
    const browser = new Browser(auth, t.issuer)
    const callback = await browser.atIdp(await browser.start())
    tokenEndpointDown = true
    try {
      const writes = sets
      const response = await browser.route(callback)
      await assertNothingLoggedIn(browser, response, writes, 503)
      assert.ok(Number(response.headers.get('retry-after')) > 0)
      assert.ok(
        setCookies(response).some((c) => c.includes('ssokit-tx-') && c.includes('Max-Age=0')),
      )
    } finally {
      tokenEndpointDown = false
    }
  })

  it('B10 discovery naming another issuer: no login starts', async () => {
    const lying = createSessionAuth(options({ issuer: `${t.issuer}/` }))
    const response = await new Browser(lying, t.issuer).route('/auth/login')
    assert.equal(response.status, 503)
    assert.equal(response.headers.get('location'), null)
  })

  it('O10 a login started before a restart completes on the new instance', async () => {
    const browser = new Browser(auth, t.issuer)
    const callback = await browser.atIdp(await browser.start('/after-restart'))
    const restarted = createSessionAuth(options())
    const next = new Browser(restarted, t.issuer)
    const response = await restarted.handle(
      new Request(callback, { headers: { cookie: browser.cookieHeader('/auth/callback') } }),
    )
    assert.equal(response?.status, 302)
    assert.equal(response.headers.get('location'), `${APP}/after-restart`)
    next.app.store(response)
    assert.equal((await next.authenticate()).subject, 'alice')
  })
})
