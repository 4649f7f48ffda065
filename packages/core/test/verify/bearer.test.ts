import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import {
  createBearerAuthenticator,
  ERROR_STATUS,
  requireRoles,
  SsoError,
  type Authenticator,
  type RequestLike,
  type SsoErrorCode,
} from '@ssokit/core'

import { Clock, CLIENT, ISSUER, JwksServer, outcome, testKey, token } from './helpers.js'

const k1 = testKey('k1')
const server = new JwksServer()
let auth: Authenticator
const logged: string[] = []

before(async () => {
  await server.start()
  server.setKeys(k1)
  const clock = new Clock()
  auth = createBearerAuthenticator({
    issuer: ISSUER,
    clientId: CLIENT,
    jwksUri: server.url,
    onEvent: (e) => logged.push(JSON.stringify(e)),
    expert: { now: clock.now },
  })
})
after(() => server.close())

function request(authorization: string | string[] | undefined, url = '/api'): RequestLike {
  const values =
    authorization === undefined
      ? []
      : Array.isArray(authorization)
        ? authorization
        : [authorization]
  return {
    method: 'GET',
    url,
    header: (name) => (name === 'authorization' ? values : []),
  }
}

async function answer(req: RequestLike) {
  try {
    const identity = await auth.authenticate(req)
    return { status: 200, identity, headers: {} as Record<string, unknown>, body: '' }
  } catch (error) {
    return { ...auth.reject(error, req), identity: undefined }
  }
}

describe('bearer authenticator (A)', () => {
  test('A25 Authorization header syntax', async () => {
    const t = token()
    for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
      assert.equal((await answer(request(`${scheme} ${t}`))).status, 200, scheme)
    }
    for (const bad of [
      'Bearer',
      'Bearer ',
      `Bearer  ${t}`,
      `Bearer ${t} x`,
      'Bearer a,b',
      'Bearer "x"',
      `Bearer ${t}=x`,
    ]) {
      const res = await answer(request(bad))
      assert.equal(res.status, 400, bad.slice(0, 12))
      assert.equal(
        res.headers['www-authenticate'],
        `Bearer realm="${CLIENT}", error="invalid_request"`,
      )
    }
    for (const foreign of ['Basic YWxpY2U6YWxpY2U=', `Token ${t}`, 'Negotiate abc']) {
      const res = await answer(request(foreign))
      assert.equal(res.status, 401)
      assert.equal(res.headers['www-authenticate'], `Bearer realm="${CLIENT}"`)
      assert.equal(res.body, '{"error":"token_missing"}')
    }
  })

  test('A26 more than one credential', async () => {
    const t = token()
    assert.equal((await answer(request([`Bearer ${t}`, `Bearer ${t}`]))).status, 400)
    const both = await answer(request(`Bearer ${t}`, `/api?access_token=${t}`))
    assert.equal(both.status, 400)
    assert.equal(both.body, '{"error":"invalid_request"}')
  })

  test('A27 token only in the query string', async () => {
    const t = token()
    logged.length = 0
    const res = await answer(request(undefined, `/api?x=1&access_token=${t}`))
    assert.equal(res.status, 401)
    assert.equal(res.headers['www-authenticate'], `Bearer realm="${CLIENT}"`)
    assert.equal(res.body, '{"error":"token_missing"}')
    assert.equal(logged.join('').includes(t), false)
  })

  test('A28 no credentials at all', async () => {
    const res = await answer(request(undefined))
    assert.equal(res.status, 401)
    assert.deepEqual(res.headers, {
      'content-type': 'application/json',
      'cache-control': 'no-store',
      'www-authenticate': `Bearer realm="${CLIENT}"`,
    })
    assert.equal(res.body, '{"error":"token_missing"}')
  })

  test('A21 requireRoles matches exactly', async () => {
    const identity = await auth.authenticate(
      request(`Bearer ${token({ cern_roles: ['admin-readonly', 'user'] })}`),
    )
    assert.throws(
      () => {
        requireRoles(identity, 'admin')
      },
      (e: unknown) => e instanceof SsoError && e.code === 'role_required',
    )
    assert.throws(() => {
      requireRoles(identity, ['user', 'admin'])
    }, SsoError)
    requireRoles(identity, 'user')
    requireRoles(identity, [])
    try {
      requireRoles(identity, ['admin', 'ops'])
      assert.fail('no error')
    } catch (error) {
      const res = auth.reject(error, request(undefined))
      assert.equal(res.status, 403)
      assert.equal(
        res.headers['www-authenticate'],
        `Bearer realm="${CLIENT}", error="insufficient_scope", scope="admin ops"`,
      )
      assert.equal(res.body, '{"error":"role_required"}')
    }
    assert.throws(() => {
      requireRoles(identity, [''])
    }, TypeError)
  })

  test('A30 reject() maps every code', () => {
    const req = request(undefined)
    for (const code of Object.keys(ERROR_STATUS) as SsoErrorCode[]) {
      const res = auth.reject(new SsoError(code, 'x', { retryAfter: 7 }), req)
      assert.equal(res.status, ERROR_STATUS[code], code)
      assert.equal(res.body, JSON.stringify({ error: code }))
      assert.equal(res.headers['content-type'], 'application/json')
      assert.equal(res.headers['cache-control'], 'no-store')
      const challenge = res.headers['www-authenticate']
      if (res.status === 401 || res.status === 400 || res.status === 403) {
        assert.ok(
          typeof challenge === 'string' && challenge.startsWith(`Bearer realm="${CLIENT}"`),
          code,
        )
      }
      if (code === 'token_invalid' || code === 'token_expired' || code === 'audience_mismatch') {
        assert.equal(challenge, `Bearer realm="${CLIENT}", error="invalid_token"`)
      }
      if (res.status === 503) {
        assert.equal(res.headers['retry-after'], '7')
        assert.equal(challenge, undefined)
      }
    }
    for (const thrown of [
      new Error('db password=hunter2'),
      'a string',
      undefined,
      { code: 'token_missing' },
    ]) {
      const res = auth.reject(thrown, req)
      assert.equal(res.status, 500)
      assert.equal(res.body, '{"error":"internal_error"}')
    }
    const noRetry = auth.reject(new SsoError('provider_unavailable', 'x'), req)
    assert.equal(noRetry.headers['retry-after'], '30')
  })

  test('invalid, expired and foreign tokens are 401 invalid_token', async () => {
    for (const t of [
      token({ aud: 'other' }),
      token({ exp: 1 }),
      token({}, {}, testKey('k1-evil')),
    ]) {
      const res = await answer(request(`Bearer ${t}`))
      assert.equal(res.status, 401)
      assert.equal(
        res.headers['www-authenticate'],
        `Bearer realm="${CLIENT}", error="invalid_token"`,
      )
      assert.equal(res.body.includes(t), false)
    }
  })

  test('a shared verifier, a realm option, and realm validation', async () => {
    const { createVerifier } = await import('@ssokit/core')
    const clock = new Clock()
    const verifier = createVerifier({
      issuer: ISSUER,
      clientId: CLIENT,
      jwksUri: server.url,
      expert: { now: clock.now },
    })
    const shared = createBearerAuthenticator(verifier)
    assert.equal(shared.realm, CLIENT)
    assert.equal(await outcome(shared.authenticate(request(`Bearer ${token()}`))), 'ok')
    const named = createBearerAuthenticator({ issuer: ISSUER, clientId: CLIENT, realm: 'My API' })
    assert.equal(named.realm, 'My API')
    for (const realm of ['a"b', 'a\\b', 'a\nb', '']) {
      assert.throws(
        () => createBearerAuthenticator({ issuer: ISSUER, clientId: CLIENT, realm }),
        TypeError,
      )
    }
  })
})
