/**
 * `ready()` of a bearer authenticator against a real `ssokit idp`: each start-up mistake is
 * named in the rejection and, without an event hook, printed once on stderr while it lasts.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import { createBearerAuthenticator, fromRequest, SsoError, type SsoEvent } from '@ssokit/core'
import { startIdp, type RunningIdp } from '@ssokit/idp'

import { captureStderr, closedPort } from '../stderr.js'

let idp: RunningIdp

before(async () => {
  idp = await startIdp({ port: 0, log: false })
})

after(async () => {
  await idp.close()
})

async function refusal(promise: Promise<void>): Promise<SsoError> {
  const error = await promise.then(
    () => assert.fail('ready() resolved'),
    (e: unknown) => e,
  )
  assert.ok(error instanceof SsoError)
  assert.equal(error.code, 'provider_unavailable')
  return error
}

describe('bearer ready()', () => {
  it('resolves once the keys are loaded', async () => {
    const events: SsoEvent[] = []
    const auth = createBearerAuthenticator({
      issuer: idp.issuer,
      clientId: 'demo-api',
      onEvent: (e) => events.push(e),
    })
    await auth.ready()
    assert.equal(events.find((e) => e.type === 'jwks_refreshed')?.count, 1)
  })

  it('names an issuer configured with a trailing slash the provider does not publish', async () => {
    const events: SsoEvent[] = []
    const auth = createBearerAuthenticator({
      issuer: `${idp.issuer}/`,
      clientId: 'demo-api',
      onEvent: (e) => events.push(e),
    })
    const error = await refusal(auth.ready())
    assert.match(
      error.message,
      /names the issuer "http:\/\/127\.0\.0\.1:\d+\/auth\/realms\/dev", not the configured "http:\/\/127\.0\.0\.1:\d+\/auth\/realms\/dev\/"\. They differ only by a trailing slash/,
    )
    const failed = events.find((e) => e.type === 'discovery_failed')
    assert.equal(failed?.reason, 'discovery_issuer_mismatch')
    assert.equal(failed.level, 'error')
  })

  it('names a wrong realm', async () => {
    const auth = createBearerAuthenticator({
      issuer: idp.issuer.replace(/dev$/, 'cern'),
      clientId: 'demo-api',
      onEvent: () => undefined,
    })
    const error = await refusal(auth.ready())
    assert.match(
      error.message,
      /\/realms\/cern\/\.well-known\/openid-configuration answered HTTP 404/,
    )
  })

  it('names a JWKS URL that answers 404', async () => {
    const events: SsoEvent[] = []
    const auth = createBearerAuthenticator({
      issuer: idp.issuer,
      clientId: 'demo-api',
      jwksUri: `${idp.issuer}/protocol/openid-connect/keys`,
      onEvent: (e) => events.push(e),
    })
    const error = await refusal(auth.ready())
    assert.match(error.message, /The key set http:\/\/.+\/openid-connect\/keys answered HTTP 404/)
    assert.equal(events.find((e) => e.type === 'jwks_refresh_failed')?.reason, 'jwks_http_404')
  })

  it('names a JWKS URL that is not a key set', async () => {
    const auth = createBearerAuthenticator({
      issuer: idp.issuer,
      clientId: 'demo-api',
      jwksUri: `${idp.issuer}/.well-known/openid-configuration`,
      onEvent: () => undefined,
    })
    const error = await refusal(auth.ready())
    assert.match(error.message, /is not a JWKS \(no "keys" list\)/)
  })

  it('prints an unreachable provider once, with no token, and its recovery', async () => {
    const port = await closedPort()
    const issuer = `http://127.0.0.1:${port}/auth/realms/dev`
    const auth = createBearerAuthenticator({ issuer, clientId: 'demo-api' })
    const token = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl'
    const stderr = captureStderr()
    let second: RunningIdp | undefined
    try {
      const error = await refusal(auth.ready())
      assert.match(error.message, /cannot be fetched \(ECONNREFUSED\)/)
      // Requests during the outage add nothing: the cause was printed.
      const request = fromRequest(
        new Request('http://api.test/', { headers: { authorization: `Bearer ${token}` } }),
      )
      await assert.rejects(auth.authenticate(request), { code: 'provider_unavailable' })
      await refusal(auth.ready())
      assert.equal(stderr.lines.length, 1, stderr.lines.join('\n'))
      assert.match(
        stderr.lines[0] ?? '',
        /^ssokit warn: The discovery document http:\/\/127\.0\.0\.1:\d+\/auth\/realms\/dev\/\.well-known\/openid-configuration cannot be fetched \(ECONNREFUSED\): is the provider reachable from here\? \[discovery_unreachable\]$/,
      )
      second = await startIdp({ port, log: false })
      // The failed attempt's back-off (at least 0.75 s) must pass before the next fetch.
      for (let i = 0; i < 40; i++) {
        const ok = await auth.ready().then(
          () => true,
          () => false,
        )
        if (ok) break
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
      await auth.ready()
      assert.equal(stderr.lines.length, 2, stderr.lines.join('\n'))
      assert.equal(stderr.lines[1], 'ssokit info: The provider keys can be loaded again.')
      for (const line of stderr.lines) assert.equal(line.includes(token), false)
    } finally {
      stderr.restore()
      await second?.close()
    }
  })
})
