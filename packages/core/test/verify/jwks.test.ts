import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, test } from 'node:test'

import { createVerifier, type SsoError } from '@ssokit/core'

import {
  b64u,
  Clock,
  CLIENT,
  ISSUER,
  JwksServer,
  NOW,
  outcome,
  testKey,
  testVerifier,
  token,
} from './helpers.js'

const k1 = testKey('k1')
const k2 = testKey('k2')
const servers: JwksServer[] = []

async function jwksServer(...keys: Parameters<JwksServer['setKeys']>): Promise<JwksServer> {
  const server = await new JwksServer().start()
  server.setKeys(...keys)
  servers.push(server)
  return server
}

before(() => {
  testKey('weak', 'weak')
})
after(async () => {
  await Promise.all(servers.map((s) => s.close()))
})

describe('signing keys (A, O)', () => {
  test('A07 weak key published', async () => {
    const weak = testKey('weak', 'weak')
    const server = await jwksServer(k1, weak)
    const { verifier, events } = testVerifier(server)
    assert.equal(await outcome(verifier.verify(token({}, {}, weak))), 'token_invalid')
    assert.equal(await outcome(verifier.verify(token({}, {}, weak))), 'token_invalid')
    assert.equal(await outcome(verifier.verify(token())), 'ok')
    const warnings = events.filter((e) => e.reason === 'weak_key')
    assert.equal(warnings.length, 1)
    assert.equal(warnings[0]?.level, 'warn')
    assert.equal(warnings[0].kid, 'weak')
    assert.equal(server.requests, 1, 'a known unusable kid causes no refetch')
  })

  test('A32 unknown kid flood', async () => {
    // Unknown kids are refused before any signature check, so one signature serves every token.
    const [, payload, signature] = token().split('.') as [string, string, string]
    const randomKid = () =>
      `${b64u(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: randomUUID() }))}.${payload}.${signature}`
    const server = await jwksServer(k1)
    const { verifier, clock } = testVerifier(server, { cacheSize: 0 })
    assert.equal(await outcome(verifier.verify(token())), 'ok')
    assert.equal(server.requests, 1)
    clock.advance(31)
    const outcomes = await Promise.all(
      Array.from({ length: 10_000 }, () => outcome(verifier.verify(randomKid()))),
    )
    assert.ok(outcomes.every((o) => o === 'token_invalid'))
    assert.equal(server.requests, 2, 'one refetch, shared by all')
    assert.equal(await outcome(verifier.verify(token())), 'ok')
    // Still within the cooldown: no more fetches.
    clock.advance(28)
    await Promise.all(Array.from({ length: 100 }, () => outcome(verifier.verify(randomKid()))))
    assert.equal(server.requests, 2)
    clock.advance(2)
    await Promise.all(Array.from({ length: 100 }, () => outcome(verifier.verify(randomKid()))))
    assert.equal(server.requests, 3)
    assert.equal(await outcome(verifier.verify(token())), 'ok')
  })

  test('A33 legitimate signing-key rotation', async () => {
    const server = await jwksServer(k1)
    const { verifier, clock } = testVerifier(server)
    assert.equal(await outcome(verifier.verify(token())), 'ok')
    // The new key signs a while after the keys were read (at least one cooldown).
    clock.advance(31)
    server.setKeys(k1, k2)
    assert.equal(await outcome(verifier.verify(token({}, {}, k2))), 'ok')
    assert.equal(server.requests, 2, 'exactly one refetch')
    assert.equal(await outcome(verifier.verify(token({ jti: 'other' }))), 'ok')
    assert.equal(server.requests, 2)
  })

  test('A34 no kid in the header', async () => {
    const single = await jwksServer({ ...k1.jwk, kid: undefined })
    assert.equal(
      await outcome(testVerifier(single).verifier.verify(token({}, { kid: undefined }))),
      'ok',
    )
    const withKid = await jwksServer(k1)
    assert.equal(
      await outcome(testVerifier(withKid).verifier.verify(token({}, { kid: undefined }))),
      'ok',
    )
    // Keycloak also publishes an encryption key: not a candidate for signatures.
    const encToo = await jwksServer(k1, { ...k2.jwk, use: 'enc', alg: 'RSA-OAEP' })
    assert.equal(
      await outcome(testVerifier(encToo).verifier.verify(token({}, { kid: undefined }))),
      'ok',
    )
    const several = await jwksServer(k1, k2)
    const { verifier } = testVerifier(several)
    assert.equal(await outcome(verifier.verify(token({}, { kid: undefined }))), 'token_invalid')
    assert.equal(await outcome(verifier.verify(token({}, { kid: undefined }, k2))), 'token_invalid')
  })

  test('O01 provider down at startup', async () => {
    const server = await jwksServer(k1)
    server.status = 503
    server.body = 'down'
    const { verifier, clock } = testVerifier(server)
    const error = (await verifier.verify(token()).catch((e: unknown) => e)) as SsoError
    assert.equal(error.code, 'provider_unavailable')
    assert.equal(error.status, 503)
    assert.ok(typeof error.retryAfter === 'number' && error.retryAfter >= 1)
    assert.equal(await outcome(verifier.ready()), 'provider_unavailable')
    // Backing off: no fetch storm while the provider is down.
    const before = server.requests
    await Promise.all(Array.from({ length: 50 }, () => outcome(verifier.verify(token()))))
    assert.equal(server.requests, before)
    // Back-off grows from about a second; the provider returns, no restart needed.
    server.setKeys(k1)
    clock.advance(2)
    assert.equal(await outcome(verifier.ready()), 'ok')
    assert.equal(await outcome(verifier.verify(token())), 'ok')
  })

  test('O01 discovery: lazy, exact issuer, clear failure', async () => {
    const server = await jwksServer(k1)
    const discovery = await new JwksServer().start()
    servers.push(discovery)
    const issuer = discovery.url.replace(/\/certs$/, '/realms/x')
    discovery.body = JSON.stringify({ issuer, jwks_uri: server.url })
    const clock = new Clock()
    const good = createVerifier({ issuer, clientId: CLIENT, expert: { now: clock.now } })
    assert.equal(discovery.requests, 0, 'nothing fetched at construction')
    assert.equal(await outcome(good.verify(token({ iss: issuer }))), 'ok')
    assert.equal(discovery.requests, 1)
    discovery.body = JSON.stringify({ issuer: `${issuer}/`, jwks_uri: server.url })
    const events: string[] = []
    const bad = createVerifier({
      issuer,
      clientId: CLIENT,
      onEvent: (e) => events.push(`${e.level}:${e.reason ?? ''}`),
      expert: { now: clock.now },
    })
    assert.equal(await outcome(bad.verify(token({ iss: issuer }))), 'provider_unavailable')
    assert.ok(events.includes('error:discovery_issuer_mismatch'))
  })

  test('O02 provider unreachable at runtime', async () => {
    const server = await jwksServer(k1)
    const { verifier, clock } = testVerifier(server)
    assert.equal(await outcome(verifier.verify(token())), 'ok')
    await server.close()
    // Cached keys keep working, also past the maximum age (stale-if-error).
    clock.advance(11 * 60)
    assert.equal(
      await outcome(verifier.verify(token({ jti: 'a', iat: NOW + 600, exp: NOW + 1200 }))),
      'ok',
    )
    // Unknown kid with the provider down: 503, not 401, never 200.
    clock.advance(60)
    const error = (await verifier
      .verify(token({ iat: NOW + 600, exp: NOW + 1200 }, {}, k2))
      .catch((e: unknown) => e)) as SsoError
    assert.equal(error.code, 'provider_unavailable')
    assert.ok((error.retryAfter ?? 0) >= 1)
    // After the stale-if-error bound (24 h) the old keys are dropped: 503.
    clock.advance(24 * 3600)
    const late = { iat: NOW + 24 * 3600 + 700, exp: NOW + 24 * 3600 + 1200 }
    assert.equal(await outcome(verifier.verify(token(late))), 'provider_unavailable')
  })

  test('O03 bad JWKS content', async () => {
    const server = await jwksServer(k1)
    const { verifier, clock } = testVerifier(server)
    assert.equal(await outcome(verifier.verify(token())), 'ok')
    const bodies: [number, string, string][] = [
      [500, 'application/json', JSON.stringify({ keys: [k2.jwk] })],
      [200, 'text/html', '<html>maintenance</html>'],
      [200, 'application/json', '{"keys":[]}'],
      [200, 'application/json', '{"keys":[{"kty":'],
      [200, 'application/json', '{"keys":{}}'],
      [
        200,
        'application/json',
        JSON.stringify({ keys: [{ kty: 'AKP', alg: 'ML-DSA-44', pub: 'xx', kid: 'pq' }] }),
      ],
      [
        200,
        'application/json',
        JSON.stringify({ keys: [{ kty: 'RSA', kid: 'broken', n: '!!', e: 'AQAB' }] }),
      ],
    ]
    let n = 0
    for (const [status, type, body] of bodies) {
      server.status = status
      server.contentType = type
      server.body = body
      clock.advance(11 * 60)
      const t = token({ jti: `t${n++}`, iat: clock.ms / 1000, exp: clock.ms / 1000 + 300 })
      assert.equal(
        await outcome(verifier.verify(t)),
        'ok',
        `cached key survives ${status} ${body.slice(0, 20)}`,
      )
    }
    // Unusable keys are skipped one by one; the good one still verifies.
    const mixed = await jwksServer(
      { kty: 'AKP', alg: 'ML-DSA-44', pub: 'xx', kid: 'pq' },
      { kty: 'RSA', kid: 'broken', n: '!!', e: 'AQAB' },
      { kty: 'EC', crv: 'P-256', kid: 'bad-ec', x: 'AA', y: 'AA' },
      { ...k1.jwk, d: 'private' },
      'not a key' as unknown as Record<string, unknown>,
      k2,
    )
    const fresh = testVerifier(mixed)
    assert.equal(await outcome(fresh.verifier.verify(token({}, {}, k2))), 'ok')
    assert.ok(fresh.events.filter((e) => e.type === 'jwks_key_skipped').length >= 4)
    // Two keys with the same kid: 401 for that kid only.
    const dup = await jwksServer(k1, { ...k2.jwk, kid: 'k1' }, k2)
    const d = testVerifier(dup).verifier
    assert.equal(await outcome(d.verify(token())), 'token_invalid')
    assert.equal(await outcome(d.verify(token({}, {}, k2))), 'ok')
  })

  test('O04 key withdrawn from the JWKS', async () => {
    const server = await jwksServer(k1, k2)
    const { verifier, clock } = testVerifier(server)
    const t = token({ exp: NOW + 3600 })
    assert.equal(await outcome(verifier.verify(t)), 'ok')
    server.setKeys(k2)
    clock.advance(5 * 60)
    assert.equal(
      await outcome(verifier.verify(t)),
      'ok',
      'within the maximum age the cached set is used',
    )
    clock.advance(5 * 60 + 1)
    // Past the maximum age the set is re-read in the background (H02); once it is in, the
    // withdrawn key and its cached verifications are gone.
    await verifier.ready()
    assert.equal(
      await outcome(verifier.verify(t)),
      'token_invalid',
      'the cached verification is dropped too',
    )
    assert.equal(await outcome(verifier.verify(token({ exp: NOW + 3600 }, {}, k2))), 'ok')
  })

  test('H02 a JWKS endpoint that accepts and never answers delays no request the keys can answer', async () => {
    const server = await jwksServer(k1)
    const { verifier, clock } = testVerifier(server, { jwks: { timeout: 1 } })
    const cached = token({ exp: NOW + 7200 })
    assert.equal(await outcome(verifier.verify(cached)), 'ok')
    assert.equal(server.requests, 1)
    // From now on the endpoint takes connections and never answers.
    server.gate = new Promise<void>(() => undefined)
    clock.advance(11 * 60)
    const waited = (ms: number) =>
      new Promise<string>((resolve) => {
        setTimeout(() => {
          resolve('waited')
        }, ms).unref()
      })
    // Stale-while-revalidate: valid tokens, cached or new, are answered from the keys at hand
    // while one refresh runs in the background (the fetch timeout is 1 s).
    const fresh = token({ jti: 'new', iat: NOW + 600, exp: NOW + 7200 })
    assert.equal(await Promise.race([outcome(verifier.verify(cached)), waited(500)]), 'ok')
    assert.equal(await Promise.race([outcome(verifier.verify(fresh)), waited(500)]), 'ok')
    // Unknown kids join the fetch in flight instead of starting their own.
    const unknown = Array.from({ length: 20 }, (_, i) =>
      outcome(verifier.verify(token({ jti: `u${i}`, iat: NOW + 600, exp: NOW + 7200 }, {}, k2))),
    )
    // The attempt hangs for a minute of the (fake) clock: longer than cooldown and back-off.
    clock.advance(60)
    assert.deepEqual(new Set(await Promise.all(unknown)), new Set(['provider_unavailable']))
    assert.equal(server.requests, 2, 'one fetch in flight at a time')
    // Back-off counts from the end of the attempt, so the next unknown kid does not refetch.
    const late = token({ jti: 'late', iat: NOW + 660, exp: NOW + 7200 }, {}, k2)
    assert.equal(
      await Promise.race([outcome(verifier.verify(late)), waited(500)]),
      'provider_unavailable',
    )
    assert.equal(server.requests, 2)
    assert.equal(await outcome(verifier.verify(cached)), 'ok')
  })

  test('O12 clock skew on the verifying host', async () => {
    const server = await jwksServer(k1)
    for (const skew of [-120, 120, -3600, 3600]) {
      const clock = new Clock()
      clock.advance(skew)
      const { verifier, events } = testVerifier(server, {}, clock)
      // Freshly issued at the provider's "now" (NOW), 5 minutes of life.
      const t = token({ iat: NOW, exp: NOW + 300 })
      const expected = skew === 120 ? 'ok' : 'token_expired'
      assert.equal(await outcome(verifier.verify(t)), expected, `skew ${skew}`)
      if (skew < 0) {
        assert.equal(
          await outcome(verifier.verify(token({ iat: NOW, exp: NOW + 300, jti: 'x' }))),
          'token_expired',
        )
        assert.equal(
          events.filter((e) => e.type === 'clock_skew').length,
          1,
          'warning is rate-limited',
        )
      }
    }
    // Within the tolerance, accepted.
    const clock = new Clock()
    clock.advance(-29)
    assert.equal(
      await outcome(testVerifier(server, {}, clock).verifier.verify(token({ iat: NOW }))),
      'ok',
    )
  })

  test('JWKS request failures of every kind give 503 with Retry-After, not 500', async () => {
    const server = await jwksServer(k1)
    server.gate = new Promise(() => undefined)
    const { verifier } = testVerifier(server, { jwks: { timeout: 0.2 } })
    const error = (await verifier.verify(token()).catch((e: unknown) => e)) as SsoError
    assert.equal(error.code, 'provider_unavailable')
    const wrongIssuer = createVerifier({
      issuer: ISSUER,
      clientId: CLIENT,
      jwksUri: 'http://127.0.0.1:1/certs',
    })
    assert.equal(await outcome(wrongIssuer.verify(token())), 'provider_unavailable')
  })
})
