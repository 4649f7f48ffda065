import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import Fastify from 'fastify'
import { createBearerAuthenticator } from '@ssokit/core'
import { requireAuth, requireRole, ssokit } from '@ssokit/fastify'
import { withTestRoutes } from '../../../test/support/routes.js'

const bearer = createBearerAuthenticator({
  issuer: 'https://idp.example.org/realms/x',
  clientId: 'api',
})

describe('@ssokit/fastify', () => {
  it('is a fastify-plugin named @ssokit/fastify', () => {
    const meta = (ssokit as unknown as Record<symbol, { name?: string; fastify?: string }>)[
      Symbol.for('plugin-meta')
    ]
    assert.equal(meta?.name, '@ssokit/fastify')
    assert.equal(meta.fastify, '5.x')
  })

  it('refuses to be registered twice in one context', async () => {
    const app = Fastify()
    await app.register(ssokit, { auth: bearer })
    await assert.rejects(async () => app.register(ssokit, { auth: bearer }), {
      code: 'ERR_INVALID_ARG_VALUE',
    })
    await app.close()
  })

  it('keeps sibling contexts apart, each with its own authenticator', async () => {
    const other = createBearerAuthenticator({
      issuer: 'https://idp.example.org/realms/x',
      clientId: 'other',
    })
    const app = Fastify()
    for (const [prefix, auth] of [
      ['/a', bearer],
      ['/b', other],
    ] as const) {
      await app.register(
        async (child) => {
          await child.register(ssokit, { auth })
          child.get('/me', { onRequest: requireAuth() }, () => 'ok')
        },
        { prefix },
      )
    }
    const a = await app.inject('/a/me')
    const b = await app.inject('/b/me')
    assert.equal(a.headers['www-authenticate'], 'Bearer realm="api"')
    assert.equal(b.headers['www-authenticate'], 'Bearer realm="other"')
    await app.close()
  })

  it('decorates request.auth with null on unprotected routes', async () => {
    const app = Fastify()
    await app.register(ssokit, { auth: bearer })
    app.get('/open', (request) => ({ auth: request.auth }))
    assert.deepEqual((await app.inject('/open')).json(), { auth: null })
    await app.close()
  })

  it('protects routes by hook or by config, through inject() too', async () => {
    let calls = 0
    const app = Fastify()
    app.get('/config', { config: { auth: true } }, () => (calls += 1))
    // Registered after the route, not awaited: config-protected routes are still covered.
    void app.register(ssokit, { auth: bearer })
    app.get('/role', { preHandler: requireRole('admin') }, () => (calls += 1))
    app.get('/both', { onRequest: [requireAuth(), requireRole('admin')] }, () => (calls += 1))
    for (const url of ['/config', '/role', '/both']) {
      const response = await app.inject(url)
      assert.equal(response.statusCode, 401, url)
      assert.equal(response.headers['www-authenticate'], 'Bearer realm="api"')
      assert.deepEqual(response.json(), { error: 'token_missing' })
    }
    const twice = await app.inject({ url: '/config', headers: { authorization: 'Bearer a b' } })
    assert.equal(twice.statusCode, 400)
    assert.equal(calls, 0)
    await app.close()
  })

  it('checks route config when the route is declared', async () => {
    const app = Fastify()
    await app.register(ssokit, { auth: bearer })
    assert.throws(
      () => app.get('/x', { config: { roles: 'admin' as unknown as string[] } }, () => 'x'),
      {
        code: 'ERR_INVALID_ARG_TYPE',
      },
    )
    await app.close()
  })

  it('a hook used without the plugin fails clearly and the handler never runs', async () => {
    let calls = 0
    const app = Fastify()
    app.get('/me', { onRequest: requireAuth() }, () => (calls += 1))
    const response = await app.inject('/me')
    assert.equal(response.statusCode, 500)
    assert.equal(calls, 0)
    await app.close()
  })

  it('serves session routes with unparsed bodies, and 404 for paths they do not serve', async () => {
    const withRoutes = withTestRoutes(bearer, async (request, pathname) =>
      pathname === '/auth/backchannel-logout'
        ? new Response(`${request.url} ${await request.text()}`, {
            headers: [
              ['set-cookie', 's=1'],
              ['set-cookie', 't=2'],
            ],
          })
        : undefined,
    )
    const app = Fastify()
    await app.register(ssokit, { auth: withRoutes })
    app.post('/json', (request) => request.body)
    const logout = await app.inject({
      method: 'POST',
      url: '/auth/backchannel-logout',
      headers: { 'content-type': 'application/x-www-form-urlencoded', host: 'app.example.org' },
      payload: 'logout_token=x.y.z',
    })
    assert.equal(logout.statusCode, 200)
    assert.equal(logout.body, 'http://app.example.org/auth/backchannel-logout logout_token=x.y.z')
    assert.deepEqual(logout.headers['set-cookie'], ['s=1', 't=2'])
    assert.equal((await app.inject('/auth/fail')).statusCode, 400)
    assert.equal((await app.inject('/auth/unknown')).statusCode, 404)
    // Body parsing elsewhere is untouched.
    const json = await app.inject({ method: 'POST', url: '/json', payload: { a: 1 } })
    assert.deepEqual(json.json(), { a: 1 })
    await app.close()
  })
})
