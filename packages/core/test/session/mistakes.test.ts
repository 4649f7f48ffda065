/**
 * First-deployment mistakes against a real `ssokit idp`: each one is named on the page, in the
 * event hook and (without a hook) once on stderr, never with a token or a secret in it.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import {
  createSessionAuth,
  MemorySessionStore,
  SsoError,
  type SessionAuthOptions,
  type SsoEvent,
} from '@ssokit/core'
import { startIdp } from '@ssokit/idp'

import { captureStderr, closedPort } from '../stderr.js'
import { Browser, SECRET, startTestIdp, type TestIdp, webAppOptions } from './support.js'

/** A store whose reads fail as a refused connection does. */
class UnreachableStore extends MemorySessionStore {
  override get(): Promise<undefined> {
    return Promise.reject(
      new SsoError('session_store_unavailable', 'The session store cannot be reached.', {
        cause: new Error('connect ECONNREFUSED 127.0.0.1:6390'),
      }),
    )
  }
}

let t: TestIdp
const stores: MemorySessionStore[] = []

function options(extra: Partial<SessionAuthOptions> = {}): SessionAuthOptions {
  const store = new MemorySessionStore()
  stores.push(store)
  return webAppOptions(t.issuer, store, extra)
}

/** Everything a log could show: event fields and message, as one string each. */
function texts(events: readonly SsoEvent[]): string[] {
  return events.map((event) => JSON.stringify(event))
}

before(async () => {
  t = await startTestIdp()
})

after(async () => {
  await Promise.all(stores.map((store) => store.close()))
  await t.close()
})

describe('a wrong client secret', () => {
  it('answers 502 naming the refused credentials, and reports client_auth_failed', async () => {
    const events: SsoEvent[] = []
    const auth = createSessionAuth(
      options({ clientSecret: 'not-the-web-app-secret', onEvent: (e) => events.push(e) }),
    )
    const browser = new Browser(auth, t.issuer)
    const response = await browser.login()
    assert.equal(response.status, 502)
    const page = await response.text()
    assert.match(page, /The identity provider refused this application’s credentials\./)
    assert.match(page, /Reason given by the provider: invalid_client/)
    assert.equal((response.headers.get('set-cookie') ?? '').includes('ssokit-session'), false)
    const refused = events.filter((e) => e.type === 'token_request_failed')
    assert.equal(refused.length, 1)
    assert.equal(refused[0]?.code, 'client_auth_failed')
    assert.equal(refused[0].reason, 'invalid_client')
    assert.equal(refused[0].level, 'error')
    assert.match(refused[0].message, /check clientId and clientSecret/)
    assert.equal(refused[0].url, `${t.issuer}/protocol/openid-connect/token`)
    for (const text of texts(events)) {
      assert.equal(text.includes('not-the-web-app-secret'), false)
      assert.equal(text.includes(SECRET), false)
    }
  })

  it('without a hook prints one line on stderr however often it happens', async () => {
    const auth = createSessionAuth(options({ clientSecret: 'not-the-web-app-secret' }))
    const stderr = captureStderr()
    try {
      for (let i = 0; i < 2; i++) {
        const response = await new Browser(auth, t.issuer).login()
        assert.equal(response.status, 502)
      }
    } finally {
      stderr.restore()
    }
    assert.equal(stderr.lines.length, 1, stderr.lines.join('\n'))
    assert.match(
      stderr.lines[0] ?? '',
      /^ssokit error: The token endpoint http:\/\/127\.0\.0\.1:\d+\/auth\/realms\/dev\/protocol\/openid-connect\/token refused the code exchange with invalid_client .*\[invalid_client\]$/,
    )
    assert.equal(stderr.lines[0]?.includes('not-the-web-app-secret'), false)
  })

  it('never repeats a secret the provider echoes back', async () => {
    const secret = 'echoed-client-secret-value'
    const events: SsoEvent[] = []
    // The provider's real refusal, with a description that quotes the request.
    const echoing: typeof fetch = async (input, init) => {
      const response = await fetch(input, init)
      if (response.status !== 401) return response
      const body = (await response.json()) as Record<string, unknown>
      return Response.json(
        { ...body, error_description: `client_secret ${secret} is wrong` },
        { status: 400 },
      )
    }
    const auth = createSessionAuth(
      options({ clientSecret: secret, onEvent: (e) => events.push(e), expert: { fetch: echoing } }),
    )
    const response = await new Browser(auth, t.issuer).login()
    assert.equal(response.status, 502)
    const page = await response.text()
    assert.match(page, /client_secret \*\*\* is wrong/)
    assert.equal(page.includes(secret), false)
    const refused = events.find((e) => e.type === 'token_request_failed')
    assert.match(refused?.message ?? '', /client_secret \*\*\* is wrong/)
    for (const text of texts(events)) assert.equal(text.includes(secret), false)
  })
})

describe('a sign-in refused at the provider', () => {
  it('reports the error the browser came back with', async () => {
    const events: SsoEvent[] = []
    const auth = createSessionAuth(options({ onEvent: (e) => events.push(e) }))
    const browser = new Browser(auth, t.issuer)
    const authorize = await browser.start()
    const state = authorize.searchParams.get('state') ?? ''
    const response = await browser.route(
      `/auth/callback?error=unauthorized_client&error_description=not+allowed&state=${state}&iss=${encodeURIComponent(t.issuer)}`,
    )
    assert.equal(response.status, 400)
    const failed = events.find((e) => e.type === 'login_failed')
    assert.equal(failed?.level, 'warn')
    assert.equal(failed.reason, 'unauthorized_client')
    assert.equal(failed.code, 'login_failed')
  })
})

describe('ready()', () => {
  it('resolves for a correct configuration and its store', async () => {
    const events: SsoEvent[] = []
    const auth = createSessionAuth(options({ onEvent: (e) => events.push(e) }))
    await auth.ready()
    assert.equal(
      events.some((e) => e.level === 'warn' || e.level === 'error'),
      false,
    )
  })

  it('names an issuer that differs by a trailing slash', async () => {
    const events: SsoEvent[] = []
    const auth = createSessionAuth({
      ...options({ onEvent: (e) => events.push(e) }),
      issuer: `${t.issuer}/`,
    })
    const error = await auth.ready().then(
      () => assert.fail('ready() resolved'),
      (e: unknown) => e,
    )
    assert.ok(error instanceof SsoError)
    assert.equal(error.code, 'provider_unavailable')
    assert.match(error.message, /names the issuer "http:\/\/127\.0\.0\.1:\d+\/auth\/realms\/dev"/)
    assert.match(error.message, /differ only by a trailing slash/)
    const failed = events.filter((e) => e.type === 'discovery_failed')
    assert.equal(failed.length, 1)
    assert.equal(failed[0]?.reason, 'discovery_issuer_mismatch')
    assert.equal(failed[0].level, 'error')
  })

  it('names a wrong realm', async () => {
    const events: SsoEvent[] = []
    const auth = createSessionAuth({
      ...options({ onEvent: (e) => events.push(e) }),
      issuer: t.issuer.replace(/\/realms\/dev$/, '/realms/nope'),
    })
    const error = await auth.ready().then(
      () => assert.fail('ready() resolved'),
      (e: unknown) => e,
    )
    assert.ok(error instanceof SsoError)
    assert.match(
      error.message,
      /\/realms\/nope\/\.well-known\/openid-configuration answered HTTP 404/,
    )
    assert.match(error.message, /the realm name/)
    assert.equal(events.find((e) => e.type === 'discovery_failed')?.reason, 'discovery_http_404')
  })

  it('names a bearer key set URL that answers 404', async () => {
    const events: SsoEvent[] = []
    const auth = createSessionAuth(
      options({
        onEvent: (e) => events.push(e),
        bearer: { jwksUri: `${t.issuer}/protocol/openid-connect/nope` },
      }),
    )
    const error = await auth.ready().then(
      () => assert.fail('ready() resolved'),
      (e: unknown) => e,
    )
    assert.ok(error instanceof SsoError)
    assert.match(
      error.message,
      /The key set http:\/\/.+\/nope answered HTTP 404: is jwksUri right\?/,
    )
    const failed = events.find((e) => e.type === 'jwks_refresh_failed')
    assert.equal(failed?.reason, 'jwks_http_404')
    assert.equal(failed.level, 'error')
  })

  it('names a provider that cannot be reached, logs it once, and logs when it clears', async () => {
    const port = await closedPort()
    const issuer = `http://127.0.0.1:${port}/auth/realms/dev`
    const store = new MemorySessionStore()
    stores.push(store)
    const auth = createSessionAuth({ ...webAppOptions(issuer, store) })
    const stderr = captureStderr()
    let idp: Awaited<ReturnType<typeof startIdp>> | undefined
    try {
      for (let i = 0; i < 3; i++) {
        const error = await auth.ready().then(
          () => assert.fail('ready() resolved'),
          (e: unknown) => e,
        )
        assert.ok(error instanceof SsoError)
        assert.equal(error.code, 'provider_unavailable')
        assert.match(error.message, /cannot be fetched \(ECONNREFUSED\)/)
      }
      assert.equal(stderr.lines.length, 1, stderr.lines.join('\n'))
      assert.match(
        stderr.lines[0] ?? '',
        /^ssokit warn: The discovery document http:\/\/127\.0\.0\.1:\d+\/auth\/realms\/dev\/\.well-known\/openid-configuration cannot be fetched \(ECONNREFUSED\): is the provider reachable from here\? \[discovery_unreachable\]$/,
      )
      idp = await startIdp({ port, log: false })
      await auth.ready()
      assert.equal(stderr.lines.length, 2, stderr.lines.join('\n'))
      assert.match(
        stderr.lines[1] ?? '',
        /^ssokit info: The identity provider’s discovery document can be read again\./,
      )
    } finally {
      stderr.restore()
      await idp?.close()
    }
  })

  it('names a session store that cannot answer, with the provider fine', async () => {
    const events: SsoEvent[] = []
    const broken = new UnreachableStore()
    stores.push(broken)
    const auth = createSessionAuth({
      ...webAppOptions(t.issuer, broken),
      onEvent: (e) => events.push(e),
    })
    const error = await auth.ready().then(
      () => assert.fail('ready() resolved'),
      (e: unknown) => e,
    )
    assert.ok(error instanceof SsoError)
    assert.equal(error.code, 'session_store_unavailable')
    assert.equal(
      error.message,
      'The session store cannot answer: connect ECONNREFUSED 127.0.0.1:6390',
    )
    const down = events.filter((e) => e.type === 'store_unavailable')
    assert.equal(down.length, 1)
    assert.equal(down[0]?.level, 'error')
  })
})

describe('onEvent', () => {
  it('receives the bearer side’s events too', async () => {
    const events: SsoEvent[] = []
    const auth = createSessionAuth(options({ onEvent: (e) => events.push(e) }))
    const forged = await t.sign({ iss: 'https://elsewhere.example', sub: 'x', aud: 'web-app' })
    await assert.rejects(
      new Browser(auth, t.issuer).authenticate('/', { authorization: `Bearer ${forged}` }),
      { code: 'token_invalid' },
    )
    const rejected = events.find((e) => e.type === 'token_rejected')
    assert.equal(rejected?.code, 'token_invalid')
    for (const text of texts(events)) assert.equal(text.includes(forged), false)
  })

  it('must be a function', () => {
    assert.throws(
      () => createSessionAuth({ ...options(), onEvent: 'log' as unknown as () => void }),
      { code: 'ERR_INVALID_ARG_TYPE' },
    )
  })
})
