/**
 * The signed identity assertion's reuse: one signature serves the same identity for the first
 * part of its lifetime, never another identity, and never once the reuse window has passed.
 */
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Identity } from '@ssokit/core'
import { loadProxyConfig, ProxyConfigError } from '@ssokit/proxy'
import { calculateJwkThumbprint, createLocalJWKSet, decodeJwt, jwtVerify, type JWK } from 'jose'
import {
  ASSERTION_LIFETIME_S,
  ASSERTION_REUSE_S,
  ASSERTION_TYPE,
  createAssertionSigner,
} from '../src/assertion.js'
import { headerOf, serviceToken, startRig, type Rig } from './support.js'

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

describe('--assertion-key-file', () => {
  let dir: string
  const files: Record<string, string> = {}
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const publicJwk = ec.publicKey.export({ format: 'jwk' })

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-assertion-key-'))
    const write = async (name: string, content: string | Buffer) => {
      files[name] = join(dir, name)
      await writeFile(files[name], content)
    }
    await write('pkcs8.pem', ec.privateKey.export({ type: 'pkcs8', format: 'pem' }))
    await write('sec1.pem', ec.privateKey.export({ type: 'sec1', format: 'pem' }))
    await write('key.jwk', JSON.stringify(ec.privateKey.export({ format: 'jwk' })))
    await write('public.jwk', JSON.stringify(publicJwk))
    await write('public.pem', ec.publicKey.export({ type: 'spki', format: 'pem' }))
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey
    await write('p384.pem', p384.export({ type: 'pkcs8', format: 'pem' }))
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
    await write('rsa.pem', rsa.export({ type: 'pkcs8', format: 'pem' }))
    await write('garbage.pem', 'not a key\n')
  })
  after(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  const load = (flags: Record<string, string>, env: Record<string, string> = {}) =>
    loadProxyConfig({
      flags: {
        upstream: 'http://127.0.0.1:8000',
        issuer: 'https://auth.example.org/realms/main',
        'client-id': 'my-app',
        'public-url': 'https://my-app.example',
        ...flags,
      },
      env: { OIDC_CLIENT_SECRET: 'secret', ...env },
    })

  it('reads a PEM (PKCS #8 or SEC 1) or JWK EC P-256 private key, kid = its RFC 7638 thumbprint', async () => {
    const kid = await calculateJwkThumbprint(publicJwk)
    for (const name of ['pkcs8.pem', 'sec1.pem', 'key.jwk']) {
      const config = await load({ 'assertion-key-file': files[name] ?? '' })
      assert.equal(config.assertionKey?.kid, kid, name)
    }
    const fromEnv = await load({}, { SSOKIT_ASSERTION_KEY_FILE: files['pkcs8.pem'] ?? '' })
    assert.equal(fromEnv.assertionKey?.kid, kid)
    assert.equal((await load({})).assertionKey, undefined)
  })

  it('refuses anything else at start-up, naming the setting', async () => {
    const cases: [string, RegExp][] = [
      ['public.jwk', /^--assertion-key-file: ".*public\.jwk" holds no private key/],
      ['public.pem', /^--assertion-key-file: ".*public\.pem" holds no private key/],
      ['garbage.pem', /^--assertion-key-file: ".*garbage\.pem" holds no private key/],
      ['p384.pem', /^--assertion-key-file: ".*p384\.pem" is not an EC P-256 key/],
      ['rsa.pem', /^--assertion-key-file: ".*rsa\.pem" is not an EC P-256 key/],
      ['missing.pem', /^--assertion-key-file: cannot read ".*missing\.pem" \(ENOENT\)$/],
    ]
    for (const [name, message] of cases) {
      const error = await load({ 'assertion-key-file': files[name] ?? join(dir, name) }).then(
        () => assert.fail(`${name} was accepted`),
        (e: unknown) => e,
      )
      assert.ok(error instanceof ProxyConfigError, String(error))
      assert.equal(error.key, '--assertion-key-file')
      assert.match(error.message, message)
      assert.doesNotMatch(error.message, /\n/)
    }
  })

  it('lets two proxies with the same key file publish one key and verify each other', async () => {
    const rigs: Rig[] = []
    try {
      for (let i = 0; i < 2; i++) {
        rigs.push(await startRig({ flags: { 'assertion-key-file': files['pkcs8.pem'] ?? '' } }))
      }
      const [one, two] = rigs as [Rig, Rig]
      const jwks = async (rig: Rig) =>
        (await (await fetch(`${rig.base}/_ssokit/jwks`)).json()) as { keys: JWK[] }
      const published = await jwks(one)
      assert.deepEqual(await jwks(two), published)
      const [key, ...others] = published.keys
      assert.ok(key)
      assert.equal(others.length, 0)
      assert.equal(key.kid, await calculateJwkThumbprint(publicJwk))
      assert.equal(key.d, undefined)
      const token = await serviceToken(one.idp.issuer)
      const response = await fetch(`${one.base}/app`, {
        headers: { authorization: `Bearer ${token}` },
      })
      assert.equal(response.status, 200)
      const [assertion] = headerOf(one.echo.received.at(-1) ?? assert.fail(), 'x-ssokit-assertion')
      assert.ok(assertion)
      await jwtVerify(assertion, createLocalJWKSet(await jwks(two)), {
        issuer: one.base,
        typ: ASSERTION_TYPE,
      })
    } finally {
      await Promise.all(rigs.map((rig) => rig.close()))
    }
  })
})
