/**
 * The bearer side of a session application: its own configured audience (not only the session
 * client's id), and `tokenType: 'jwt'` refusing the session's own ID token.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import {
  createSessionAuth,
  fromRequest,
  MemorySessionStore,
  type SessionAuth,
  type SessionAuthOptions,
  type SsoEvent,
} from '@ssokit/core'

import { decodeRecord } from '../../src/session/record.js'
import { APP, Browser, sessionIdOf, startTestIdp, type TestIdp, webAppOptions } from './support.js'

let t: TestIdp

before(async () => {
  t = await startTestIdp()
})
after(async () => {
  await t.close()
})

/** A client-credentials token of `demo-app`, for `audience` when given (CERN's parameter). */
async function serviceToken(audience?: string): Promise<string> {
  const response = await fetch(`${t.issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${btoa('demo-app:demo-app-secret')}` },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      ...(audience === undefined ? {} : { audience }),
    }),
  })
  assert.equal(response.status, 200)
  return ((await response.json()) as { access_token: string }).access_token
}

async function call(auth: SessionAuth, token: string): Promise<string> {
  const request = fromRequest(
    new Request(`${APP}/api`, { headers: { authorization: `Bearer ${token}` } }),
  )
  try {
    const identity = await auth.authenticate(request)
    return `ok ${identity.subject}`
  } catch (error) {
    const parts = auth.reject(error, request)
    return `${parts.status} ${(error as { code?: string }).code ?? ''}`
  }
}

function app(extra: Partial<SessionAuthOptions>): SessionAuth {
  return createSessionAuth(webAppOptions(t.issuer, new MemorySessionStore(), extra))
}

describe('session bearer side', () => {
  it("accepts its configured audience, not only the session client's id", async () => {
    const forApi = await serviceToken('demo-api')
    const forWebApp = await t.sign({
      iss: t.issuer,
      sub: 'service-account-demo-app',
      aud: 'web-app',
      typ: 'Bearer',
      azp: 'demo-app',
      iat: Math.floor(Date.now() / 1000),
      exp: Math.floor(Date.now() / 1000) + 300,
    })
    const plain = app({})
    const api = app({ bearer: { audience: 'demo-api' } })
    const both = app({ bearer: { audience: ['web-app', 'demo-api'] } })
    try {
      // By default the audience is the session's client id.
      assert.equal(await call(plain, forWebApp), 'ok service-account-demo-app')
      assert.equal(await call(plain, forApi), '401 audience_mismatch')
      // Configured: tokens for that audience, and only for it.
      assert.equal(await call(api, forApi), 'ok service-account-demo-app')
      assert.equal(await call(api, forWebApp), '401 audience_mismatch')
      assert.equal(await call(api, await serviceToken()), '401 audience_mismatch')
      assert.equal(await call(both, forApi), 'ok service-account-demo-app')
      assert.equal(await call(both, forWebApp), 'ok service-account-demo-app')
    } finally {
      await Promise.all([plain.close(), api.close(), both.close()])
    }
  })

  it("tokenType 'jwt' still refuses the session's own ID token as a bearer token", async () => {
    const events: SsoEvent[] = []
    const store = new MemorySessionStore()
    const auth = createSessionAuth(
      webAppOptions(t.issuer, store, {
        bearer: { tokenType: 'jwt' },
        onEvent: (event) => events.push(event),
      }),
    )
    try {
      const browser = new Browser(auth, t.issuer)
      assert.equal((await browser.login('alice')).status, 302)
      const stored = await store.get(sessionIdOf(browser))
      const record = decodeRecord(stored?.data ?? '')
      assert.ok(record)
      assert.equal(await call(auth, record.idToken), '401 token_invalid')
      assert.ok(events.some((e) => e.type === 'token_rejected' && e.reason === 'id_token'))
      // The access token of the same sign-in is accepted.
      assert.equal(await call(auth, record.accessToken), 'ok alice')
    } finally {
      await auth.close()
    }
  })
})
