/**
 * The fast path (own compact-JWS reading + node:crypto) against `jose.jwtVerify` with the same
 * options: over the security cases' token shapes and a generated corpus of mutated tokens, the two
 * must accept and refuse exactly the same tokens. One rule is ssokit's own (A22, H11): every
 * segment must be canonical unpadded base64url, which jose's decoding does not insist on, so the
 * reference applies that rule, written independently here, before asking jose.
 */
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { after, before, describe, test } from 'node:test'

import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose'

import type { SsoError } from '@ssokit/core'

import {
  checkAccessToken,
  type ClaimsPolicy,
  type TokenTypePolicy,
} from '../../src/verify/claims.js'
import {
  b64u,
  claims,
  CLIENT,
  ISSUER,
  JwksServer,
  outcome,
  NOW,
  signBytes,
  signCompact,
  testKey,
  testVerifier,
  T0,
} from './helpers.js'

const rsa = testKey('k1')
const rsa2 = testKey('k2')
const ec = testKey('ec1', 'ES256')
const ed = testKey('ed1', 'EdDSA')
const evil = testKey('k1-evil')
const algorithms = ['RS256', 'ES256', 'EdDSA', 'PS256']
const server = new JwksServer()
let jwks: JSONWebKeySet

before(async () => {
  await server.start()
  server.setKeys(rsa, ec, ed, { ...rsa2.jwk, kid: undefined, alg: 'PS256' })
  jwks = JSON.parse(server.body) as JSONWebKeySet
})
after(() => server.close())

const policy = (tokenType: TokenTypePolicy): ClaimsPolicy => ({
  issuer: ISSUER,
  clientId: CLIENT,
  audiences: [CLIENT],
  clockTolerance: 30,
  tokenType,
  acceptAnyTokenType: false,
})

/** Canonical unpadded base64url: what Node's own encoder writes for the bytes it decodes to. */
function canonical(token: string): boolean {
  const parts = token.split('.')
  return (
    parts.length === 3 &&
    parts.every(
      (part) =>
        /^[A-Za-z0-9_-]*$/.test(part) &&
        Buffer.from(part, 'base64url').toString('base64url') === part,
    )
  )
}

/** Whether jose alone accepts a token, with options equivalent to the fast path's. */
async function joseAccepts(token: string, tokenType: TokenTypePolicy = 'auto'): Promise<boolean> {
  try {
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), {
      issuer: ISSUER,
      audience: CLIENT,
      algorithms,
      clockTolerance: 30,
      currentDate: new Date(T0),
      requiredClaims: ['exp', 'iat'],
      // Only refuses an `iat` in the future, as ssokit does.
      maxTokenAge: Number.MAX_SAFE_INTEGER,
    })
    checkAccessToken(protectedHeader, payload, policy(tokenType))
    return true
  } catch {
    return false
  }
}

/** jose with equivalent options, the access-token rules jose has no option for, and A22. */
async function reference(token: string, tokenType: TokenTypePolicy): Promise<boolean> {
  return canonical(token) && (await joseAccepts(token, tokenType))
}

/** A small deterministic generator, so a failure can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
const keys = [rsa, ec, ed]
const header = (key = rsa, extra: Record<string, unknown> = {}) => ({
  alg: key.alg,
  typ: 'JWT',
  kid: key.kid,
  ...extra,
})

/** Token shapes of the security cases (A01-A24, A34, A35). */
function suiteTokens(): string[] {
  const out: string[] = []
  const good = signCompact(header(), claims(), rsa)
  const [h, p, s] = good.split('.') as [string, string, string]
  for (const alg of ['none', 'None', 'NONE']) {
    out.push(
      `${b64u(JSON.stringify({ alg, typ: 'JWT' }))}.${p}.`,
      `${b64u(JSON.stringify({ alg, typ: 'JWT' }))}.${p}.${s}`,
    )
  }
  const pem = rsa.publicKey.export({ format: 'pem', type: 'spki' }).toString()
  for (const secret of [pem, pem.trim(), String(rsa.jwk.n)]) {
    const hh = b64u(JSON.stringify({ alg: 'HS256', typ: 'JWT', kid: 'k1' }))
    out.push(`${hh}.${p}.${b64u(createHmac('sha256', secret).update(`${hh}.${p}`).digest())}`)
  }
  out.push(signCompact(header(testKey('rs384', 'RS384')), claims(), testKey('rs384', 'RS384')))
  out.push(signCompact(header(ec, { kid: 'k1' }), claims(), ec))
  out.push(`${h}.${p}.${s.slice(0, -2)}AA`, `${h}.${p}.${s.slice(0, -4)}`, `${h}.${p}.${s}AAAA`)
  for (const extra of [{ jwk: evil.jwk }, { jku: 'http://127.0.0.1:1/' }, { x5c: ['AAAA'] }]) {
    out.push(signCompact(header(rsa, extra), claims(), evil))
    out.push(signCompact(header(rsa, extra), claims(), rsa))
  }
  for (const kid of ['../../x', '', 1, null, {}, [], ['k1']])
    out.push(signCompact(header(rsa, { kid }), claims(), rsa))
  for (const crit of [['x'], ['exp'], [], ['b64'], 'b64', [1]])
    out.push(signCompact(header(rsa, { crit }), claims(), rsa))
  out.push(signCompact(header(rsa, { crit: ['b64'], b64: true }), claims(), rsa))
  out.push(signCompact(header(rsa, { crit: ['b64'], b64: false }), claims(), rsa))
  out.push(signCompact(header(rsa, { b64: false }), claims(), rsa))
  const raw = JSON.stringify(claims())
  const hb = b64u(JSON.stringify(header(rsa, { crit: ['b64'], b64: false })))
  out.push(`${hb}.${raw}.${b64u(signBytes(`${hb}.${raw}`, rsa))}`)
  out.push(`${h}.${p}.${s}.${s}.${s}`, `${h}.${p}`, `${h}.${p}.${s}.`)
  out.push(signCompact(header(rsa, { cty: 'JWT' }), b64u(good), rsa))
  for (const typ of ['ID', 'Refresh', 'Offline', 'Logout', undefined])
    out.push(signCompact(header(), claims({ typ }), rsa))
  for (const typ of ['at+jwt', 'application/at+jwt', 'logout+jwt']) {
    out.push(
      signCompact(header(rsa, { typ }), claims({ typ: undefined, client_id: 'c', jti: 'j' }), rsa),
    )
  }
  for (const aud of [undefined, 'other', [], [''], 123, null, 'account', ['other', CLIENT]]) {
    out.push(signCompact(header(), claims({ aud }), rsa))
  }
  for (const iss of [undefined, `${ISSUER}/`, ISSUER.toUpperCase(), null, [ISSUER]]) {
    out.push(signCompact(header(), claims({ iss }), rsa))
  }
  for (const time of [
    { exp: undefined },
    { exp: NOW },
    { exp: NOW - 30 },
    { exp: NOW - 29 },
    { exp: NOW - 31 },
    { nbf: NOW + 30 },
    { nbf: NOW + 31 },
    { iat: NOW + 30 },
    { iat: NOW + 31 },
    { exp: String(NOW + 60) },
    { exp: null },
    { nbf: null },
    { iat: '1' },
    { exp: NOW + 60.5 },
    { exp: 2 ** 40 },
    { iat: undefined },
    { sub: undefined },
    { sub: '' },
    { cnf: { jkt: 'x' } },
  ]) {
    out.push(signCompact(header(), claims(time), rsa))
  }
  for (const body of ['[]', '123', 'null', '"x"', '{}'])
    out.push(signCompact(header(), b64u(body), rsa))
  out.push(
    signCompact(
      header(),
      b64u(Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc0, 0xaf, 0x22, 0x7d])),
      rsa,
    ),
  )
  out.push(signCompact(header(), b64u(`{"sub":"x","sub":"alice",${raw.slice(1)}`), rsa))
  out.push(
    signCompact(
      header(),
      b64u(`{"__proto__":{"a":1},"constructor":{"prototype":{}},${raw.slice(1)}`),
      rsa,
    ),
  )
  out.push(signCompact(b64u(`{"__proto__":{"alg":"none"},"alg":"RS256","kid":"k1"}`), p, rsa))
  out.push(signCompact(header(rsa, { kid: undefined, alg: 'RS256' }), claims(), rsa))
  out.push(signCompact(header(rsa2, { kid: undefined, alg: 'PS256' }), claims(), rsa2, 'PS256'))
  out.push(signCompact(header(ec), claims(), ec), signCompact(header(ed), claims(), ed))
  out.push(signCompact(header(ed, { alg: 'Ed25519' }), claims(), ed, 'EdDSA'))
  out.push('', '.', '..', '...', 'a.b.c', '.'.repeat(100_000), 'x'.repeat(200_000))
  return out
}

/** Access tokens as providers other than Keycloak type them, and ID tokens beside them. */
function tokenTypeTokens(): string[] {
  const out: string[] = []
  const plain = { typ: undefined, cern_roles: undefined, resource_access: undefined }
  const shapes: Record<string, unknown>[] = [
    {},
    { scope: undefined },
    { scope: undefined, azp: undefined },
    { scope: undefined, azp: CLIENT },
    { aud: [CLIENT], scope: undefined, azp: undefined },
    { aud: [CLIENT, 'other'], scope: undefined, azp: undefined },
    { scope: undefined, scp: ['read'] },
    { scope: undefined, azp: undefined, cid: 'spa' },
    { scope: undefined, azp: undefined, appid: 'daemon' },
    { scope: undefined, azp: undefined, client_id: 'spa' },
    { nonce: 'n' },
    { at_hash: 'h' },
    { c_hash: 'h' },
    { s_hash: 'h' },
    { token_use: 'id' },
    { token_use: 'access' },
    { events: {} },
    { typ: 'ID' },
    { typ: 'Bearer', nonce: 'n' },
    { typ: 'ID', client_id: 'c', jti: 'j' },
    { client_id: 'c', jti: 'j' },
  ]
  for (const typ of [undefined, 'JWT', 'jwt', 'application/jwt', 'at+jwt', 'logout+jwt']) {
    for (const shape of shapes) {
      out.push(signCompact(header(rsa, { typ }), claims({ ...plain, ...shape }), rsa))
    }
  }
  return out
}

function flipChar(segment: string, rand: () => number): string {
  if (segment.length === 0) return 'A'
  const i = Math.floor(rand() * segment.length)
  let c = ALPHABET[Math.floor(rand() * 64)]!
  if (c === segment[i]) c = c === 'A' ? 'B' : 'A'
  return segment.slice(0, i) + c + segment.slice(i + 1)
}

const ODD = [
  '=',
  '==',
  ' ',
  '\t',
  '\n',
  '+',
  '/',
  '.',
  '!',
  '\u00e9',
  '\u0141',
  '\ud83d\ude00',
  '%',
  '*',
]

/** Mutations that keep the signature: each yields a token the provider "really signed". */
function signedMutations(rand: () => number, count: number): string[] {
  const out: string[] = []
  const headerVariants: Record<string, unknown>[] = [
    { typ: 'at+jwt' },
    { typ: 'jwt' },
    { typ: 123 },
    { cty: 'JWT' },
    { crit: ['b64'], b64: true },
    { crit: ['b64'], b64: 'false' },
    { crit: ['b64', 'b64'], b64: true },
    { b64: false },
    { kid: 'nope' },
    { kid: undefined },
    { alg: 'RS512' },
    { alg: 'rs256' },
    { enc: 'A128GCM' },
    { zip: 'DEF' },
  ]
  const claimVariants: Record<string, unknown>[] = [
    { exp: NOW - 30 + Math.floor(rand() * 3) - 1 },
    { nbf: NOW + 30 + Math.floor(rand() * 3) - 1 },
    { iat: NOW + 30 + Math.floor(rand() * 3) - 1 },
    { exp: NOW + 1e-9 - 30 },
    { exp: -1 },
    { exp: 1e300 },
    { aud: [CLIENT, 5] },
    { aud: { 0: CLIENT } },
    { iss: `${ISSUER} ` },
    { typ: 'Bearer ' },
    { client_id: 'c', jti: 'j', typ: undefined },
    { sub: ['a'] },
    { cnf: null },
    { typ: undefined },
    { typ: undefined, nonce: 'n' },
    { typ: undefined, scope: undefined, azp: undefined },
    { typ: undefined, scope: undefined, azp: CLIENT, aud: [CLIENT] },
  ]
  for (let i = 0; i < count; i++) {
    const key = keys[Math.floor(rand() * keys.length)]!
    const h = {
      ...header(key),
      ...(rand() < 0.4 ? headerVariants[Math.floor(rand() * headerVariants.length)] : {}),
    }
    const c = claims({
      jti: `m${i}`,
      ...(rand() < 0.5 ? claimVariants[Math.floor(rand() * claimVariants.length)] : {}),
    })
    let hs = b64u(JSON.stringify(h))
    let ps = b64u(JSON.stringify(c))
    const where = rand()
    if (where < 0.15) ps = `${ps}${ODD[Math.floor(rand() * ODD.length)]!}`
    else if (where < 0.3) hs = `${hs}${ODD[Math.floor(rand() * ODD.length)]!}`
    else if (where < 0.4) {
      const at = Math.floor(rand() * ps.length)
      ps = ps.slice(0, at) + ODD[Math.floor(rand() * ODD.length)]! + ps.slice(at)
    } else if (where < 0.45) ps = b64u(`\ufeff${JSON.stringify(c)}`)
    else if (where < 0.5)
      ps = b64u(
        Buffer.concat([
          Buffer.from(JSON.stringify(c).slice(0, -1)),
          Buffer.from([0x2c, 0x22, 0x78, 0x22, 0x3a, 0x22, 0xff, 0x22, 0x7d]),
        ]),
      )
    else if (where < 0.55) ps = b64u(`{"typ":"ID",${JSON.stringify(c).slice(1)}`)
    else if (where < 0.6) ps = b64u(`${JSON.stringify(c).slice(0, -1)},"typ":"ID"}`)
    else if (where < 0.65) ps = b64u(` \n${JSON.stringify(c)}\n `)
    const alg =
      typeof h.alg === 'string' && ['RS256', 'ES256', 'EdDSA'].includes(h.alg) ? h.alg : key.alg
    const input = `${hs}.${ps}`
    let sig: string
    try {
      sig = b64u(signBytes(input, key, alg === key.alg ? alg : key.alg))
    } catch {
      continue
    }
    if (rand() < 0.1) sig = `${sig}${rand() < 0.5 ? '=' : ' '}`
    out.push(`${input}.${sig}`)
  }
  return out
}

/** Mutations of valid tokens' characters, segments and lengths: nearly all must be refused. */
function unsignedMutations(base: string[], rand: () => number, count: number): string[] {
  const out: string[] = []
  for (let i = 0; i < count; i++) {
    const token = base[Math.floor(rand() * base.length)]!
    const parts = token.split('.')
    const kind = Math.floor(rand() * 9)
    const seg = Math.floor(rand() * 3)
    switch (kind) {
      case 0:
      case 1:
        parts[seg] = flipChar(parts[seg]!, rand)
        out.push(parts.join('.'))
        break
      case 2: {
        const bytes = Buffer.from(parts[seg]!, 'base64url')
        if (bytes.length > 0) {
          const at = Math.floor(rand() * bytes.length)
          bytes[at] = bytes[at]! ^ (1 << Math.floor(rand() * 8))
        }
        parts[seg] = b64u(bytes)
        out.push(parts.join('.'))
        break
      }
      case 3:
        out.push(token.slice(0, Math.floor(rand() * token.length)))
        break
      case 4: {
        const at = Math.floor(rand() * token.length)
        out.push(token.slice(0, at) + ODD[Math.floor(rand() * ODD.length)]! + token.slice(at))
        break
      }
      case 5:
        parts[seg] = `${parts[seg]!}=`
        out.push(parts.join('.'))
        break
      case 6: {
        const other = base[Math.floor(rand() * base.length)]!.split('.')
        parts[seg] = other[seg]!
        out.push(parts.join('.'))
        break
      }
      case 7:
        out.push(`${token}.${parts[Math.floor(rand() * 3)]!}`, parts.slice(0, 2).join('.'))
        break
      default:
        out.push(`${token}${'A'.repeat(Math.floor(rand() * 8))}`)
    }
  }
  return out
}

async function compare(
  tokens: string[],
  cacheSize: number,
  tokenType: TokenTypePolicy = 'auto',
): Promise<{ accepted: number; refused: number }> {
  const { verifier } = testVerifier(server, {
    algorithms,
    cacheSize,
    maxTokenLength: 1_048_576,
    tokenType,
  })
  let accepted = 0
  const mismatches: string[] = []
  for (const token of tokens) {
    const fast = await verifier.verify(token).then(
      () => true,
      (error: unknown) => {
        if (typeof (error as { code?: unknown }).code !== 'string') throw error
        return false
      },
    )
    const slow = await reference(token, tokenType)
    if (fast) accepted++
    if (fast !== slow) mismatches.push(`fast=${fast} jose=${slow} ${token.slice(0, 120)}`)
  }
  assert.deepEqual(mismatches, [])
  return { accepted, refused: tokens.length - accepted }
}

describe('fast path agrees with jose.jwtVerify', () => {
  test('over the security cases', async () => {
    const tokens = suiteTokens()
    const { accepted, refused } = await compare(tokens, 0)
    assert.ok(accepted >= 10 && refused >= 80, `${accepted} accepted, ${refused} refused`)
  })

  test("over access and ID tokens of other providers, under 'auto' and 'jwt'", async () => {
    const tokens = tokenTypeTokens()
    const auto = await compare(tokens, 0, 'auto')
    const jwt = await compare(tokens, 0, 'jwt')
    // 'jwt' accepts everything 'auto' does, and untyped access tokens besides.
    assert.ok(jwt.accepted > auto.accepted + 20, JSON.stringify({ auto, jwt }))
    assert.ok(jwt.refused >= 60, JSON.stringify(jwt))
    await compare([...tokens, ...tokens, ...tokens], 10_000, 'jwt')
  })

  test('over a generated corpus of mutated tokens', async () => {
    const rand = prng(20300101)
    const base = [
      ...keys.map((key) => signCompact(header(key), claims(), key)),
      signCompact(
        header(rsa, { typ: 'at+jwt' }),
        claims({ typ: undefined, client_id: 'c', jti: 'j' }),
        rsa,
      ),
    ]
    const signed = signedMutations(rand, 1200)
    const unsigned = unsignedMutations([...base, ...signed.slice(0, 200)], rand, 2400)
    const tokens = [...base, ...signed, ...unsigned]
    const first = await compare(tokens, 0)
    assert.ok(tokens.length >= 3000)
    assert.ok(first.accepted >= 250 && first.refused >= 2000, JSON.stringify(first))
    const jwt = await compare(tokens, 0, 'jwt')
    assert.ok(jwt.accepted > first.accepted, JSON.stringify(jwt))
    // With the verified-token cache on, answers are the same (each token three times: the cache
    // stores a token on its second verification and answers the third).
    const some = signed.slice(0, 300)
    const second = await compare([...some, ...some, ...some], 10_000)
    assert.ok(second.accepted > 0)
  })
})

describe('one spelling per token (A22)', () => {
  /** The last character with one of its unused low bits set: the same bytes, another string. */
  const lowBits = (segment: string) => {
    const i = ALPHABET.indexOf(segment.at(-1)!)
    return segment.slice(0, -1) + ALPHABET[i ^ (segment.length % 4 === 2 ? 0x08 : 0x01)]!
  }

  test('H11 a valid token with == appended or a changed-low-bits signature is refused, though jose takes it', async () => {
    // A signature whose length leaves unused bits (RSA-2048: 342 characters, 2 unused bits).
    const good = signCompact(header(), claims({ jti: 'h11' }), rsa)
    const [h, p, s] = good.split('.') as [string, string, string]
    assert.equal(s.length % 4, 2)
    const pad = (segment: string) => segment + '='.repeat((4 - (segment.length % 4)) % 4)
    const spellings = [`${good}==`, `${h}.${p}.${lowBits(s)}`]
    // The same signature bytes under both spellings.
    for (const token of spellings) {
      const signature = Buffer.from(token.split('.')[2]!.replace(/=+$/, ''), 'base64url')
      assert.ok(signature.equals(Buffer.from(s, 'base64url')))
    }
    // Padded header or payload segments, signed as they stand (the signature covers the text).
    const paddedHeader = pad(b64u(JSON.stringify({ ...header(), x: 1 })))
    const paddedClaims = pad(b64u(JSON.stringify(claims({ jti: 'h11-p', x: 12 }))))
    if (!paddedHeader.endsWith('=')) throw new Error('pick a header that needs padding')
    if (!paddedClaims.endsWith('=')) throw new Error('pick claims that need padding')
    spellings.push(
      signCompact(paddedHeader, claims(), rsa),
      signCompact(header(), paddedClaims, rsa),
    )
    const { verifier } = testVerifier(server, { algorithms, cacheSize: 10_000 })
    assert.equal(await outcome(verifier.verify(good)), 'ok')
    for (const token of spellings) {
      assert.equal(await joseAccepts(token), true, `jose takes ${token.slice(-8)}`)
      assert.equal(await outcome(verifier.verify(token)), 'token_invalid', token.slice(-8))
    }
    // The corpus comparison holds the fast path to the reference on them too.
    await compare([good, ...spellings], 0)
  })
})

describe('fast decoding and the header memo', () => {
  /** Re-encodes a segment's characters one by one: a base64url character for a look-alike. */
  const swap = (segment: string, from: string, to: string) => segment.split(from).join(to)

  test('non-canonical and look-alike encodings get the same answers as jose', async () => {
    const good = signCompact(header(), claims({ jti: 'enc' }), rsa)
    const [h, p, s] = good.split('.') as [string, string, string]
    const stray = (segment: string) => {
      // The last character of a 2- or 3-character group carries bits decoding drops: flipping
      // them gives a different string for the same bytes, which jose (atob) accepts.
      const last = segment.at(-1)!
      const i = ALPHABET.indexOf(last)
      return segment.slice(0, -1) + ALPHABET[i ^ 1]!
    }
    const tokens = [
      good,
      `${h}.${p}.${stray(s)}`,
      `${h}.${stray(p)}.${s}`,
      `${h}.${swap(p, '-', '+')}.${s}`,
      `${h}.${p}.${swap(swap(s, '-', '+'), '_', '/')}`,
      // A character outside Latin-1 whose low byte is a base64 letter ('Ł' is U+0141, 'A' 0x41).
      `${h}.${p}.${s.replace('A', '\u0141')}`,
      `${h}.${p.replace('A', '\u0141')}.${s}`,
      `${h}.${p}.${s.slice(0, 100)}\u0000${s.slice(100)}`,
      `${h}.${p}==.${s}`,
      `${h}.${p}.${s}==`,
      `${h}.${p}.${s} `,
      `${h}.\t${p}.${s}`,
    ]
    // Payloads whose bytes are not ASCII: valid UTF-8, a byte-order mark, invalid UTF-8.
    for (const body of [
      Buffer.from(JSON.stringify(claims({ name: 'Zoë Łukasiewicz 😀' }))),
      Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify(claims()))]),
      Buffer.from(JSON.stringify(claims({ name: 'x\u00ff' })), 'latin1'),
    ]) {
      tokens.push(signCompact(header(), b64u(body), rsa))
    }
    const { accepted } = await compare(tokens, 0)
    assert.ok(accepted >= 4, `${accepted} accepted`)
  })

  test('a remembered header lets no other signature, key or payload through', async () => {
    const h = header()
    const tokens = [
      signCompact(h, claims({ jti: 'm1' }), rsa),
      // Same header segment as the token just accepted, signed by another key.
      signCompact(h, claims({ jti: 'm2' }), evil),
      signCompact(h, claims({ jti: 'm3' }), rsa2),
      signCompact(h, claims({ jti: 'm4' }), rsa),
      // Same header, the payload of another token under this signature.
      (() => {
        const [hh, , ss] = signCompact(h, claims({ jti: 'm5' }), rsa).split('.')
        const [, pp] = signCompact(h, claims({ jti: 'm6', sub: 'root' }), rsa).split('.')
        return `${hh!}.${pp!}.${ss!}`
      })(),
      signCompact(h, claims({ jti: 'm7' }), rsa),
    ]
    for (const cacheSize of [0, 10_000]) {
      const { accepted, refused } = await compare(tokens, cacheSize)
      assert.equal(accepted, 3)
      assert.equal(refused, 3)
    }
  })

  test('a remembered header is checked against the key set as it is now', async () => {
    const own = await new JwksServer().start()
    try {
      own.setKeys(rsa)
      const { verifier, clock } = testVerifier(own, { algorithms, cacheSize: 0 })
      const first = signCompact(header(), claims({ jti: 'w1', exp: NOW + 7200 }), rsa)
      const second = signCompact(header(), claims({ jti: 'w2', exp: NOW + 7200 }), rsa)
      assert.equal(await outcome(verifier.verify(first)), 'ok')
      // The key is withdrawn; once the set is re-read, the same header finds no key.
      own.setKeys(rsa2)
      clock.advance(601)
      // The set is re-read in the background once past its maximum age; wait for it.
      await verifier.ready()
      assert.equal(await outcome(verifier.verify(second)), 'token_invalid')
      assert.equal(await outcome(verifier.verify(first)), 'token_invalid')
      // Published again: accepted again.
      own.setKeys(rsa)
      clock.advance(601)
      await verifier.ready()
      assert.equal(await outcome(verifier.verify(second)), 'ok')
    } finally {
      await own.close()
    }
  })

  test('tokens waiting for the key set keep their own bytes', async () => {
    // The decoding buffer is shared; tokens that wait for the first key fetch must not see the
    // bytes of tokens decoded after them.
    const own = await new JwksServer().start()
    try {
      own.setKeys(rsa, ec)
      let open = () => {}
      own.gate = new Promise<void>((resolve) => {
        open = resolve
      })
      const { verifier } = testVerifier(own, { algorithms, cacheSize: 0 })
      const cases: [string, string][] = []
      for (let i = 0; i < 20; i++) {
        const key = i % 2 === 0 ? rsa : ec
        cases.push([signCompact(header(key), claims({ jti: `c${i}`, sub: `u${i}` }), key), `u${i}`])
        if (i % 5 === 0) {
          const forged = signCompact(header(rsa), claims({ jti: `f${i}`, sub: 'root' }), evil)
          cases.push([forged, 'token_invalid'])
        }
      }
      const pending = cases.map(([token]) =>
        verifier.verify(token).then(
          (identity) => identity.subject,
          (error: unknown) => (error as SsoError).code,
        ),
      )
      open()
      assert.deepEqual(
        await Promise.all(pending),
        cases.map(([, expected]) => expected),
      )
      assert.equal(own.requests, 1)
    } finally {
      await own.close()
    }
  })
})
