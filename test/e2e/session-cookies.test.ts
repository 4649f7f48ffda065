/**
 * Session cookies against a hostile sibling host, in real Chromium: the app is served over https
 * as `app.example.org` and an attacker's site as `evil.example.org` (both mapped to 127.0.0.1 in
 * the browser), so the browser applies its real rules for `Domain`, `Secure` and `__Host-`.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'

import { DEFAULT_IDP_CONFIG, loginWithPassword, startIdp, type RunningIdp } from '@ssokit/idp'
import type { Browser, BrowserContext } from 'playwright-core'

import { launchBrowser } from '../support/browser.js'
import { startSessionApp, type SessionApp } from '../support/session-app.js'
import { selfSignedCertificate } from '../support/tls.js'

const APP_HOST = 'app.example.org'
const EVIL_HOST = 'evil.example.org'
const SECRET = 'session-cookies-secret-0123456789abcdef'

let idp: RunningIdp
let app: SessionApp
let evil: Server
let evilUrl: string
let browser: Browser

before(async () => {
  const certificate = await selfSignedCertificate([APP_HOST, EVIL_HOST])
  app = await startSessionApp(
    async (publicUrl) => {
      idp = await startIdp({
        port: 0,
        log: false,
        config: {
          ...DEFAULT_IDP_CONFIG,
          clients: [
            ...(DEFAULT_IDP_CONFIG.clients ?? []),
            {
              client_id: 'tls-app',
              secret: 'tls-app-secret',
              grant_types: ['authorization_code', 'refresh_token'],
              redirect_uris: [`${publicUrl}/*`],
              post_logout_redirect_uris: [`${publicUrl}/*`],
            },
          ],
        },
      })
      return {
        issuer: idp.issuer,
        clientId: 'tls-app',
        clientSecret: 'tls-app-secret',
        secret: SECRET,
      }
    },
    { certificate, hostname: APP_HOST },
  )
  // The attacker's site: sets the cookies it is told to, every way a sibling host could, then
  // sends the browser on.
  evil = createServer(certificate, (req, res) => {
    const url = new URL(req.url ?? '/', `https://${EVIL_HOST}`)
    const id = url.searchParams.get('id') ?? ''
    const value = url.searchParams.get('value') ?? ''
    res.setHeader('set-cookie', [
      `__Secure-ssokit-tx-${id}=${value}; Domain=example.org; Path=/auth; Secure; HttpOnly; SameSite=Lax`,
      `__Secure-ssokit-tx-${id}=${value}; Domain=example.org; Path=/; Secure; HttpOnly; SameSite=Lax`,
      `__Host-ssokit-tx-${id}=${value}; Domain=example.org; Path=/; Secure; HttpOnly; SameSite=Lax`,
      `ssokit-tx-${id}=${value}; Domain=example.org; Path=/; Secure; HttpOnly; SameSite=Lax`,
    ])
    res.writeHead(302, { location: url.searchParams.get('next') ?? '/' })
    res.end()
  })
  evil.listen(0, '127.0.0.1')
  await once(evil, 'listening')
  evilUrl = `https://${EVIL_HOST}:${(evil.address() as AddressInfo).port}`
  browser = await launchBrowser([
    `--host-resolver-rules=MAP ${APP_HOST} 127.0.0.1, MAP ${EVIL_HOST} 127.0.0.1`,
  ])
})

after(async () => {
  await browser.close()
  evil.closeAllConnections()
  evil.close()
  await app.close()
  await idp.close()
})

function newContext(): Promise<BrowserContext> {
  return browser.newContext({ ignoreHTTPSErrors: true })
}

/**
 * The attacker's own sign-in, in the attacker's browser up to the provider, then finished at the
 * provider without following the last redirect: the callback URL and the attacker's flow cookie.
 */
async function attackerSignIn(): Promise<{ callback: string; id: string; value: string }> {
  const context = await newContext()
  try {
    const page = await context.newPage()
    let authorize: string | undefined
    page.on('response', (response) => {
      const location = response.headers().location
      if (response.url().startsWith(`${app.url}/auth/login`) && location !== undefined)
        authorize = location
    })
    await page.goto(`${app.url}/auth/login`)
    await page.waitForSelector('#kc-form-login')
    assert.ok(authorize, 'the app sent the attacker to the provider')
    const { location } = await loginWithPassword({
      issuer: idp.issuer,
      authorizeUrl: authorize,
      username: 'bob',
      password: 'bob',
    })
    const flow = (await context.cookies()).find(
      (c) => c.domain === APP_HOST && c.name.includes('ssokit-tx-'),
    )
    assert.ok(flow, 'the attacker holds a flow cookie')
    return { callback: location, id: flow.name.replace(/^.*ssokit-tx-/, ''), value: flow.value }
  } finally {
    await context.close()
  }
}

describe('session cookies and a hostile sibling host', () => {
  it('H07 a sibling host cannot plant its sign-in: the victim is not logged in as the attacker', async () => {
    const attacker = await attackerSignIn()
    const context = await newContext()
    try {
      const page = await context.newPage()
      const plant = new URL(`${evilUrl}/plant`)
      plant.searchParams.set('id', attacker.id)
      plant.searchParams.set('value', attacker.value)
      plant.searchParams.set('next', attacker.callback)
      const response = await page.goto(plant.href)
      assert.equal(new URL(page.url()).origin, app.url)
      assert.equal(response?.status(), 400)
      assert.match((await page.textContent('body')) ?? '', /not started in this browser/)
      const cookies = await context.cookies(app.url)
      assert.equal(
        cookies.find((c) => c.name.includes('ssokit-session')),
        undefined,
        'no session',
      )
      assert.equal(
        cookies.find((c) => c.name.startsWith('__Host-')),
        undefined,
        'the browser refused a __Host- cookie from the sibling',
      )
      // The victim's own sign-in still works.
      await page.goto(`${app.url}/`)
      await page.waitForSelector('#kc-form-login')
      await page.fill('input[name="username"]', 'alice')
      await page.fill('input[name="password"]', 'alice')
      await Promise.all([page.waitForURL(`${app.url}/`), page.click('#kc-login')])
      assert.equal(await page.textContent('#user'), 'alice')
    } finally {
      await context.close()
    }
  })
})
