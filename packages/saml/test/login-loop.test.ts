/**
 * The login-loop guard on SAML sign-ins: the same one as OpenID Connect's. Only sign-ins that
 * follow the application refusing the session the previous one created are counted; past
 * `maxLoginAttempts` within two minutes, `<prefix>/login` answers 429 instead of sending the
 * browser round the IdP again.
 */
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { fromRequest, MemorySessionStore, toResponse } from '@ssokit/core'
import { createSamlAuth, type SamlAuth } from '../src/index.js'
import {
  ACS,
  APP,
  assertionXml,
  base64,
  idpMetadata,
  makeKeyPair,
  requestIdOf,
  responseXml,
  sign,
  SSO_URL,
  SECRET,
  SP_ENTITY,
  type KeyPair,
} from './support.js'

let idpKey: KeyPair
let clock = Date.now()

function makeAuth(maxLoginAttempts: number): SamlAuth {
  return createSamlAuth({
    publicUrl: APP,
    secret: SECRET,
    entityId: SP_ENTITY,
    idp: { xml: idpMetadata(idpKey.cert) },
    store: new MemorySessionStore(),
    maxLoginAttempts,
    onEvent: () => undefined,
    expert: { now: () => clock },
  })
}

/** The cookies one browser holds, kept from every answer as a browser would. */
class Browser {
  readonly #cookies = new Map<string, string>()

  keep(response: Response): Response {
    for (const line of response.headers.getSetCookie()) {
      const [pair = ''] = line.split(';')
      const at = pair.indexOf('=')
      const name = pair.slice(0, at)
      if (/;\s*Max-Age=0/i.test(line)) this.#cookies.delete(name)
      else this.#cookies.set(name, pair.slice(at + 1))
    }
    return response
  }

  get cookie(): string {
    return [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ')
  }

  /** The session is not kept: the browser drops the cookie (or the server loses the record). */
  lose(): void {
    this.#cookies.delete('__Host-ssokit-session')
  }

  async route(auth: SamlAuth, url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    if (this.cookie !== '') headers.set('cookie', this.cookie)
    const response = await auth.handle(new Request(url, { ...init, headers }))
    assert.ok(response, url)
    return this.keep(response)
  }

  /** A navigation to an application page, answered as an adapter would. */
  async visit(auth: SamlAuth, path = '/reports'): Promise<Response> {
    const request = fromRequest(
      new Request(`${APP}${path}`, { headers: { accept: 'text/html', cookie: this.cookie } }),
    )
    try {
      await auth.authenticate(request)
      return new Response('the page')
    } catch (error) {
      return this.keep(toResponse(auth.reject(error, request)))
    }
  }

  /** The IdP signs the user in and posts a signed Response to the ACS. */
  async atIdp(auth: SamlAuth, start: Response): Promise<Response> {
    assert.equal(start.status, 302, `the login answered ${start.status}`)
    const location = start.headers.get('location') ?? ''
    assert.ok(location.startsWith(`${SSO_URL}?`))
    const f = {
      inResponseTo: requestIdOf(location),
      destination: ACS,
      recipient: ACS,
      audience: SP_ENTITY,
    }
    const xml = responseXml(f, sign(assertionXml(f), 'Assertion', idpKey))
    return this.route(auth, ACS, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ SAMLResponse: base64(xml) }),
    })
  }
}

describe('SAML login-loop guard', () => {
  before(() => {
    idpKey = makeKeyPair('idp.example.org')
  })

  it('H09 a real loop is stopped: sign-in completes, the application refuses the session, again and again', async () => {
    const auth = makeAuth(3)
    const browser = new Browser()
    let stopped: Response | undefined
    for (let round = 0; round < 10 && stopped === undefined; round++) {
      const refused = await browser.visit(auth)
      assert.equal(refused.status, 302)
      const loginUrl = refused.headers.get('location') ?? ''
      assert.ok(loginUrl.startsWith(`${APP}/auth/login?`), loginUrl)
      const start = await browser.route(auth, loginUrl)
      if (start.status === 429) {
        stopped = start
        break
      }
      assert.equal((await browser.atIdp(auth, start)).status, 303)
      browser.lose()
    }
    assert.ok(stopped, 'the loop was stopped')
    assert.ok(Number(stopped.headers.get('retry-after')) > 0)
    assert.equal(stopped.headers.get('location'), null)
    assert.match(await stopped.text(), /cookie/)
    // It stays stopped for the window, then sign-in works again.
    assert.equal((await browser.route(auth, `${APP}/auth/login`)).status, 429)
    clock += 121_000
    assert.equal((await browser.route(auth, `${APP}/auth/login`)).status, 302)
    await auth.close()
  })

  it('H09 a single-page application’s loop (401 JSON, then its login_url) is stopped too', async () => {
    const auth = makeAuth(2)
    const browser = new Browser()
    assert.equal(
      (await browser.atIdp(auth, await browser.route(auth, `${APP}/auth/login`))).status,
      303,
    )
    let stopped = false
    for (let round = 0; round < 8 && !stopped; round++) {
      browser.lose()
      const request = fromRequest(
        new Request(`${APP}/api/items`, {
          headers: { accept: 'application/json', cookie: browser.cookie },
        }),
      )
      const error = await auth.authenticate(request).catch((e: unknown) => e)
      const answer = browser.keep(toResponse(auth.reject(error, request)))
      assert.equal(answer.status, 401)
      const { login_url } = (await answer.json()) as { login_url: string }
      const start = await browser.route(auth, login_url)
      if (start.status === 429) stopped = true
      else assert.equal((await browser.atIdp(auth, start)).status, 303)
    }
    assert.ok(stopped, 'the loop was stopped')
    await auth.close()
  })

  it('H09 signing in again and again while the session is kept is no loop', async () => {
    const auth = makeAuth(2)
    const browser = new Browser()
    for (let round = 0; round < 6; round++) {
      const start = await browser.route(auth, `${APP}/auth/login?returnTo=/reports`)
      assert.equal((await browser.atIdp(auth, start)).status, 303, `round ${round}`)
      assert.equal((await browser.visit(auth)).status, 200, `round ${round}`)
    }
    await auth.close()
  })
})
