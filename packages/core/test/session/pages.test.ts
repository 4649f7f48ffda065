/** The `pages` option: the application lays out the few HTML pages of sign-in in its own style. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'

import {
  createSessionAuth,
  fromRequest,
  MemorySessionStore,
  SsoError,
  type SessionPage,
  type SessionAuthOptions,
} from '@ssokit/core'

import { APP, SECRET } from './support.js'

/** A store that cannot answer, as Redis does when it is down. */
class DownStore extends MemorySessionStore {
  override get(): Promise<undefined> {
    return Promise.reject(new SsoError('session_store_unavailable', 'The store is down.'))
  }
}

const POLICY = "default-src 'none'; style-src 'sha256-abc'"

function auth(extra: Partial<SessionAuthOptions> = {}, store = new MemorySessionStore()) {
  const seen: SessionPage[] = []
  const instance = createSessionAuth({
    // Never contacted: every page below is answered before the provider is.
    issuer: 'http://127.0.0.1:9/auth/realms/dev',
    clientId: 'web-app',
    clientSecret: 'web-app-secret',
    publicUrl: APP,
    secret: SECRET,
    store,
    pages: {
      render(page) {
        seen.push(page)
        return `<!doctype html><title>${page.titleHtml}</title><main class="app">${page.bodyHtml}</main>`
      },
      contentSecurityPolicy: POLICY,
    },
    ...extra,
  })
  return { instance, seen }
}

const navigation = { accept: 'text/html', 'sec-fetch-mode': 'navigate' }

describe('session pages in the application style', () => {
  it('lays out a failed sign-in with the application renderer and its policy', async () => {
    const { instance, seen } = auth()
    const response = await instance.handle(
      new Request(`${APP}/auth/callback?code=abc`, { headers: navigation }),
    )
    assert.ok(response)
    assert.equal(response.status, 400)
    assert.equal(response.headers.get('content-security-policy'), POLICY)
    assert.equal(response.headers.get('cache-control'), 'no-store')
    const html = await response.text()
    assert.match(html, /^<!doctype html><title>Sign-in failed<\/title><main class="app"><p>/)
    assert.match(html, /<a href="https:\/\/app\.example\.org\/auth\/login">Sign in again<\/a>/)
    assert.deepEqual(
      seen.map((page) => [page.status, page.titleHtml]),
      [[400, 'Sign-in failed']],
    )
    await instance.close()
  })

  it('lays out the store outage of the sign-in route, keeping Retry-After', async () => {
    const { instance, seen } = auth({}, new DownStore())
    const response = await instance.handle(
      new Request(`${APP}/auth/login`, { headers: navigation }),
    )
    assert.ok(response)
    assert.equal(response.status, 503)
    assert.ok(Number(response.headers.get('retry-after')) > 0)
    assert.equal(response.headers.get('content-security-policy'), POLICY)
    assert.match(
      await response.text(),
      /<main class="app"><p>The session service cannot be reached/,
    )
    assert.deepEqual(
      seen.map((page) => page.status),
      [503],
    )
  })

  it('lays out the page of a refused navigation to a protected route', () => {
    const { instance } = auth()
    const request = fromRequest(new Request(`${APP}/admin`, { headers: navigation }))
    const parts = instance.reject(new SsoError('session_store_unavailable', 'down'), request)
    assert.equal(parts.status, 503)
    assert.equal(parts.headers['content-security-policy'], POLICY)
    assert.match(parts.body, /<title>Temporarily unavailable<\/title><main class="app">/)
  })

  it('keeps the plain pages and their strict policy without the option', async () => {
    const instance = createSessionAuth({
      issuer: 'http://127.0.0.1:9/auth/realms/dev',
      clientId: 'web-app',
      clientSecret: 'web-app-secret',
      publicUrl: APP,
      secret: SECRET,
    })
    const response = await instance.handle(new Request(`${APP}/auth/callback?code=abc`))
    assert.ok(response)
    assert.equal(response.status, 400)
    assert.match(response.headers.get('content-security-policy') ?? '', /^default-src 'none'/)
    assert.match(await response.text(), /<h1>Sign-in failed<\/h1>/)
    await instance.close()
  })

  it('refuses a renderer that is not a function and a policy on two lines', () => {
    assert.throws(() => auth({ pages: { render: 'x' as never } }), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
    })
    assert.throws(
      () =>
        auth({ pages: { render: () => '', contentSecurityPolicy: "default-src 'none'\r\nx: y" } }),
      { name: 'TypeError' },
    )
  })
})
