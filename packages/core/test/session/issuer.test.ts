/**
 * The issuer is compared as the exact string configured, with the discovery document and with
 * every `iss`: a bare-origin issuer works with and without a trailing slash, as its provider
 * spells it, and the other spelling is refused.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import {
  createSessionAuth,
  createVerifier,
  fromRequest,
  MemorySessionStore,
  type SessionAuth,
} from '@ssokit/core'

import { APP, Browser, sessionIdOf, startTestIdp, type TestIdp, webAppOptions } from './support.js'

const spellings = [
  { name: 'a bare origin without a trailing slash', issuerPath: '' },
  { name: 'a bare origin with a trailing slash', issuerPath: '/' },
] as const

function otherSpelling(issuer: string): string {
  return issuer.endsWith('/') ? issuer.slice(0, -1) : `${issuer}/`
}

for (const { name, issuerPath } of spellings) {
  describe(`issuer: ${name}`, () => {
    let t: TestIdp
    const auths: SessionAuth[] = []
    const store = new MemorySessionStore()

    function session(issuer: string): SessionAuth {
      const auth = createSessionAuth(webAppOptions(issuer, store))
      auths.push(auth)
      return auth
    }

    async function accessTokenOf(browser: Browser): Promise<string> {
      const stored = await store.get(sessionIdOf(browser))
      assert.ok(stored, 'the session is stored')
      return (JSON.parse(stored.data) as { accessToken: string }).accessToken
    }

    before(async () => {
      t = await startTestIdp({ issuerPath })
    })
    after(async () => {
      for (const auth of auths) await auth.close()
      await store.close()
      await t.close()
    })

    it('the provider publishes the issuer in this spelling', async () => {
      const origin = new URL(t.issuer).origin
      assert.equal(t.issuer, issuerPath === '' ? origin : `${origin}/`)
      const response = await fetch(`${origin}/.well-known/openid-configuration`)
      assert.equal(((await response.json()) as { issuer: string }).issuer, t.issuer)
    })

    it('a session configured with the exact issuer signs in, and its bearer side accepts the access token', async () => {
      const auth = session(t.issuer)
      const browser = new Browser(auth, t.issuer)
      const callback = await browser.login('alice')
      assert.equal(callback.status, 302)
      assert.equal(callback.headers.get('location'), `${APP}/`)
      const identity = await browser.authenticate()
      assert.equal(identity.subject, 'alice')
      assert.equal(identity.claims.iss, t.issuer)
      const accessToken = await accessTokenOf(browser)
      const bearer = await auth.authenticate(
        fromRequest(
          new Request(`${APP}/api`, { headers: { authorization: `Bearer ${accessToken}` } }),
        ),
      )
      assert.equal(bearer.subject, 'alice')
      assert.equal(bearer.via, 'bearer')
    })

    it('a session configured with the other spelling refuses the provider', async () => {
      const auth = session(otherSpelling(t.issuer))
      const response = await new Browser(auth, t.issuer).route('/auth/login?returnTo=/')
      assert.equal(response.status, 503)
      assert.equal(response.headers.get('location'), null)
    })

    it('a verifier configured with the exact issuer accepts the access token; the other spelling does not', async () => {
      const auth = session(t.issuer)
      const browser = new Browser(auth, t.issuer)
      assert.equal((await browser.login('alice')).status, 302)
      const accessToken = await accessTokenOf(browser)
      const exact = createVerifier({ issuer: t.issuer, clientId: 'web-app' })
      assert.equal((await exact.verify(accessToken)).subject, 'alice')
      const other = createVerifier({ issuer: otherSpelling(t.issuer), clientId: 'web-app' })
      await assert.rejects(other.verify(accessToken), { code: 'provider_unavailable' })
    })
  })
}
