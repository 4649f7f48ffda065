/**
 * The signed identity assertion's reuse: one signature serves the same identity for the first
 * part of its lifetime, never another identity, and never once the reuse window has passed.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Identity } from '@ssokit/core'
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose'
import {
  ASSERTION_LIFETIME_S,
  ASSERTION_REUSE_S,
  ASSERTION_TYPE,
  createAssertionSigner,
} from '../src/assertion.js'

const ISSUER = 'https://proxy.example'
const AUDIENCE = 'http://127.0.0.1:8000'

function identity(overrides: Partial<Identity> = {}): Identity {
  return {
    subject: 'alice-sub',
    username: 'alice',
    email: 'alice@example.org',
    name: 'Alice',
    roles: new Set(['admin', 'user']),
    kind: 'user',
    via: 'bearer',
    claims: {},
    ...overrides,
  }
}

describe('signed identity assertion', () => {
  it('reuses one assertion for the same identity while it has most of its lifetime left', async () => {
    let ms = 1_800_000_000_000
    const signer = await createAssertionSigner(ISSUER, AUDIENCE, undefined, () => ms)
    const first = await signer.sign(identity())
    // A different object with the same claims is the same identity.
    assert.equal(await signer.sign(identity()), first)
    ms += (ASSERTION_REUSE_S - 1) * 1000
    assert.equal(await signer.sign(identity()), first)
    ms += 1000
    const second = await signer.sign(identity())
    assert.notEqual(second, first)
    const { exp, iat } = decodeJwt(second)
    assert.equal(iat, Math.floor(ms / 1000))
    assert.equal(exp, Math.floor(ms / 1000) + ASSERTION_LIFETIME_S)
    assert.ok(ASSERTION_LIFETIME_S - ASSERTION_REUSE_S >= 45)
  })

  it('signs anew for any change of the claims it carries', async () => {
    const signer = await createAssertionSigner(ISSUER, AUDIENCE, undefined, () => 1_800_000_000_000)
    const base = await signer.sign(identity())
    const changed = [
      identity({ subject: 'bob-sub' }),
      identity({ username: 'alice2' }),
      identity({ email: 'other@example.org' }),
      identity({ email: undefined }),
      identity({ name: 'Alicia' }),
      identity({ roles: new Set(['admin']) }),
      identity({ roles: new Set(['admin', 'user', 'extra']) }),
      identity({ via: 'session' }),
    ]
    const jwts = new Set([base])
    for (const other of changed) {
      const jwt = await signer.sign(other)
      assert.notEqual(jwt, base)
      jwts.add(jwt)
    }
    assert.equal(jwts.size, changed.length + 1)
    assert.equal(decodeJwt(await signer.sign(identity({ subject: 'bob-sub' }))).sub, 'bob-sub')
  })

  it('carries exactly the identity, verifiable with the published keys', async () => {
    const signer = await createAssertionSigner(ISSUER, AUDIENCE)
    const jwt = await signer.sign(identity())
    const { payload, protectedHeader } = await jwtVerify(
      jwt,
      createLocalJWKSet({ keys: [...signer.jwks.keys] }),
      {
        issuer: ISSUER,
        audience: AUDIENCE,
        typ: ASSERTION_TYPE,
      },
    )
    assert.equal(protectedHeader.alg, 'ES256')
    assert.equal(protectedHeader.kid, signer.jwks.keys[0]?.kid)
    assert.equal(payload.sub, 'alice-sub')
    assert.equal(payload.username, 'alice')
    assert.deepEqual(payload.roles, ['admin', 'user'])
    assert.equal(typeof payload.jti, 'string')
  })
})
