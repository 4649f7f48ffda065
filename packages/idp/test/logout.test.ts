import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { CookieJar, logoutAtIdp, startIdp, type RunningIdp } from '@ssokit/idp'
import { authorizeUrl, codeLogin, oidc, pkce, REDIRECT } from './helpers.js'

const BYE = 'http://localhost:7777/bye'

/** Whether the idp still knows the jar's user: an authorization request completes unasked. */
async function signedIn(idp: RunningIdp, cookies: CookieJar): Promise<boolean> {
  let url = authorizeUrl(idp, { clientId: 'demo-app', challenge: pkce().challenge })
  for (let hop = 0; hop < 10; hop++) {
    const response = await cookies.fetch(url)
    const location = response.headers.get('location')
    if (location === null) {
      const html = await response.text()
      assert.match(html, /kc-form-login/, `unexpected answer ${response.status}`)
      return false
    }
    await response.body?.cancel()
    url = new URL(location, url).href
    if (url.startsWith(REDIRECT)) return new URL(url).searchParams.has('code')
  }
  throw new Error('too many redirects')
}

function logoutUrl(idp: RunningIdp, params: Record<string, string>): URL {
  const url = new URL(oidc(idp, 'logout'))
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value)
  return url
}

describe('RP-initiated logout at the idp', () => {
  let idp: RunningIdp

  before(async () => {
    idp = await startIdp({ port: 0 })
  })
  after(() => idp.close())

  it('H13 a logout naming only client_id, from any site, asks before ending the SSO session', async () => {
    const { cookies } = await codeLogin(idp)
    const forced = await cookies.fetch(
      logoutUrl(idp, { client_id: 'demo-app', post_logout_redirect_uri: BYE }),
      { headers: { 'sec-fetch-site': 'cross-site', referer: 'https://evil.example/' } },
    )
    assert.equal(forced.status, 200)
    assert.equal(forced.headers.get('location'), null)
    const html = await forced.text()
    assert.match(html, /id="op\.logoutForm"/)
    assert.match(html, /id="kc-logout"/)
    assert.match(html, /<style>/, 'the page is in the idp’s own style')
    assert.ok(await signedIn(idp, cookies), 'the SSO session survives the unconfirmed request')

    // The user confirms: the session ends and the browser goes to the registered URI.
    const confirmed = await logoutAtIdp({
      issuer: idp.issuer,
      cookies,
      clientId: 'demo-app',
      postLogoutRedirectUri: BYE,
    })
    assert.equal(confirmed.confirmed, true)
    assert.equal(confirmed.location, BYE)
    assert.equal(await signedIn(idp, cookies), false)
  })

  it('H13 a valid id_token_hint of this browser’s session logs out without asking', async () => {
    const { tokens, cookies } = await codeLogin(idp)
    const response = await cookies.fetch(
      logoutUrl(idp, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: BYE }),
    )
    assert.equal(response.status, 303)
    assert.equal(response.headers.get('location'), BYE)
    assert.equal(await signedIn(idp, cookies), false)
  })

  it('H13 a hint that is forged, or another login’s, is no reason to skip the question', async () => {
    const { cookies } = await codeLogin(idp)
    const other = await codeLogin(idp, { username: 'bob', password: 'bob' })
    const mine = await codeLogin(idp, { cookies })
    const [head = '', body = ''] = mine.tokens.id_token!.split('.')
    for (const [hint, status] of [
      [other.tokens.id_token!, 200],
      [`${head}.${body}.${'A'.repeat(342)}`, 400],
    ] as const) {
      const response = await cookies.fetch(logoutUrl(idp, { id_token_hint: hint }))
      assert.equal(response.status, status)
      assert.equal(response.headers.get('location'), null)
      const html = await response.text()
      if (status === 200) assert.match(html, /id="kc-logout"/)
      assert.ok(await signedIn(idp, cookies), 'the SSO session survives')
    }
    // The other login's own session is untouched too.
    assert.ok(await signedIn(idp, other.cookies))
  })
})
