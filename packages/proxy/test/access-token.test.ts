/**
 * Access-token pass-through (`--pass-access-token`), against the real provider and the real
 * echo upstream, in both modes: off by default, the incoming header of that name always
 * removed, and when on, exactly the token the request was proven with.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { request, type IncomingMessage } from 'node:http'
import { after, before, describe, it } from 'node:test'
import type { CookieJar } from '@ssokit/idp'
import { decodeJwt } from 'jose'
import { headerOf, serviceToken, signIn, startRig, type Received, type Rig } from './support.js'

function lastOf(rig: Rig): Received {
  const received = rig.echo.received.at(-1)
  assert.ok(received, 'the upstream received a request')
  return received
}

async function forwardAuth(rig: Rig, headers: Record<string, string>) {
  const req = request({
    host: '127.0.0.1',
    port: rig.proxy.port,
    path: '/_ssokit/auth',
    // What nginx's auth_request sends (the documented snippet).
    headers: {
      'x-original-uri': '/app',
      'x-original-method': 'GET',
      'x-forwarded-host': 'localhost:8080',
      'x-forwarded-proto': 'http',
      accept: 'application/json',
      ...headers,
    },
    agent: false,
  })
  req.end()
  const [res] = (await once(req, 'response')) as [IncomingMessage]
  res.resume()
  await once(res, 'end')
  return res
}

describe('ssokit proxy: access-token pass-through', () => {
  let off: Rig
  let on: Rig
  let renamed: Rig
  let alice: CookieJar

  before(async () => {
    off = await startRig({ flags: { 'trusted-proxies': '127.0.0.1' } })
    on = await startRig({
      flags: { 'pass-access-token': 'on', 'trusted-proxies': '127.0.0.1' },
    })
    renamed = await startRig({
      env: { SSOKIT_PASS_ACCESS_TOKEN: 'on', SSOKIT_ACCESS_TOKEN_HEADER: 'X-Upstream-Token' },
    })
    alice = await signIn(on, 'alice')
  })
  after(async () => {
    await Promise.all([off.close(), on.close(), renamed.close()])
  })

  it('sends no token by default, and removes a forged one (C01)', async () => {
    const token = await serviceToken(off.idp.issuer)
    const response = await fetch(`${off.base}/app`, {
      headers: { authorization: `Bearer ${token}`, 'x-forwarded-access-token': 'forged' },
    })
    assert.equal(response.status, 200)
    assert.deepEqual(headerOf(lastOf(off), 'x-forwarded-access-token'), [])
    assert.deepEqual(headerOf(lastOf(off), 'authorization'), [])
    const auth = await forwardAuth(off, { authorization: `Bearer ${token}` })
    assert.equal(auth.statusCode, 200)
    assert.equal(auth.headers['x-forwarded-access-token'] ?? '', '')
  })

  it('sends the bearer token it verified, never a forged one (C01-C03)', async () => {
    const token = await serviceToken(on.idp.issuer)
    const response = await fetch(`${on.base}/app`, {
      headers: {
        authorization: `Bearer ${token}`,
        'x-forwarded-access-token': 'forged',
        x_forwarded_access_token: 'forged',
      },
    })
    assert.equal(response.status, 200)
    assert.deepEqual(headerOf(lastOf(on), 'x-forwarded-access-token'), [token])
    assert.deepEqual(headerOf(lastOf(on), 'x_forwarded_access_token'), [])
    assert.deepEqual(headerOf(lastOf(on), 'authorization'), [])
  })

  it("sends the session's access token", async () => {
    const response = await alice.fetch(`${on.base}/app`, {
      headers: { 'x-forwarded-access-token': 'forged' },
    })
    assert.equal(response.status, 200)
    const [token] = headerOf(lastOf(on), 'x-forwarded-access-token')
    assert.ok(token !== undefined && token !== 'forged')
    const claims = decodeJwt(token)
    assert.equal(claims.iss, on.idp.issuer)
    assert.equal(claims.preferred_username, 'alice')
  })

  it('answers forward auth with the token for the front server to pass on', async () => {
    const token = await serviceToken(on.idp.issuer)
    const bearer = await forwardAuth(on, {
      authorization: `Bearer ${token}`,
      'x-forwarded-access-token': 'forged',
    })
    assert.equal(bearer.statusCode, 200)
    assert.equal(bearer.headers['x-forwarded-access-token'], token)
    const session = await forwardAuth(on, { cookie: alice.header(`${on.base}/`) })
    assert.equal(session.statusCode, 200)
    const passed = String(session.headers['x-forwarded-access-token'] ?? '')
    assert.equal(decodeJwt(passed).preferred_username, 'alice')
  })

  it('uses the configured header name, and strips it from requests', async () => {
    const token = await serviceToken(renamed.idp.issuer)
    const response = await fetch(`${renamed.base}/app`, {
      headers: { authorization: `Bearer ${token}`, 'x-upstream-token': 'forged' },
    })
    assert.equal(response.status, 200)
    assert.deepEqual(headerOf(lastOf(renamed), 'x-upstream-token'), [token])
    assert.deepEqual(headerOf(lastOf(renamed), 'x-forwarded-access-token'), [])
  })
})
