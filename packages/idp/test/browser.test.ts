import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { Browser } from 'playwright-core'
import { startIdp, type RunningIdp } from '@ssokit/idp'
import { launchBrowser } from '../../../test/support/browser.js'
import { authorizeUrl, pkce } from './helpers.js'

describe('browser login through the login page', () => {
  let idp: RunningIdp
  let browser: Browser
  let app: Server
  let callback: string

  before(async () => {
    idp = await startIdp({ port: 0 })
    // The client's redirect target: a page echoing what it received.
    app = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://localhost')
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end(
        `<p id="code">${url.searchParams.get('code') ?? ''}</p><p id="state">${url.searchParams.get('state') ?? ''}</p>`,
      )
    })
    await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve))
    callback = `http://127.0.0.1:${(app.address() as AddressInfo).port}/callback`
    browser = await launchBrowser()
  })
  after(async () => {
    await browser.close()
    await idp.close()
    await new Promise<void>((resolve) =>
      app.close(() => {
        resolve()
      }),
    )
  })

  it('shows an error for a wrong password, then logs in and redirects with a code', async () => {
    const page = await browser.newPage()
    try {
      await page.goto(
        authorizeUrl(idp, {
          clientId: 'demo-app',
          redirectUri: callback,
          challenge: pkce().challenge,
          state: 'browser-state',
        }),
      )
      assert.match(await page.title(), /Sign in · dev/)
      await page.fill('#username', 'alice')
      await page.fill('#password', 'wrong')
      await page.click('#kc-login')
      await page.waitForSelector('#kc-error-message')
      assert.equal(
        (await page.textContent('#kc-error-message'))?.trim(),
        'Invalid username or password.',
      )
      assert.equal(await page.inputValue('#username'), 'alice')
      await page.fill('#password', 'alice')
      await Promise.all([page.waitForURL(`${callback}?**`), page.click('#kc-login')])
      const url = new URL(page.url())
      assert.equal(url.searchParams.get('state'), 'browser-state')
      assert.ok((url.searchParams.get('code') ?? '').length > 20)
      assert.equal(await page.textContent('#state'), 'browser-state')
    } finally {
      await page.close()
    }
  })

  it('follows the browser between light and dark mode', async () => {
    const url = authorizeUrl(idp, {
      clientId: 'demo-app',
      redirectUri: callback,
      challenge: pkce().challenge,
      state: 'scheme',
    })
    // Relative luminance of the card and of the heading text, as the browser paints them.
    const luminance = async (colorScheme: 'light' | 'dark') => {
      const page = await browser.newPage({ colorScheme })
      try {
        await page.goto(url)
        // Colours are read in the page and measured here: the page runs the function as given.
        const colours = await page.evaluate(() => {
          const card = document.querySelector('.card')
          const heading = document.querySelector('h1')
          if (!card || !heading) throw new Error('no card or heading on the login page')
          return [getComputedStyle(card).backgroundColor, getComputedStyle(heading).color]
        })
        const [card = 0, text = 0] = colours.map((css) => {
          const [r = 0, g = 0, b = 0] = (css.match(/\d+(\.\d+)?/g) ?? []).map(Number)
          return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255
        })
        return { card, text }
      } finally {
        await page.close()
      }
    }
    const light = await luminance('light')
    const dark = await luminance('dark')
    assert.ok(light.card > 0.9 && light.text < 0.3, JSON.stringify(light))
    assert.ok(dark.card < 0.2 && dark.text > 0.8, JSON.stringify(dark))
  })
})
