import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { createBearerAuthenticator, createVerifier, type RequestLike } from '@ssokit/core'

import { TokenCache } from '../../src/verify/lru.js'
import {
  b64u,
  claims,
  Clock,
  CLIENT,
  ISSUER,
  JwksServer,
  NOW,
  outcome,
  signCompact,
  testKey,
  token,
} from './helpers.js'

/** Distinct strings of one length whose last characters differ. */
function tokens(count: number, prefix = 't'): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}.${String(i).padStart(12, '0')}`)
}

describe('verified-token cache', () => {
  test('never holds more than its capacity, and drops the oldest first', () => {
    const cache = new TokenCache<number>(4)
    const all = tokens(10)
    all.forEach((t, i) => {
      cache.set(t, i)
      assert.ok(cache.size <= 4)
    })
    assert.equal(cache.size, 4)
    all.forEach((t, i) => {
      assert.equal(cache.get(t), i >= 6 ? i : undefined, t)
    })
  })

  test('keeps an entry while it is hit, and drops it only after max/2 insertions without a hit', () => {
    const max = 16
    const cache = new TokenCache<string>(max)
    const hot = 'hot.token.value'
    cache.set(hot, 'hot')
    // A hit at every insertion: the hot entry survives many times the capacity.
    for (const t of tokens(20 * max)) {
      cache.set(t, t)
      assert.equal(cache.get(hot), 'hot')
    }
    // A hit now and then: whatever the spacing up to max/2, it stays.
    const spaced = tokens(40 * max, 's')
    for (let i = 0; i < spaced.length; i++) {
      cache.set(spaced[i] as string, 'x')
      if (i % (max / 2) === 0) assert.equal(cache.get(hot), 'hot', `insertion ${i}`)
    }
    // Without hits it goes within `max` insertions, like any other entry.
    const cold = tokens(max, 'c')
    for (const t of cold) cache.set(t, t)
    assert.equal(cache.get(hot), undefined)
    assert.equal(cache.size, max)
  })

  test('matches a random workload against a model: bounded, and recently used entries stay', () => {
    const max = 8
    const cache = new TokenCache<string>(max)
    const pool = tokens(24)
    // Sets and hits of other tokens since each token was set or last hit (at least the moves the
    // cache made meanwhile); absent = not cached in the model.
    const since = new Map<string, number>()
    const touch = (t: string) => {
      for (const [k, v] of since) since.set(k, v + 1)
      since.set(t, 0)
    }
    let seed = 7
    const random = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff
      return seed % n
    }
    for (let step = 0; step < 5000; step++) {
      const t = pool[random(pool.length)] as string
      if (random(3) === 0) {
        cache.set(t, t)
        touch(t)
      } else {
        const value = cache.get(t)
        // Never another token's value.
        if (value !== undefined) assert.equal(value, t)
        const age = since.get(t)
        if (age !== undefined && age <= max / 2) assert.equal(value, t, `step ${step}`)
        if (value !== undefined) touch(t)
        else since.delete(t)
      }
      assert.ok(cache.size <= max)
    }
  })

  test('tokens sharing their last characters never answer for each other', () => {
    const cache = new TokenCache<string>(100)
    const tail = '.same-tail-of-the-signature'
    const a = `aaaa${tail}`
    const b = `bbbb${tail}`
    cache.set(a, 'a')
    assert.equal(cache.get(b), undefined)
    cache.set(b, 'b')
    assert.equal(cache.get(b), 'b')
    assert.notEqual(cache.get(a), 'b')
    cache.delete(a)
    assert.equal(cache.get(b), 'b', 'deleting one token leaves the other')
    cache.delete(b)
    assert.equal(cache.get(b), undefined)
  })

  test('admits a token on its second sighting within the window only', () => {
    const max = 8
    const cache = new TokenCache<number>(max)
    const [t, ...others] = tokens(1 + 4 * max)
    assert.equal(cache.admit(t as string), false, 'first sighting')
    assert.equal(cache.admit(t as string), true, 'second sighting')
    // Seen once, then fewer than max/2 other first sightings: still remembered.
    const u = 'u.remembered.token'
    assert.equal(cache.admit(u), false)
    for (const o of others.slice(0, max / 2 - 1)) assert.equal(cache.admit(o), false)
    assert.equal(cache.admit(u), true)
    // Seen once, then `max` other first sightings: forgotten, a first sighting again.
    const w = 'w.forgotten.token'
    assert.equal(cache.admit(w), false)
    for (const o of others.slice(max, 2 * max)) assert.equal(cache.admit(o), false)
    assert.equal(cache.admit(w), false)
    assert.equal(cache.size, 0, 'admitting stores nothing by itself')
    assert.equal(new TokenCache<number>(0).admit('a.b.c'), false)
  })

  test('a capacity of 0 stores nothing', () => {
    const cache = new TokenCache<number>(0)
    cache.set('a.b.c', 1)
    assert.equal(cache.get('a.b.c'), undefined)
    assert.equal(cache.size, 0)
  })
})

describe('cached verifications through the bearer authenticator', () => {
  const k1 = testKey('k1')
  const server = new JwksServer()
  before(async () => {
    await server.start()
    server.setKeys(k1)
  })
  after(() => server.close())

  function request(authorization: string): RequestLike {
    return {
      method: 'GET',
      url: '/api',
      header: (name) => (name === 'authorization' ? [authorization] : []),
    }
  }

  function setup() {
    const clock = new Clock()
    const verifier = createVerifier({
      issuer: ISSUER,
      clientId: CLIENT,
      jwksUri: server.url,
      expert: { now: clock.now },
    })
    return { clock, verifier, auth: createBearerAuthenticator(verifier) }
  }

  test('a token sharing a cached token signature, with other claims, is refused', async () => {
    const { auth, verifier } = setup()
    const good = token()
    const [header, , signature] = good.split('.') as [string, string, string]
    // Same length and same signature: only the full comparison tells them apart.
    const forged = `${header}.${b64u(JSON.stringify(claims({ sub: 'bob00' })))}.${signature}`
    assert.equal(forged.length, good.length)
    for (let round = 0; round < 3; round++) {
      const identity = await auth.authenticate(request(`Bearer ${good}`))
      assert.equal(identity.subject, 'alice')
      assert.equal(await outcome(auth.authenticate(request(`Bearer ${forged}`))), 'token_invalid')
      assert.equal(await outcome(verifier.verify(forged)), 'token_invalid')
    }
  })

  test('a cached token stops working at exp plus the tolerance on the injected clock', async () => {
    const { auth, clock } = setup()
    const t = token({ exp: NOW + 60 })
    const ask = () => outcome(auth.authenticate(request(`Bearer ${t}`)))
    assert.equal(await ask(), 'ok')
    // Within the last second of validity, twice: the second answer comes from the cache.
    clock.ms += (60 + 29) * 1000 + 500
    assert.equal(await ask(), 'ok')
    assert.equal(await ask(), 'ok')
    clock.ms += 500
    assert.equal(await ask(), 'token_expired')
    assert.equal(await ask(), 'token_expired')
  })

  test('a cached token whose key is withdrawn is refused once the key set is re-read', async () => {
    const { auth, clock, verifier } = setup()
    const t = token({ exp: NOW + 7200 })
    assert.equal(await outcome(auth.authenticate(request(`Bearer ${t}`))), 'ok')
    server.setKeys(testKey('k2'))
    try {
      assert.equal(await outcome(auth.authenticate(request(`Bearer ${t}`))), 'ok')
      clock.advance(601)
      // Re-read in the background once past the maximum age (H02); wait for it.
      await verifier.ready()
      assert.equal(await outcome(auth.authenticate(request(`Bearer ${t}`))), 'token_invalid')
    } finally {
      server.setKeys(k1)
    }
  })

  test('a token is stored on its second verification, and a hit answers the same identity', async () => {
    const { auth, verifier } = setup()
    const t = token({ exp: NOW + 3600, email: 'alice@example.org', cern_roles: ['admin'] })
    const first = await verifier.verify(t)
    const second = await verifier.verify(t)
    assert.notEqual(first, second, 'the first verification stored nothing')
    const third = await auth.authenticate(request(`Bearer ${t}`))
    const fourth = await verifier.verify(t)
    assert.equal(third, fourth, 'answered from the cache')
    assert.notEqual(third, second)
    for (const identity of [third, fourth]) {
      assert.equal(identity.subject, first.subject)
      assert.equal(identity.email, 'alice@example.org')
      assert.deepEqual([...identity.roles], ['admin'])
      assert.equal(identity.kind, first.kind)
      assert.deepEqual(identity.claims, first.claims)
      assert.ok(Object.isFrozen(identity.claims))
      assert.ok(Object.isFrozen(identity.claims.cern_roles))
      assert.equal(identity.claims, identity.claims, 'decoded once')
      assert.equal(JSON.stringify(identity), JSON.stringify(first))
    }
  })

  test('a padded token is refused by the verifier (H11) and stays a 400 for the authenticator', async () => {
    const { auth, verifier } = setup()
    // A padded header segment: jose decodes it, RFC 6750 syntax does not allow "=" there.
    let headerJson = JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: 'k1' })
    if (b64u(headerJson).length % 4 === 0) headerJson += ' '
    const encoded = b64u(headerJson)
    const padded = encoded + '='.repeat((4 - (encoded.length % 4)) % 4)
    const odd = signCompact(padded, claims(), k1)
    assert.equal(await outcome(verifier.verify(odd)), 'token_invalid')
    assert.equal(await outcome(verifier.verify(odd)), 'token_invalid')
    assert.equal(await outcome(auth.authenticate(request(`Bearer ${odd}`))), 'invalid_request')
  })
})
