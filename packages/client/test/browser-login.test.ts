import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { after, before, describe, it } from 'node:test'

import { SsoError } from '@ssokit/core'
import { startIdp, type RunningIdp } from '@ssokit/idp'
import type { Browser } from 'playwright-core'

import { browserLogin } from '../src/index.js'
import { browserSignIn, launchChromium } from './chromium.js'
import { claimsOf, removeTempDirs } from './helpers.js'

function isCode(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof SsoError, `expected an SsoError, got ${String(error)}`)
    assert.equal(error.code, code)
    return true
  }
}

/** Resolves with the URL `onUrl` is given, and lets the test act before the login goes on. */
function urlPromise() {
  let give: (url: string) => void = () => undefined
  const url = new Promise<string>((resolve) => {
    give = resolve
  })
  return {
    url,
    onUrl: (u: string) => {
      give(u)
    },
  }
}

async function refused(url: string): Promise<boolean> {
  try {
    await fetch(url)
    return false
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code
    return code === 'ECONNREFUSED' || code === 'EADDRNOTAVAIL'
  }
}

describe('browserLogin: code + PKCE with a loopback listener, completed by Chromium', () => {
  let idp: RunningIdp
  let browser: Browser
  before(async () => {
    ;[idp, browser] = await Promise.all([startIdp({ port: 0 }), launchChromium()])
  })
  after(async () => {
    await Promise.all([idp.close(), browser.close()])
    await removeTempDirs()
  })

  const tokenPosts = () =>
    idp.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/token')).length

  it('D06 the listener is on 127.0.0.1 only, refuses other paths and a wrong state without a token request, answers one login and closes', async () => {
    const shown = urlPromise()
    const source = browserLogin({
      issuer: idp.issuer,
      clientId: 'demo-cli',
      cache: false,
      openBrowser: false,
      onUrl: shown.onUrl,
    })
    const token = source.token()
    const login = new URL(await shown.url)
    const redirect = new URL(login.searchParams.get('redirect_uri') ?? '')
    assert.equal(redirect.hostname, '127.0.0.1')
    assert.equal(redirect.pathname, '/callback')
    assert.notEqual(redirect.port, '')
    assert.ok(await refused(`http://[::1]:${redirect.port}/callback`), 'not on ::1')

    const before = tokenPosts()
    const marker = '<script>alert(1)</script>'
    const other = await fetch(`${redirect.origin}/other?state=${login.searchParams.get('state')}`)
    assert.equal(other.status, 404)
    const wrong = await fetch(
      `${redirect.href}?code=x&state=${encodeURIComponent(`wrong${marker}`)}&error_description=${encodeURIComponent(marker)}`,
    )
    assert.equal(wrong.status, 400)
    const page = await wrong.text()
    assert.ok(!page.includes('alert') && !page.includes('wrong'), 'the page reflects nothing')
    assert.equal(wrong.headers.get('cache-control'), 'no-store')
    assert.equal(tokenPosts(), before, 'no token request for a wrong state')

    const done = await browserSignIn(browser, login.href, { username: 'alice', password: 'alice' })
    assert.match(done.text, /You are signed in/)
    const claims = claimsOf(await token)
    assert.equal(claims.sub, 'alice')
    assert.equal(claims.azp, 'demo-cli')
    assert.equal(tokenPosts(), before + 1)
    assert.ok(await refused(redirect.href), 'closed after the one login')
  })

  it('D07 PKCE S256 with a 43-character verifier, state and nonce of at least 128 bits, new for every login', async () => {
    const seen: URL[] = []
    const verifiers: string[] = []
    const recording: typeof fetch = async (input, init) => {
      const body = init?.body
      if (body instanceof URLSearchParams && body.get('grant_type') === 'authorization_code') {
        verifiers.push(body.get('code_verifier') ?? '')
      }
      return fetch(input, init)
    }
    for (let i = 0; i < 2; i++) {
      const shown = urlPromise()
      const source = browserLogin(
        {
          issuer: idp.issuer,
          clientId: 'demo-cli',
          cache: false,
          openBrowser: false,
          onUrl: shown.onUrl,
        },
        { fetch: recording },
      )
      const token = source.token()
      const url = new URL(await shown.url)
      seen.push(url)
      await browserSignIn(browser, url.href, { username: 'bob', password: 'bob' })
      assert.equal(claimsOf(await token).sub, 'bob')
    }
    assert.equal(verifiers.length, 2)
    seen.forEach((url, i) => {
      const q = url.searchParams
      assert.equal(q.get('code_challenge_method'), 'S256')
      assert.equal(q.get('response_type'), 'code')
      assert.match(verifiers[i] ?? '', /^[A-Za-z0-9_-]{43}$/)
      assert.equal(
        q.get('code_challenge'),
        createHash('sha256')
          .update(verifiers[i] ?? '')
          .digest('base64url'),
      )
      assert.match(q.get('state') ?? '', /^[A-Za-z0-9_-]{22,}$/)
      assert.match(q.get('nonce') ?? '', /^[A-Za-z0-9_-]{22,}$/)
    })
    const [a, b] = seen.map((u) => u.searchParams)
    for (const name of ['state', 'nonce', 'code_challenge']) {
      assert.notEqual(a?.get(name), b?.get(name), `${name} is new for every login`)
    }
  })

  it('D06 a login not completed in time is login_timeout, and the listener is closed', async () => {
    const shown = urlPromise()
    const source = browserLogin({
      issuer: idp.issuer,
      clientId: 'demo-cli',
      cache: false,
      openBrowser: false,
      timeout: 1,
      onUrl: shown.onUrl,
    })
    const token = source.token()
    const redirect = new URL(new URL(await shown.url).searchParams.get('redirect_uri') ?? '')
    await assert.rejects(token, isCode('login_timeout'))
    assert.ok(await refused(redirect.href))
  })

  it('access_denied from the provider, and login_cancelled by the AbortSignal', async () => {
    const shown = urlPromise()
    const source = browserLogin({
      issuer: idp.issuer,
      clientId: 'demo-cli',
      cache: false,
      openBrowser: false,
      onUrl: shown.onUrl,
    })
    const token = source.token()
    const login = new URL(await shown.url)
    const callback = new URL(login.searchParams.get('redirect_uri') ?? '')
    callback.search = new URLSearchParams({
      error: 'access_denied',
      state: login.searchParams.get('state') ?? '',
      iss: idp.issuer,
    }).toString()
    const denied = assert.rejects(token, isCode('access_denied'))
    assert.equal((await fetch(callback)).status, 400)
    await denied

    const controller = new AbortController()
    const stopped = browserLogin({
      issuer: idp.issuer,
      clientId: 'demo-cli',
      cache: false,
      openBrowser: false,
      signal: controller.signal,
      onUrl: () => {
        controller.abort()
      },
    })
    await assert.rejects(stopped.token(), isCode('login_cancelled'))
  })
})
