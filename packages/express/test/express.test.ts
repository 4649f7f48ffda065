import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, describe, it } from 'node:test'
import express, { type ErrorRequestHandler } from 'express'
import { createBearerAuthenticator, type Identity } from '@ssokit/core'
import { authRouter, requireAuth, requireRole } from '@ssokit/express'
import { withTestRoutes } from '../../../test/support/routes.js'

const bearer = createBearerAuthenticator({
  issuer: 'https://idp.example.org/realms/x',
  clientId: 'api',
})

const servers: Server[] = []
after(async () => {
  for (const server of servers) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})

async function serve(app: express.Express): Promise<string> {
  const server = createServer(app)
  servers.push(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

describe('@ssokit/express', () => {
  it('checks options when the middleware is built', () => {
    assert.throws(() => requireRole(), { name: 'TypeError', code: 'ERR_MISSING_OPTION' })
    assert.throws(() => requireRole(''), { code: 'ERR_INVALID_ARG_VALUE' })
    assert.throws(() => requireAuth({ auth: bearer, roles: [42 as unknown as string] }), {
      code: 'ERR_INVALID_ARG_VALUE',
    })
    assert.throws(() => authRouter(bearer), { code: 'ERR_INVALID_ARG_VALUE' })
  })

  it('returns named handlers', () => {
    assert.equal(requireAuth({ auth: bearer }).name, 'requireAuth')
    assert.equal(requireRole('admin').name, 'requireRole')
  })

  it('requireRole() without requireAuth() is a clear server error, and the handler never runs', async () => {
    let calls = 0
    let code: unknown
    const app = express()
    app.get('/admin', requireRole('admin'), () => {
      calls += 1
    })
    const onError: ErrorRequestHandler = (error: { code?: unknown }, _req, res, _next) => {
      code = error.code
      res.status(500).json({ error: 'internal_error' })
    }
    app.use(onError)
    const response = await fetch(`${await serve(app)}/admin`)
    assert.equal(response.status, 500)
    assert.equal(code, 'ERR_MISSING_OPTION')
    assert.equal(calls, 0)
  })

  it('answers a rejection itself and leaves req.auth unset', async () => {
    let seen: Identity | undefined
    const app = express()
    app.use((req, _res, next) => {
      next()
      seen = req.auth
    })
    app.get('/me', requireAuth({ auth: bearer }), (_req, res) => res.end())
    const response = await fetch(`${await serve(app)}/me?x=1`, {
      headers: { authorization: 'Bearer a b' },
    })
    assert.equal(response.status, 400)
    assert.equal(
      response.headers.get('www-authenticate'),
      'Bearer realm="api", error="invalid_request"',
    )
    assert.equal(seen, undefined)
  })

  it('authRouter() serves session routes with the unparsed body and the original URL', async () => {
    const withRoutes = withTestRoutes(bearer, async (request, pathname) =>
      pathname === '/auth/backchannel-logout'
        ? new Response(`${pathname} ${await request.text()}`)
        : undefined,
    )
    const app = express()
    app.use(authRouter(withRoutes))
    // A body parser mounted after the session routes never sees their bodies.
    app.use(express.urlencoded())
    app.post('/form', (req, res) => {
      res.json(req.body)
    })
    const url = await serve(app)
    const form = { 'content-type': 'application/x-www-form-urlencoded' }
    const logout = await fetch(`${url}/auth/backchannel-logout`, {
      method: 'POST',
      headers: form,
      body: 'logout_token=x.y.z',
    })
    assert.equal(await logout.text(), '/auth/backchannel-logout logout_token=x.y.z')
    assert.equal((await fetch(`${url}/auth/fail`)).status, 400)
    assert.equal((await fetch(`${url}/auth/unknown`)).status, 404)
    const other = await fetch(`${url}/form`, { method: 'POST', headers: form, body: 'a=b' })
    assert.deepEqual(await other.json(), { a: 'b' })
  })
})
