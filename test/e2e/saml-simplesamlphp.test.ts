/**
 * SAML against real parts: SimpleSAMLphp as the IdP (PHP's built-in server on 127.0.0.1),
 * Debian's Chromium as the browser, an application behind `withAuth` with `createSamlAuth`.
 * The IdP checks the SP's signed AuthnRequests and logout messages and encrypts its assertions
 * to the SP; the application sees the attributes; SP- and IdP-initiated logout end both sessions
 * (IdP-initiated on the HTTP-Redirect binding for the application, HTTP-POST for the proxy).
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { withAuth } from '@ssokit/node'
import { loadProxyConfig, startProxy } from '@ssokit/proxy'
import { createSamlAuth, type SamlAuth, type SamlEvent } from '@ssokit/saml'
import { makeKeyPair } from '../../packages/saml/test/support.js'
import { launchBrowser } from '../support/browser.js'
import { freePort, tempDir } from '../support/redis.js'
import {
  SSP_USER,
  startHeaderEcho,
  startSimpleSamlPhp,
  type RunningSimpleSamlPhp,
} from '../support/simplesamlphp.js'

/** Signs the test user in at the IdP's form on `page`. */
async function signInAtForm(page: Page): Promise<void> {
  await page.fill('input[name=username]', SSP_USER.username)
  await page.fill('input[name=password]', SSP_USER.password)
  await page.press('input[name=password]', 'Enter')
}

describe('SAML sign-in through SimpleSAMLphp in Chromium', () => {
  let idp: RunningSimpleSamlPhp
  let auth: SamlAuth
  let server: Server
  let browser: Browser
  let app: string
  const events: SamlEvent[] = []
  let proxyPort: number
  let proxyUrl: string
  let proxySp: { key: string; cert: string }

  before(async () => {
    const port = await freePort()
    app = `http://127.0.0.1:${port}`
    const sp = makeKeyPair('ssokit-sp')
    const entityId = `${app}/sp`
    proxyPort = await freePort()
    proxyUrl = `http://127.0.0.1:${proxyPort}`
    proxySp = makeKeyPair('ssokit-sp')
    idp = await startSimpleSamlPhp([
      {
        entityId,
        acsUrl: `${app}/auth/saml/acs`,
        sloUrl: `${app}/auth/saml/slo`,
        certificate: sp.cert,
        trustedHost: `127.0.0.1:${port}`,
      },
      {
        entityId: `${proxyUrl}/sp`,
        acsUrl: `${proxyUrl}/_ssokit/saml/acs`,
        sloUrl: `${proxyUrl}/_ssokit/saml/slo`,
        certificate: proxySp.cert,
        trustedHost: `127.0.0.1:${proxyPort}`,
        // The other binding of IdP-initiated logout: a signed LogoutRequest in a posted form.
        sloBinding: 'HTTP-POST',
      },
    ])
    auth = createSamlAuth({
      publicUrl: app,
      secret: 'an-e2e-secret-of-at-least-32-characters',
      entityId,
      idp: { url: idp.metadataUrl },
      certificate: sp.cert,
      privateKey: sp.key,
      attributes: { subject: 'eppn' },
      postLogoutRedirectPath: '/signed-out',
      cookies: { insecureHttpForLocalhost: true },
      onEvent: (event) => events.push(event),
    })
    const protectedApp = withAuth(
      (_req, res, identity) => {
        res.setHeader('content-type', 'application/json')
        res.end(
          JSON.stringify({
            subject: identity.subject,
            username: identity.username,
            email: identity.email,
            name: identity.name,
            roles: [...identity.roles].sort(),
            attributes: identity.claims.attributes,
          }),
        )
      },
      { auth },
    )
    server = createServer((req, res) => {
      // Where logouts land: a public page, or the browser would go straight back to sign in.
      if (req.url === '/signed-out' || req.url === '/after-logout') {
        res.end('signed out')
        return
      }
      void protectedApp(req, res)
    })
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
    browser = await launchBrowser()
  })

  after(async () => {
    await browser.close()
    await new Promise((resolve) => server.close(resolve))
    await auth.close()
    await idp.stop()
  })

  /** Opens `/whoami`, signs in at the IdP's form if it is shown, and returns the JSON. */
  async function whoami(page: Page, expectForm = true): Promise<Record<string, unknown>> {
    await page.goto(`${app}/whoami`)
    if (expectForm) {
      await page
        .waitForSelector('input[name=password]', { timeout: 10_000 })
        .catch(async (error: unknown) => {
          throw new Error(
            `no login form at ${page.url()}: ${((await page.textContent('body')) ?? '').slice(0, 1500)}\n${JSON.stringify(events)}\n${idp.log()}`,
            { cause: error },
          )
        })
      await signInAtForm(page)
    }
    await page.waitForURL(`${app}/whoami`)
    const text = (await page.textContent('body')) ?? ''
    try {
      return JSON.parse(text) as Record<string, unknown>
    } catch {
      throw new Error(`not JSON: ${text.slice(0, 300)}\n${JSON.stringify(events)}\n${idp.log()}`)
    }
  }

  async function loginFormShown(page: Page): Promise<boolean> {
    await page.goto(`${app}/whoami`)
    await page.waitForLoadState('load')
    return page.url().startsWith(idp.url) && (await page.$('input[name=password]')) !== null
  }

  it('a browser signs in at SimpleSAMLphp (signed request, encrypted signed assertion) and the app sees the attributes', async () => {
    const context = await browser.newContext()
    const page = await context.newPage()
    const me = await whoami(page)
    assert.equal(me.subject, 'jdoe@example.org')
    assert.equal(me.username, 'jdoe@example.org')
    assert.equal(me.email, 'jane.doe@example.org')
    assert.equal(me.name, 'Jane Doe')
    assert.deepEqual(me.roles, ['admins', 'staff'])
    const attributes = me.attributes as Record<string, string[]>
    assert.deepEqual(attributes['unscoped-affiliation'], ['member', 'staff'])
    assert.deepEqual(attributes.uid, ['jdoe'])
    // The IdP's single sign-on session: a second visit in the same browser needs no form.
    await context.clearCookies({ name: 'ssokit-session' })
    assert.equal((await whoami(page, false)).subject, 'jdoe@example.org')
    assert.deepEqual(events, [])
    await context.close()
  })

  it('SP-initiated logout ends the session here and at SimpleSAMLphp', async () => {
    const context = await browser.newContext()
    const page = await context.newPage()
    await whoami(page)
    await page.goto(`${app}/auth/logout`)
    await page.click('button')
    await page.waitForURL(`${app}/signed-out`)
    assert.equal(await loginFormShown(page), true, idp.log())
    assert.deepEqual(events, [])
    await context.close()
  })

  it('IdP-initiated logout ends the session here', async () => {
    const context = await browser.newContext()
    const page = await context.newPage()
    await whoami(page)
    await page.goto(idp.initSloUrl(`${app}/after-logout`))
    await page.waitForURL(
      (url) => url.href.startsWith(`${app}/`) && !url.pathname.startsWith('/auth/'),
    )
    assert.equal(await loginFormShown(page), true, idp.log())
    assert.deepEqual(events, [])
    await context.close()
  })

  it('ssokit proxy signs in through SimpleSAMLphp and sends the shibboleth preset headers; forged ones are dropped', async () => {
    const echo = await startHeaderEcho()
    const dir = tempDir('ssokit-saml-proxy-')
    writeFileSync(join(dir, 'sp-cert.pem'), proxySp.cert)
    writeFileSync(join(dir, 'sp-key.pem'), proxySp.key)
    // The login name from another attribute than the default eppn, as the config file says.
    writeFileSync(join(dir, 'proxy.yaml'), 'samlAttributes:\n  username: uid\n')
    const config = await loadProxyConfig({
      file: join(dir, 'proxy.yaml'),
      env: {
        SSOKIT_UPSTREAM: echo.url,
        SSOKIT_PUBLIC_URL: proxyUrl,
        SSOKIT_PORT: String(proxyPort),
        SSOKIT_SAML_IDP_METADATA: idp.metadataUrl,
        SSOKIT_SAML_ENTITY_ID: `${proxyUrl}/sp`,
        SSOKIT_SAML_CERT_FILE: join(dir, 'sp-cert.pem'),
        SSOKIT_SAML_KEY_FILE: join(dir, 'sp-key.pem'),
        SSOKIT_HEADER_PRESET: 'shibboleth',
      },
    })
    const proxy = await startProxy(config)
    const context = await browser.newContext({
      extraHTTPHeaders: { eppn: 'admin@evil.example', entitlement: 'urn:evil:admin' },
    })
    try {
      const page = await context.newPage()
      await page.goto(`${proxyUrl}/headers`)
      await page.waitForSelector('input[name=password]')
      await signInAtForm(page)
      await page.waitForURL(`${proxyUrl}/headers`)
      const headers = JSON.parse((await page.textContent('body')) ?? '{}') as Record<string, string>
      assert.equal(headers['remote-user'], 'jdoe', 'samlAttributes.username picked uid')
      assert.equal(headers.eppn, 'jdoe@example.org')
      assert.equal(headers.mail, 'jane.doe@example.org')
      assert.equal(headers.displayname, 'Jane Doe')
      assert.equal(headers['unscoped-affiliation'], 'member;staff')
      assert.equal(headers.ismemberof, 'staff;admins')
      assert.equal(headers['shib-identity-provider'], idp.entityId)
      assert.ok(headers['shib-session-index'])
      assert.equal(headers.entitlement, undefined)
      assert.ok(
        !Object.keys(headers).some(
          (name) => name.startsWith('cookie') && headers[name]?.includes('ssokit'),
        ),
      )
      // Logout through the proxy ends the IdP session too: the next visit shows the IdP's form.
      await page.goto(`${proxyUrl}/_ssokit/logout`)
      await page.click('button')
      await page.waitForSelector('input[name=password]')
      assert.ok(page.url().startsWith(idp.url))

      // IdP-initiated logout on the HTTP-POST binding ends the proxy's session.
      await page.goto(`${proxyUrl}/headers`)
      await page.waitForSelector('input[name=password]')
      await signInAtForm(page)
      await page.waitForURL(`${proxyUrl}/headers`)
      const posted = new Promise<string>((resolve) => {
        page.on('request', (request) => {
          if (request.url() === `${proxyUrl}/_ssokit/saml/slo` && request.method() === 'POST')
            resolve(request.postData() ?? '')
        })
      })
      await page.goto(idp.initSloUrl(`${proxyUrl}/headers`))
      assert.match(await posted, /SAMLRequest=/)
      // Back at the proxy, signed out there (and at the IdP): sent to sign in again.
      await page.waitForSelector('input[name=password]')
      assert.ok(page.url().startsWith(idp.url))
      const answer = await context.request.get(`${proxyUrl}/headers`, {
        headers: { accept: 'application/json' },
        maxRedirects: 0,
      })
      assert.equal(answer.status(), 401, idp.log())
      assert.deepEqual(events, [])
    } finally {
      await context.close()
      await proxy.close()
      await new Promise((resolve) => echo.server.close(resolve))
    }
  })
})
