/**
 * SAML against real parts: SimpleSAMLphp as the IdP (PHP's built-in server on 127.0.0.1),
 * Debian's Chromium as the browser, an application behind `withAuth` with `createSamlAuth`.
 * The IdP checks the SP's signed AuthnRequests and logout messages and encrypts its assertions
 * to the SP; the application sees the attributes; SP- and IdP-initiated logout end both sessions.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { withAuth } from '@ssokit/node'
import { createSamlAuth, type SamlAuth, type SamlEvent } from '@ssokit/saml'
import { launchBrowser } from '../support/browser.js'
import { freePort, tempDir } from '../support/redis.js'
import {
  SSP_USER,
  startSimpleSamlPhp,
  type RunningSimpleSamlPhp,
} from '../support/simplesamlphp.js'

function keyPair(): { key: string; cert: string } {
  const dir = tempDir('ssokit-saml-sp-')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '3',
      '-subj',
      '/CN=ssokit-sp',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  )
  return {
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
    cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
  }
}

describe('SAML sign-in through SimpleSAMLphp in Chromium', () => {
  let idp: RunningSimpleSamlPhp
  let auth: SamlAuth
  let server: Server
  let browser: Browser
  let app: string
  const events: SamlEvent[] = []

  before(async () => {
    const port = await freePort()
    app = `http://127.0.0.1:${port}`
    const sp = keyPair()
    const entityId = `${app}/sp`
    idp = await startSimpleSamlPhp({
      entityId,
      acsUrl: `${app}/auth/saml/acs`,
      sloUrl: `${app}/auth/saml/slo`,
      certificate: sp.cert,
      trustedHost: `127.0.0.1:${port}`,
    })
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
      await page.fill('input[name=username]', SSP_USER.username)
      await page.fill('input[name=password]', SSP_USER.password)
      await page.press('input[name=password]', 'Enter')
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
})
