/**
 * RFC 8707 resource indicators and a provider-specific `audience` at sign-in and refresh,
 * against a real `ssokit idp` whose realm lets the test client ask for one API's tokens.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import {
  createSessionAuth,
  createVerifier,
  MemorySessionStore,
  SsoTypeError,
  type SessionAuthOptions,
  type SsoEvent,
} from '@ssokit/core'
import { decodeJwt } from 'jose'

import { APP, Browser, SECRET, sessionIdOf, startTestIdp, type TestIdp } from './support.js'

const API = 'urn:ssokit:client:demo-api'

let t: TestIdp
let clock = Date.now()
const tokenBodies: URLSearchParams[] = []
const stores: MemorySessionStore[] = []

async function tappedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const url = input instanceof Request ? input.url : String(input)
  if (url.endsWith('/protocol/openid-connect/token') && init?.body instanceof URLSearchParams)
    tokenBodies.push(new URLSearchParams(init.body))
  return fetch(input, init)
}

function options(extra: Partial<SessionAuthOptions> = {}): SessionAuthOptions {
  const store = new MemorySessionStore()
  stores.push(store)
  return {
    issuer: t.issuer,
    clientId: 'api-app',
    clientSecret: 'api-app-secret',
    publicUrl: APP,
    secret: SECRET,
    store,
    bearer: false,
    expert: { fetch: tappedFetch, now: () => clock },
    ...extra,
  }
}

async function accessToken(store: MemorySessionStore, browser: Browser): Promise<string> {
  const stored = await store.get(sessionIdOf(browser))
  assert.ok(stored, 'the session is in the store')
  return (JSON.parse(stored.data) as { accessToken: string }).accessToken
}

before(async () => {
  t = await startTestIdp({
    accessTokenTtl: 300,
    clients: [
      {
        client_id: 'api-app',
        secret: 'api-app-secret',
        grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: [`${APP}/*`],
        resource_audiences: ['demo-api'],
      },
    ],
  })
})

after(async () => {
  await Promise.all(stores.map((store) => store.close()))
  await t.close()
})

describe('resource and audience', () => {
  it('asks for the resource at authorization, code exchange and refresh; the tokens are for that API', async () => {
    const settings = options({ resource: API, audience: 'https://api.example.org/' })
    const store = settings.store as MemorySessionStore
    const auth = createSessionAuth(settings)
    const start = clock
    const first = tokenBodies.length
    try {
      const browser = new Browser(auth, t.issuer)
      const authorize = await browser.start('/')
      assert.deepEqual(authorize.searchParams.getAll('resource'), [API])
      assert.equal(authorize.searchParams.get('audience'), 'https://api.example.org/')
      const callback = await browser.route(await browser.atIdp(authorize))
      assert.equal(callback.status, 302, await callback.text())
      const before = await accessToken(store, browser)
      assert.equal(decodeJwt(before).aud, 'demo-api')

      clock = start + 290_000
      assert.equal((await browser.authenticate()).subject, 'alice')
      const after = await accessToken(store, browser)
      assert.notEqual(after, before, 'the session was refreshed')
      assert.equal(decodeJwt(after).aud, 'demo-api')

      const sent = tokenBodies.slice(first)
      assert.deepEqual(
        sent.map((body) => [body.get('grant_type'), body.getAll('resource'), body.get('audience')]),
        [
          ['authorization_code', [API], 'https://api.example.org/'],
          ['refresh_token', [API], 'https://api.example.org/'],
        ],
      )
      // The API verifies the session's access token as its own.
      const api = createVerifier({ issuer: t.issuer, clientId: 'demo-api' })
      assert.equal((await api.verify(after)).subject, 'alice')
    } finally {
      clock = start
      await auth.close()
    }
  })

  it('without a resource the access token is for the application itself', async () => {
    const settings = options()
    const auth = createSessionAuth(settings)
    try {
      const browser = new Browser(auth, t.issuer)
      const authorize = await browser.start('/')
      assert.equal(authorize.searchParams.has('resource'), false)
      assert.equal(authorize.searchParams.has('audience'), false)
      assert.equal((await browser.route(await browser.atIdp(authorize))).status, 302)
      const token = await accessToken(settings.store as MemorySessionStore, browser)
      assert.equal(decodeJwt(token).aud, 'api-app')
    } finally {
      await auth.close()
    }
  })

  it('a resource the provider refuses for this client ends the sign-in with its error', async () => {
    const events: SsoEvent[] = []
    const auth = createSessionAuth(
      options({ resource: 'urn:ssokit:client:demo-cli', onEvent: (event) => events.push(event) }),
    )
    try {
      const browser = new Browser(auth, t.issuer)
      const response = await browser.route(await browser.atIdp(await browser.start('/')))
      assert.equal(response.status, 400)
      assert.match(await response.text(), /invalid_target/)
      assert.equal(events.find((event) => event.type === 'login_failed')?.reason, 'invalid_target')
    } finally {
      await auth.close()
    }
  })

  it('refuses values that are not absolute URIs, and the query cannot set them', () => {
    const misuse = (extra: Partial<SessionAuthOptions>, pattern: RegExp): void => {
      assert.throws(
        () => createSessionAuth(options(extra)),
        (error: unknown) => error instanceof SsoTypeError && pattern.test(error.message),
      )
    }
    misuse({ resource: 'api' }, /absolute URI/)
    misuse({ resource: ['https://api.example.org/#frag'] }, /without a fragment/)
    misuse({ resource: 'https://api.example.org/a b' }, /absolute URI/)
    misuse({ resource: 42 as never }, /list of URIs/)
    misuse({ audience: 'two words' }, /audience/)
    misuse({ audience: '' }, /audience/)
    misuse({ loginParams: ['resource'] }, /resource/)
    misuse({ loginParams: ['audience'] }, /audience/)
  })
})
