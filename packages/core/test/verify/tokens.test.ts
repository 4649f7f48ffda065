import assert from 'node:assert/strict'
import { createHmac, sign } from 'node:crypto'
import { after, before, describe, test } from 'node:test'

import { createVerifier, SsoTypeError } from '@ssokit/core'

import {
  b64u,
  claims,
  CLIENT,
  ISSUER,
  JwksServer,
  NOW,
  outcome,
  signBytes,
  signCompact,
  testKey,
  testVerifier,
  token,
} from './helpers.js'

const k1 = testKey('k1')
const evil = testKey('k1-evil')
const ec = testKey('ec1', 'ES256')
const server = new JwksServer()

before(async () => {
  await server.start()
  server.setKeys(k1, ec)
})
after(() => server.close())

function v(options: Parameters<typeof testVerifier>[1] = {}) {
  return testVerifier(server, options)
}

const header = { alg: 'RS256', typ: 'JWT', kid: 'k1' }

describe('bearer token verification (A)', () => {
  test('a valid Keycloak-style token gives an identity', async () => {
    const { verifier } = v()
    const identity = await verifier.verify(token())
    assert.equal(identity.subject, 'alice')
    assert.equal(identity.username, 'alice')
    assert.equal(identity.email, 'alice@example.org')
    assert.equal(identity.kind, 'user')
    assert.equal(identity.via, 'bearer')
    assert.deepEqual([...identity.roles].sort(), ['admin', 'user'])
    assert.ok(Object.isFrozen(identity))
    assert.ok(Object.isFrozen(identity.claims))
    assert.ok(Object.isFrozen(identity.claims.resource_access))
    assert.throws(() => (identity.roles as Set<string>).add('root'), TypeError)
  })

  test('A01 alg none in any spelling', async () => {
    const { verifier } = v()
    const real = token().split('.')[2]!
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      for (const sig of ['', real]) {
        const t = `${b64u(JSON.stringify({ alg, typ: 'JWT', kid: 'k1' }))}.${b64u(JSON.stringify(claims()))}.${sig}`
        assert.equal(
          await outcome(verifier.verify(t)),
          'token_invalid',
          `${alg} ${sig === '' ? 'empty' : 'copied'}`,
        )
      }
    }
    // No alg at all.
    const t = `${b64u(JSON.stringify({ typ: 'JWT', kid: 'k1' }))}.${b64u(JSON.stringify(claims()))}.${real}`
    assert.equal(await outcome(verifier.verify(t)), 'token_invalid')
    for (const algorithms of [['none'], ['None'], []]) {
      assert.throws(
        () => createVerifier({ issuer: ISSUER, clientId: CLIENT, algorithms }),
        SsoTypeError,
      )
    }
  })

  test('A02 RS/HS algorithm confusion', async () => {
    const { verifier } = v({ algorithms: ['RS256'] })
    const pem = k1.publicKey.export({ format: 'pem', type: 'spki' }).toString()
    const der = k1.publicKey.export({ format: 'der', type: 'spki' })
    const secrets: (string | Buffer)[] = [
      pem,
      `\n${pem}`,
      pem.trim(),
      der,
      String(k1.jwk.n),
      JSON.stringify({ keys: [k1.jwk] }),
    ]
    for (const alg of ['HS256', 'HS384', 'HS512']) {
      for (const secret of secrets) {
        const h = b64u(JSON.stringify({ alg, typ: 'JWT', kid: 'k1' }))
        const p = b64u(JSON.stringify(claims()))
        const mac = createHmac(`sha${alg.slice(2)}`, secret)
          .update(`${h}.${p}`)
          .digest()
        assert.equal(await outcome(verifier.verify(`${h}.${p}.${b64u(mac)}`)), 'token_invalid')
      }
    }
    assert.throws(
      () => createVerifier({ issuer: ISSUER, clientId: CLIENT, algorithms: ['HS256'] }),
      SsoTypeError,
    )
    assert.throws(
      () => createVerifier({ issuer: ISSUER, clientId: CLIENT, algorithms: ['RS256', 'HS256'] }),
      SsoTypeError,
    )
  })

  test('A03 algorithm outside the allow-list', async () => {
    const rs384 = testKey('rs384', 'RS384')
    const ps256 = testKey('ps256', 'PS256')
    server.setKeys(k1, ec, rs384, ps256)
    try {
      const { verifier } = v()
      assert.equal(await outcome(verifier.verify(token({}, {}, rs384))), 'token_invalid')
      assert.equal(await outcome(verifier.verify(token({}, {}, ps256))), 'token_invalid')
      assert.equal(await outcome(verifier.verify(token({}, {}, ec))), 'token_invalid')
      const pinned = v({ algorithms: ['PS256'] }).verifier
      assert.equal(await outcome(pinned.verify(token())), 'token_invalid')
      assert.equal(await outcome(pinned.verify(token({}, {}, ps256))), 'ok')
      const wide = v({ algorithms: ['RS256', 'RS384', 'ES256'] }).verifier
      assert.equal(await outcome(wide.verify(token({}, {}, rs384))), 'ok')
      assert.equal(await outcome(wide.verify(token({}, {}, ec))), 'ok')
    } finally {
      server.setKeys(k1, ec)
    }
  })

  test('A04 key/algorithm mismatch inside the JWKS', async () => {
    const es384 = testKey('es384', 'ES384')
    const rsa = testKey('rsa-enc')
    const rsaOps = testKey('rsa-ops')
    const rsaAlg = testKey('rsa-alg')
    server.setKeys(
      k1,
      ec,
      { ...es384.jwk, kid: 'p384-as-es256', alg: undefined },
      { ...rsa.jwk, use: 'enc' },
      { ...rsaOps.jwk, key_ops: ['encrypt'] },
      { ...rsaAlg.jwk, alg: 'RS384' },
    )
    try {
      const { verifier } = v({ algorithms: ['RS256', 'ES256'] })
      // kid names an EC key but the header says RS256.
      assert.equal(await outcome(verifier.verify(token({}, { kid: 'ec1' }, k1))), 'token_invalid')
      // ES256 header, P-384 key.
      const p384 = signCompact({ alg: 'ES256', kid: 'p384-as-es256' }, claims(), es384, 'ES384')
      assert.equal(await outcome(verifier.verify(p384)), 'token_invalid')
      assert.equal(await outcome(verifier.verify(token({}, {}, rsa))), 'token_invalid')
      assert.equal(await outcome(verifier.verify(token({}, {}, rsaOps))), 'token_invalid')
      assert.equal(await outcome(verifier.verify(token({}, {}, rsaAlg))), 'token_invalid')
      assert.equal(await outcome(verifier.verify(token())), 'ok')
    } finally {
      server.setKeys(k1, ec)
    }
  })

  test('A05 tampered signature', async () => {
    const { verifier } = v()
    const good = token()
    const [h, p, s] = good.split('.') as [string, string, string]
    const sig = Buffer.from(s, 'base64url')
    const flipped = Buffer.from(sig)
    flipped[10] = flipped[10]! ^ 1
    const other = token({ sub: 'bob' }).split('.')[2]!
    for (const bad of [
      b64u(flipped),
      b64u(sig.subarray(0, 255)),
      b64u(Buffer.concat([sig, Buffer.from([0])])),
      b64u(createHmac('sha256', 'x').update('y').digest()),
      other,
      '',
    ]) {
      assert.equal(await outcome(verifier.verify(`${h}.${p}.${bad}`)), 'token_invalid')
    }
    assert.equal(await outcome(verifier.verify(good)), 'ok')
  })

  test('A06 ECDSA encoding edge cases', async () => {
    const { verifier } = v({ algorithms: ['ES256'] })
    const h = b64u(JSON.stringify({ alg: 'ES256', kid: 'ec1', typ: 'JWT' }))
    const p = b64u(JSON.stringify(claims()))
    const raw = signBytes(`${h}.${p}`, ec)
    const derSig = sign('sha256', Buffer.from(`${h}.${p}`), {
      key: ec.privateKey,
      dsaEncoding: 'der',
    })
    for (const bad of [
      Buffer.alloc(64),
      derSig,
      raw.subarray(0, 63),
      Buffer.concat([raw, Buffer.alloc(1)]),
    ]) {
      assert.equal(await outcome(verifier.verify(`${h}.${p}.${b64u(bad)}`)), 'token_invalid')
    }
    assert.equal(await outcome(verifier.verify(`${h}.${p}.${b64u(raw)}`)), 'ok')
  })

  test('A08 key material injected through the header', async () => {
    const before = server.requests
    const { verifier } = v()
    const attacker = new JwksServer()
    await attacker.start()
    attacker.setKeys({ ...evil.jwk, kid: 'k1' })
    try {
      const headers = [
        { jwk: { ...evil.jwk, kid: 'k1' } },
        { jku: attacker.url },
        { x5u: attacker.url },
        { x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] },
        { jku: attacker.url, kid: 'unknown-kid' },
      ]
      for (const extra of headers) {
        const t = signCompact({ alg: 'RS256', typ: 'JWT', kid: 'k1', ...extra }, claims(), evil)
        assert.equal(await outcome(verifier.verify(t)), 'token_invalid')
      }
      assert.equal(attacker.requests, 0, 'no request to jku/x5u')
      assert.ok(server.requests - before <= 2)
    } finally {
      await attacker.close()
    }
  })

  test('A09 kid injection', async () => {
    const { verifier } = v()
    for (const kid of [
      '../../../../dev/null',
      "' OR '1'='1",
      'x'.repeat(40_000),
      '',
      1,
      0,
      null,
      {},
      [],
      ['k1'],
      true,
    ]) {
      const t = signCompact({ alg: 'RS256', typ: 'JWT', kid }, claims(), k1)
      assert.equal(
        await outcome(verifier.verify(t)),
        'token_invalid',
        `kid ${JSON.stringify(kid).slice(0, 20)}`,
      )
    }
  })

  test('A10 crit header', async () => {
    const { verifier } = v()
    for (const crit of [['urn:x-unknown'], ['exp'], [], ['kid'], ['b64'], [1], [''], 'b64', null]) {
      const t = token({}, { crit })
      assert.equal(await outcome(verifier.verify(t)), 'token_invalid', JSON.stringify(crit))
    }
    // b64 understood and true: an ordinary token (as jose).
    assert.equal(await outcome(verifier.verify(token({}, { crit: ['b64'], b64: true }))), 'ok')
  })

  test('A11 unencoded payload b64:false', async () => {
    const { verifier } = v()
    const h = b64u(JSON.stringify({ ...header, b64: false, crit: ['b64'] }))
    const raw = JSON.stringify(claims())
    const t = `${h}.${raw}.${b64u(signBytes(`${h}.${raw}`, k1))}`
    assert.equal(await outcome(verifier.verify(t)), 'token_invalid')
    const encoded = signCompact({ ...header, b64: false, crit: ['b64'] }, claims(), k1)
    assert.equal(await outcome(verifier.verify(encoded)), 'token_invalid')
    // b64:false without crit is ignored.
    assert.equal(await outcome(verifier.verify(token({}, { b64: false }))), 'ok')
  })

  test('A12 JWE or nested JWT presented as bearer', async () => {
    const { verifier } = v()
    const jwe = `${b64u(JSON.stringify({ alg: 'RSA-OAEP', enc: 'A256GCM', kid: 'k1' }))}.${b64u('k')}.${b64u('iv')}.${b64u('ct')}.${b64u('tag')}`
    assert.equal(await outcome(verifier.verify(jwe)), 'token_invalid')
    const nested = signCompact({ alg: 'RS256', kid: 'k1', cty: 'JWT' }, b64u(token()), k1)
    assert.equal(await outcome(verifier.verify(nested)), 'token_invalid')
  })

  test('A13 a different kind of JWT presented as an access token', async () => {
    const { verifier } = v()
    for (const typ of ['ID', 'Refresh', 'Offline', 'Logout', 'bearer', 'JWT', '']) {
      assert.equal(await outcome(verifier.verify(token({ typ }))), 'token_invalid', typ)
    }
    // No type at all (an oidc-provider ID token): refused.
    assert.equal(await outcome(verifier.verify(token({ typ: undefined }))), 'token_invalid')
    for (const typ of ['logout+jwt', 'secevent+jwt', 'dpop+jwt', 'session+jwt']) {
      assert.equal(await outcome(verifier.verify(token({}, { typ }))), 'token_invalid', typ)
    }
    // RFC 9068: header at+jwt with client_id and jti.
    const rfc = { typ: undefined, client_id: 'demo-app', jti: 'j' }
    for (const typ of ['at+jwt', 'application/at+jwt', 'AT+JWT']) {
      assert.equal(await outcome(verifier.verify(token(rfc, { typ }))), 'ok', typ)
    }
    assert.equal(
      await outcome(verifier.verify(token({ ...rfc, typ: 'ID' }, { typ: 'at+jwt' }))),
      'token_invalid',
    )
    // Policies.
    assert.equal(
      await outcome(v({ tokenType: 'at+jwt' }).verifier.verify(token())),
      'token_invalid',
    )
    assert.equal(
      await outcome(v({ tokenType: 'Bearer' }).verifier.verify(token(rfc, { typ: 'at+jwt' }))),
      'token_invalid',
    )
    const relaxed = v({ expert: { acceptAnyTokenType: true } }).verifier
    assert.equal(await outcome(relaxed.verify(token({ typ: 'ID' }))), 'ok')
  })

  test('A14 audience not enforced or enforced loosely', async () => {
    const { verifier } = v()
    for (const aud of [
      undefined,
      'other-api',
      [],
      [''],
      123,
      null,
      'account',
      ['account'],
      `${CLIENT} `,
      CLIENT.toUpperCase(),
    ]) {
      assert.equal(
        await outcome(verifier.verify(token({ aud, azp: CLIENT }))),
        'audience_mismatch',
        JSON.stringify(aud),
      )
    }
    assert.equal(await outcome(verifier.verify(token({ aud: ['other', CLIENT] }))), 'ok')
  })

  test('A15 issuer mismatch', async () => {
    const { verifier } = v()
    for (const iss of [
      undefined,
      'https://evil.example.org/auth/realms/test',
      `${ISSUER}/`,
      ISSUER.toUpperCase(),
      ISSUER.replace('https:', 'http:'),
      ['x', ISSUER],
      null,
    ]) {
      assert.equal(await outcome(verifier.verify(token({ iss }))), 'token_invalid', String(iss))
    }
  })

  test('A16 key/issuer binding with several trusted issuers', async () => {
    const realmB = new JwksServer()
    await realmB.start()
    const bKey = testKey('realm-b')
    realmB.setKeys(bKey)
    try {
      const a = v().verifier
      const b = createVerifier({
        issuer: 'https://sso.example.org/auth/realms/b',
        clientId: CLIENT,
        jwksUri: realmB.url,
        expert: { now: () => NOW * 1000 },
      })
      // iss = A, signed with B's key.
      assert.equal(await outcome(a.verify(token({}, {}, bKey))), 'token_invalid')
      // iss = B, kid only in A.
      const bIss = { iss: 'https://sso.example.org/auth/realms/b' }
      assert.equal(await outcome(b.verify(token(bIss))), 'token_invalid')
      assert.equal(await outcome(b.verify(token(bIss, {}, bKey))), 'ok')
    } finally {
      await realmB.close()
    }
  })

  test('A17 fail-open configuration', () => {
    for (const clientId of ['', '   ', '*', undefined, null, 5]) {
      assert.throws(
        () => createVerifier({ issuer: ISSUER, clientId: clientId as string }),
        (e: unknown) => e instanceof SsoTypeError && e.code === 'ERR_MISSING_OPTION',
      )
    }
    for (const issuer of [
      '',
      '*',
      undefined,
      'not a url',
      'http://sso.example.org/realms/x',
      'ftp://x',
    ]) {
      assert.throws(() => createVerifier({ issuer: issuer as string, clientId: CLIENT }), TypeError)
    }
    assert.throws(
      () => createVerifier({ issuer: ISSUER, clientId: CLIENT, algorithms: [] }),
      TypeError,
    )
    assert.throws(
      () => createVerifier({ issuer: ISSUER, clientId: CLIENT, clockTolerance: -1 }),
      TypeError,
    )
    assert.throws(
      () => createVerifier({ issuer: ISSUER, clientId: CLIENT, jwksUri: 'http://x.example/certs' }),
      TypeError,
    )
    // http is fine on loopback and with the loud expert switch.
    createVerifier({ issuer: 'http://127.0.0.1:4000/auth/realms/dev', clientId: CLIENT })
    createVerifier({
      issuer: 'http://idp.internal/realms/x',
      clientId: CLIENT,
      expert: { allowInsecureHttp: true },
    })
  })

  test('A18 no exp', async () => {
    const { verifier } = v()
    assert.equal(await outcome(verifier.verify(token({ exp: undefined }))), 'token_invalid')
  })

  test('A19 time boundaries', async () => {
    const L = 30
    const at = (c: Record<string, unknown>) => v().verifier.verify(token(c))
    // exp = now is inside the leeway; with no leeway it has expired (jose: exp <= now - L).
    assert.equal(await outcome(at({ exp: NOW })), 'ok')
    assert.equal(
      await outcome(v({ clockTolerance: 0 }).verifier.verify(token({ exp: NOW }))),
      'token_expired',
    )
    assert.equal(await outcome(at({ exp: NOW - L })), 'token_expired')
    assert.equal(await outcome(at({ exp: NOW - L + 1 })), 'ok')
    assert.equal(await outcome(at({ exp: NOW - L - 1 })), 'token_expired')
    assert.equal(await outcome(at({ nbf: NOW + L })), 'ok')
    assert.equal(await outcome(at({ nbf: NOW + L + 1 })), 'token_expired')
    assert.equal(await outcome(at({ iat: NOW + L })), 'ok')
    assert.equal(await outcome(at({ iat: NOW + L + 1 })), 'token_expired')
    for (const bad of [
      { exp: String(NOW + 60) },
      { exp: null },
      { nbf: String(NOW) },
      { nbf: null },
      { iat: String(NOW) },
      { iat: null },
    ]) {
      assert.equal(await outcome(at(bad)), 'token_invalid', JSON.stringify(bad))
    }
    assert.equal(await outcome(at({ exp: NOW + 60.5 })), 'ok')
    assert.equal(await outcome(at({ exp: 2 ** 40 })), 'ok')
  })

  test('A20 required claims', async () => {
    const { verifier } = v()
    for (const bad of [{ sub: undefined }, { sub: '' }, { sub: 42 }, { iat: undefined }]) {
      assert.equal(await outcome(verifier.verify(token(bad))), 'token_invalid', JSON.stringify(bad))
    }
    // RFC 9068 profile: client_id and jti are required too.
    const rfc = { typ: undefined, client_id: 'demo-app', jti: 'j' }
    for (const bad of [
      { client_id: undefined },
      { jti: undefined },
      { client_id: 5 },
      { jti: 7 },
    ]) {
      assert.equal(
        await outcome(verifier.verify(token({ ...rfc, ...bad }, { typ: 'at+jwt' }))),
        'token_invalid',
      )
    }
    // Keycloak profile: azp instead of client_id, no jti needed.
    assert.equal(await outcome(verifier.verify(token({ jti: undefined }))), 'ok')
  })

  test('A21 role matching is exact (verifier side)', async () => {
    const { verifier } = v()
    const id = await verifier.verify(
      token({ cern_roles: ['admin-readonly'], scope: 'admins read:admin' }),
    )
    assert.equal(id.roles.has('admin'), false)
    const str = await verifier.verify(
      token({ cern_roles: 'admin', resource_access: { other: { roles: ['admin'] } } }),
    )
    assert.equal(str.roles.has('admin'), false)
    const fromClient = await verifier.verify(
      token({ cern_roles: undefined, resource_access: { [CLIENT]: { roles: ['admin'] } } }),
    )
    assert.deepEqual([...fromClient.roles], ['admin'])
    const realm = await v({ roles: 'realm_access.roles' }).verifier.verify(
      token({ realm_access: { roles: ['ops'] } }),
    )
    assert.deepEqual([...realm.roles], ['ops'])
    const scope = await v({ roles: 'scope' }).verifier.verify(token({ scope: 'read  write' }))
    assert.deepEqual([...scope.roles], ['read', 'write'])
    const fn = await v({
      roles: (c) => (Array.isArray(c.groups) ? (c.groups as string[]) : []),
    }).verifier.verify(token({ groups: ['g1', 5] }))
    assert.deepEqual([...fn.roles], ['g1'])
  })

  test('A22 malformed JOSE', async () => {
    const { verifier } = v()
    const [h, p, s] = token().split('.') as [string, string, string]
    const bad = [
      `${h}.${p}`,
      `${h}.${p}.${s}.${s}`,
      `${h}.${p}.${s}!`,
      `${h}.${p}=.${s}`,
      `${h}.${p.slice(0, 10)} ${p.slice(10)}.${s}`,
      `${b64u('[]')}.${p}.${s}`,
      `${b64u('"x"')}.${p}.${s}`,
      signCompact(header, b64u('[]'), k1),
      signCompact(header, b64u('123'), k1),
      signCompact(header, b64u('null'), k1),
      signCompact(
        header,
        b64u(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d])),
        k1,
      ),
      '',
      '..',
      'a.b.c',
    ]
    for (const t of bad)
      assert.equal(await outcome(verifier.verify(t)), 'token_invalid', t.slice(0, 40))
    // Duplicate names: one parse, the last wins, and what was checked is what is used.
    const dup = `{"sub":"alice","sub":"admin",${JSON.stringify(claims({ sub: undefined })).slice(1)}`
    const identity = await verifier.verify(signCompact(header, b64u(dup), k1))
    assert.equal(identity.subject, 'admin')
    assert.equal(identity.claims.sub, 'admin')
    const dupAud = `{"aud":"${CLIENT}","aud":"other",${JSON.stringify(claims({ aud: undefined })).slice(1)}`
    assert.equal(
      await outcome(verifier.verify(signCompact(header, b64u(dupAud), k1))),
      'audience_mismatch',
    )
  })

  test('A23 prototype-pollution keys', async () => {
    const { verifier } = v()
    const payload = `{"__proto__":{"admin":true,"roles":["admin"]},"constructor":{"prototype":{"polluted":true}},${JSON.stringify(
      claims({ cern_roles: undefined, resource_access: undefined }),
    ).slice(
      1,
      -1,
    )},"resource_access":{"__proto__":{"roles":["admin"]},"${CLIENT}":{"__proto__":{"roles":["root"]}}}}`
    const hdr = b64u(`{"__proto__":{"kid":"k1"},"alg":"RS256","typ":"JWT","kid":"k1"}`)
    const t = signCompact(hdr, b64u(payload), k1)
    const identity = await verifier.verify(t)
    assert.equal(({} as Record<string, unknown>).admin, undefined)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
    assert.equal(({} as Record<string, unknown>).roles, undefined)
    assert.equal(identity.roles.size, 0)
    for (const roles of [
      'constructor.prototype',
      '__proto__.roles',
      'resource_access.__proto__.roles',
    ]) {
      assert.throws(() => v({ roles }), TypeError, roles)
    }
    const viaPath = await v({ roles: `resource_access.${CLIENT}.roles` }).verifier.verify(t)
    assert.equal(viaPath.roles.size, 0)
  })

  test('A24 oversized input', async () => {
    const { verifier } = v()
    assert.equal(await outcome(verifier.verify('.'.repeat(1_000_000))), 'token_too_large')
    assert.equal(await outcome(verifier.verify('a'.repeat(100 * 1024))), 'token_too_large')
    const big = await outcome(
      verifier.verify(
        token({ aud: [...Array.from({ length: 10_000 }, (_, i) => `a${i}`), CLIENT] }),
      ),
    )
    assert.equal(big, 'token_too_large')
    const roomy = v({ maxTokenLength: 400_000 }).verifier
    const deep = `{"deep":${'['.repeat(100_000)}${']'.repeat(100_000)},${JSON.stringify(claims()).slice(1)}`
    const nested = await roomy.verify(signCompact(header, b64u(deep), k1))
    assert.ok(Object.isFrozen(nested.claims.deep))
    assert.equal(
      await outcome(
        roomy.verify(
          token({ aud: [...Array.from({ length: 10_000 }, (_, i) => `a${i}`), CLIENT] }),
        ),
      ),
      'ok',
    )
  })

  test('H03 a signed token of 60 kB is verified; past maxTokenLength it is token_too_large, not token_invalid', async () => {
    const { verifier } = v()
    const roles = Array.from(
      { length: 2300 },
      (_, i) => `group-${String(i).padStart(4, '0')}-member`,
    )
    const large = token({ cern_roles: roles })
    assert.ok(large.length > 50_000 && large.length <= 65_536, `${large.length} characters`)
    const identity = await verifier.verify(large)
    assert.equal(identity.roles.size, roles.length)
    const tooLarge = token({ cern_roles: [...roles, ...roles] })
    const error = await verifier.verify(tooLarge).then(
      () => assert.fail('accepted'),
      (e: unknown) => e as { code: string; status: number },
    )
    assert.deepEqual(
      { code: error.code, status: error.status },
      { code: 'token_too_large', status: 431 },
    )
    // The limit is an option, for providers that issue even bigger tokens.
    assert.equal(await outcome(v({ maxTokenLength: 200_000 }).verifier.verify(tooLarge)), 'ok')
  })

  test('A29 error oracle: the signature is checked before claims', async () => {
    const { verifier, events } = v()
    const forged = token({ exp: NOW - 3600, aud: 'other' }, { kid: 'k1' }, evil)
    const error = await verifier.verify(forged).then(
      () => assert.fail('accepted'),
      (e: unknown) => e as { code: string; message: string },
    )
    assert.equal(error.code, 'token_invalid')
    assert.match(error.message, /signature/)
    assert.equal(events.at(-1)?.reason, 'signature')
  })

  test('A31 verified-token cache reused under another policy', async () => {
    const a = v().verifier
    const b = v({ issuer: ISSUER, clientId: 'other-api' }).verifier
    const t = token({ exp: NOW + 60 })
    assert.equal(await outcome(a.verify(t)), 'ok')
    assert.equal(await outcome(a.verify(t)), 'ok')
    assert.equal(await outcome(b.verify(t)), 'audience_mismatch')
    // Entries never outlive exp: the cached answer follows the same clock rules as a fresh one.
    const { verifier, clock } = v()
    const fresh = v({}).verifier
    assert.equal(await outcome(verifier.verify(t)), 'ok')
    clock.advance(60 + 29)
    assert.equal(await outcome(verifier.verify(t)), 'ok')
    clock.advance(1)
    assert.equal(await outcome(verifier.verify(t)), 'token_expired')
    clock.advance(-1)
    assert.equal(await outcome(verifier.verify(t)), 'ok', 'same answer as a fresh verification')
    assert.equal(await outcome(fresh.verify(t)), 'ok')
    // A failed token is never cached as valid.
    const bad = token({ aud: 'other' })
    assert.equal(await outcome(verifier.verify(bad)), 'audience_mismatch')
    assert.equal(await outcome(verifier.verify(bad)), 'audience_mismatch')
  })

  test('A35 sender-constrained tokens are refused as bearer tokens', async () => {
    const { verifier } = v()
    assert.equal(await outcome(verifier.verify(token({ cnf: { jkt: 'abc' } }))), 'token_invalid')
    assert.equal(
      await outcome(verifier.verify(token({ cnf: { 'x5t#S256': 'abc' } }))),
      'token_invalid',
    )
  })

  test('A36 the identity carries no token to forward', async () => {
    const t = token()
    const identity = await v().verifier.verify(t)
    assert.equal('token' in identity, false)
    assert.equal(JSON.stringify(identity).includes(t.split('.')[2]!), false)
    for (const value of Object.values(identity)) assert.notEqual(value, t)
  })

  test('A37 tokens never reach events or error messages', async () => {
    const { verifier, events } = v()
    const tokens = [
      token({ aud: 'x' }),
      token({}, {}, evil),
      token({ exp: NOW - 999 }),
      token({ typ: 'ID' }),
      token({}, { kid: 'nope' }),
      `${token().slice(0, -3)}abc`,
    ]
    const messages: string[] = []
    for (const t of tokens) {
      await verifier
        .verify(t)
        .catch((e: unknown) => messages.push((e as Error).message, String((e as Error).stack)))
    }
    const text = JSON.stringify(events) + messages.join('\n')
    assert.ok(events.length >= tokens.length)
    for (const t of tokens) {
      const [, p, s] = t.split('.') as [string, string, string]
      assert.equal(text.includes(t), false)
      assert.equal(text.includes(s), false)
      assert.equal(text.includes(p), false)
    }
    assert.ok(events.some((e) => e.kid === 'k1' && e.iss === ISSUER && e.jti === 'jti-1'))
  })

  test('service accounts are services', async () => {
    const { verifier } = v()
    const sa = await verifier.verify(
      token({ sub: 'service-account-demo-app', preferred_username: 'service-account-demo-app' }),
    )
    assert.equal(sa.kind, 'service')
    const rfc = await verifier.verify(
      token({ sub: 'demo-app', client_id: 'demo-app', typ: undefined }, { typ: 'at+jwt' }),
    )
    assert.equal(rfc.kind, 'service')
    const cern = await verifier.verify(token({ preferred_username: undefined, cern_upn: 'jdoe' }))
    assert.equal(cern.username, 'jdoe')
  })

  test('configuration is frozen', async () => {
    const algorithms = ['RS256']
    const options = {
      issuer: ISSUER,
      clientId: CLIENT,
      jwksUri: server.url,
      algorithms,
      expert: { now: () => NOW * 1000 },
    }
    const verifier = createVerifier(options)
    algorithms.push('ES256')
    options.clientId = 'other-api'
    assert.ok(Object.isFrozen(verifier))
    assert.equal(verifier.clientId, CLIENT)
    assert.equal(await outcome(verifier.verify(token({}, {}, ec))), 'token_invalid')
    assert.equal(await outcome(verifier.verify(token())), 'ok')
  })
})
