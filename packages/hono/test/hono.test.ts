import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Hono } from 'hono'
import { HTTPException } from 'hono/http-exception'
import { createBearerAuthenticator, isSsoError } from '@ssokit/core'
import { authRoutes, requireAuth, requireRole } from '@ssokit/hono'
import { withTestRoutes } from '../../../test/support/routes.js'

const bearer = createBearerAuthenticator({
  issuer: 'https://idp.example.org/realms/x',
  clientId: 'api',
})

describe('@ssokit/hono', () => {
  it('checks options when the middleware is built and returns named handlers', () => {
    assert.throws(() => requireRole(), { name: 'TypeError', code: 'ERR_MISSING_OPTION' })
    assert.throws(() => requireAuth({ auth: bearer, roles: [''] }), { name: 'TypeError' })
    assert.throws(() => authRoutes(bearer), { code: 'ERR_INVALID_ARG_VALUE' })
    assert.equal(requireAuth({ auth: bearer }).name, 'requireAuth')
    assert.equal(requireRole('admin').name, 'requireRole')
  })

  it('rejects with an HTTPException carrying the response and the SsoError as cause', async () => {
    let cause: unknown
    let calls = 0
    const app = new Hono()
    app.use('/api/*', requireAuth({ auth: bearer }))
    app.get('/api/me', (c) => {
      calls += 1
      return c.json(c.get('auth').subject)
    })
    app.onError((error, c) => {
      if (error instanceof HTTPException) {
        cause = error.cause
        return error.getResponse()
      }
      return c.text('unexpected', 500)
    })
    const response = await app.request('/api/me', { headers: { authorization: 'Basic eDp5' } })
    assert.equal(response.status, 401)
    assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="api"')
    assert.deepEqual(await response.json(), { error: 'token_missing' })
    assert.ok(isSsoError(cause) && cause.code === 'token_missing')
    assert.equal(calls, 0)
  })

  it('requireRole() without requireAuth() is a server error and the handler never runs', async () => {
    let calls = 0
    let code: unknown
    const app = new Hono()
    app.onError((error, c) => {
      code = (error as { code?: unknown }).code
      return c.text('internal error', 500)
    })
    app.get('/admin', requireRole('admin'), (c) => {
      calls += 1
      return c.text('x')
    })
    const response = await app.request('/admin')
    assert.equal(response.status, 500)
    assert.equal(code, 'ERR_MISSING_OPTION')
    assert.equal(calls, 0)
  })

  it('authRoutes() serves the session routes and lets other requests through', async () => {
    const withRoutes = withTestRoutes(bearer, async (request, pathname) =>
      pathname === '/auth/callback'
        ? new Response(`${request.method} ${await request.text()}`)
        : undefined,
    )
    const app = new Hono()
    app.use(authRoutes(withRoutes))
    app.get('/auth/other', (c) => c.text('app route'))
    const callback = await app.request('/auth/callback', { method: 'POST', body: 'code=1' })
    assert.equal(await callback.text(), 'POST code=1')
    assert.equal((await app.request('/auth/fail')).status, 400)
    assert.equal(await (await app.request('/auth/other')).text(), 'app route')
  })
})
