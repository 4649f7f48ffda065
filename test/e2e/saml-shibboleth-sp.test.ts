/**
 * Side by side with the Shibboleth SP it replaces: the same SimpleSAMLphp user signs in, in one
 * Chromium, through Apache + mod_shib + shibd and through `ssokit proxy` with the `shibboleth`
 * header preset, each in front of an application that shows the headers it receives. Both
 * must hand it the same user and the same attribute values under the same attribute-map ids.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { loadProxyConfig, startProxy, type RunningProxy } from '@ssokit/proxy'
import { makeKeyPair } from '../../packages/saml/test/support.js'
import { launchBrowser } from '../support/browser.js'
import { freePort, tempDir } from '../support/redis.js'
import {
  attributeMapIds,
  startShibbolethSp,
  type RunningShibbolethSp,
} from '../support/shibboleth-sp.js'
import {
  SSP_USER,
  startHeaderEcho,
  startSimpleSamlPhp,
  type RunningSimpleSamlPhp,
} from '../support/simplesamlphp.js'

/**
 * Where ssokit's attribute ids differ from those of Shibboleth's stock attribute-map.xml: the
 * isMemberOf OID is `member` there (deployments often rename it), `isMemberOf` in ssokit.
 */
const SSOKIT_ID: Readonly<Record<string, string>> = { member: 'ismemberof' }

describe('ssokit proxy and Shibboleth SP (mod_shib) side by side', () => {
  let idp: RunningSimpleSamlPhp
  let shib: RunningShibbolethSp
  let proxy: RunningProxy
  let echo: Awaited<ReturnType<typeof startHeaderEcho>>
  let browser: Browser
  let context: BrowserContext
  let proxyUrl: string

  before(async () => {
    echo = await startHeaderEcho()
    const shibPort = await freePort()
    const proxyPort = await freePort()
    proxyUrl = `http://127.0.0.1:${proxyPort}`
    const shibKeys = makeKeyPair('ssokit-sp')
    const proxyKeys = makeKeyPair('ssokit-sp')
    const shibUrl = `http://127.0.0.1:${shibPort}`
    idp = await startSimpleSamlPhp([
      {
        entityId: `${shibUrl}/shibboleth`,
        acsUrl: `${shibUrl}/Shibboleth.sso/SAML2/POST`,
        sloUrl: `${shibUrl}/Shibboleth.sso/SLO/Redirect`,
        certificate: shibKeys.cert,
        trustedHost: `127.0.0.1:${shibPort}`,
        // Shibboleth SP does not sign its AuthnRequests unless told to.
        signsRequests: false,
      },
      {
        entityId: `${proxyUrl}/sp`,
        acsUrl: `${proxyUrl}/_ssokit/saml/acs`,
        sloUrl: `${proxyUrl}/_ssokit/saml/slo`,
        certificate: proxyKeys.cert,
        trustedHost: `127.0.0.1:${proxyPort}`,
      },
    ])
    const metadata = await (await fetch(idp.metadataUrl)).text()
    shib = await startShibbolethSp({
      idpMetadata: metadata,
      idpEntityId: idp.entityId,
      upstream: echo.url,
      key: shibKeys.key,
      cert: shibKeys.cert,
      port: shibPort,
    })
    const dir = tempDir('ssokit-saml-side-by-side-')
    writeFileSync(join(dir, 'sp-cert.pem'), proxyKeys.cert)
    writeFileSync(join(dir, 'sp-key.pem'), proxyKeys.key)
    proxy = await startProxy(
      await loadProxyConfig({
        flags: {
          upstream: echo.url,
          'public-url': proxyUrl,
          port: proxyPort,
          'saml-idp-metadata': idp.metadataUrl,
          'saml-entity-id': `${proxyUrl}/sp`,
          'saml-cert-file': join(dir, 'sp-cert.pem'),
          'saml-key-file': join(dir, 'sp-key.pem'),
          'header-preset': 'shibboleth',
          'access-log': 'off',
        },
      }),
    )
    browser = await launchBrowser()
    context = await browser.newContext()
  })

  after(async () => {
    await context.close()
    await browser.close()
    await proxy.close()
    await shib.stop()
    await idp.stop()
    await new Promise((resolve) => echo.server.close(resolve))
  })

  /** Opens `url`, signs in at the IdP's form when it is shown, and returns the echoed headers. */
  async function headersAt(
    page: Page,
    url: string,
    log: () => string,
  ): Promise<Record<string, string>> {
    await page.goto(url)
    // With an IdP session the IdP posts straight back; without one it shows its form.
    const form = await Promise.race([
      page.waitForSelector('input[name=password]', { timeout: 30_000 }).then(() => true),
      page.waitForURL(url, { timeout: 30_000 }).then(() => false),
    ])
    if (form) {
      await page.fill('input[name=username]', SSP_USER.username)
      await page.fill('input[name=password]', SSP_USER.password)
      await page.press('input[name=password]', 'Enter')
    }
    await page.waitForURL(url, { timeout: 30_000 }).catch((error: unknown) => {
      throw new Error(`not back at ${url} but at ${page.url()}:\n${log()}\n${idp.log()}`, {
        cause: error,
      })
    })
    const text = (await page.textContent('body')) ?? ''
    try {
      return JSON.parse(text) as Record<string, string>
    } catch {
      throw new Error(`not the echo at ${url}: ${text.slice(0, 500)}\n${log()}`)
    }
  }

  it('the same user gets the same REMOTE_USER, IdP and attribute values from mod_shib and from ssokit proxy', async () => {
    const page = await context.newPage()
    const fromShib = await headersAt(page, `${shib.url}/app/whoami`, () => shib.log())
    // The second SP needs no form: the IdP's single sign-on session is the same user's.
    const fromSsokit = await headersAt(page, `${proxyUrl}/app/whoami`, () => '')
    assert.equal(fromShib['remote-user'], 'jdoe@example.org', JSON.stringify(fromShib))
    assert.equal(fromSsokit['remote-user'], fromShib['remote-user'])
    assert.equal(fromShib['shib-identity-provider'], idp.entityId)
    assert.equal(fromSsokit['shib-identity-provider'], fromShib['shib-identity-provider'])
    // Every attribute mod_shib hands over (it sends an empty header for the map's other ids).
    const sent = attributeMapIds()
      .map((id) => id.toLowerCase())
      .filter((id) => (fromShib[id] ?? '') !== '')
    assert.deepEqual(
      sent.sort(),
      ['displayname', 'eppn', 'mail', 'member', 'uid', 'unscoped-affiliation'],
      JSON.stringify(fromShib),
    )
    for (const id of sent) {
      const ours = SSOKIT_ID[id] ?? id
      assert.equal(
        fromSsokit[ours],
        fromShib[id],
        `${id}: ${JSON.stringify({ fromShib, fromSsokit })}`,
      )
    }
    // Several values: joined by ";" in the IdP's order by both.
    assert.equal(fromShib['unscoped-affiliation'], 'member;staff')
    assert.equal(fromShib.member, 'staff;admins')
    await page.close()
  })
})
