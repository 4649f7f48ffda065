import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { describe, it } from 'node:test'

import {
  createSessionAuth,
  fromRequest,
  loadSessionConfig,
  safeReturnTo,
  SsoError,
  SsoTypeError,
  type SessionAuthOptions,
} from '@ssokit/core'

import { cookieValue, parseCookies } from '../../src/session/cookies.js'
import { IdentityCache } from '../../src/session/identity-cache.js'
import { escapeHtml, renderPage } from '../../src/session/pages.js'
import { decodeRecord, encodeRecord, type SessionRecord } from '../../src/session/record.js'
import { Keyring, safeEqual } from '../../src/session/seal.js'

const SECRET = 'a'.repeat(32)
const OTHER = 'b'.repeat(32)

const base: SessionAuthOptions = {
  issuer: 'http://127.0.0.1:9/auth/realms/dev',
  clientId: 'demo-app',
  clientSecret: 'demo-app-secret',
  publicUrl: 'https://app.example.org',
  secret: SECRET,
  bearer: false,
}

function request(path: string, headers: Record<string, string> = {}, method = 'GET') {
  return fromRequest(new Request(`https://app.example.org${path}`, { method, headers }))
}

describe('return URL validation', () => {
  const hostile = [
    'https://evil.example',
    '//evil.example',
    '///evil.example',
    '/\\evil.example',
    '\\/evil.example',
    '/\t/evil.example',
    '/%09/evil.example',
    '/ /evil.example',
    '/\n/evil.example',
    '/\r\\evil.example',
    '/./\\evil.example',
    '/./../../\\evil.example',
    '/.//evil.example',
    '/%2F/evil.example',
    '/%5Cevil.example',
    'https:evil.example',
    'javascript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'https://app.example.org@evil.example',
    'https://app.example.org.evil.example',
    'evil.example',
    '',
    `/${'a'.repeat(4096)}`,
    '/caf\u00e9',
    '/%E0%A4%A',
  ]
  it('B19 open redirect vectors fall back to /', () => {
    for (const vector of hostile) assert.equal(safeReturnTo(vector), '/', JSON.stringify(vector))
    assert.equal(safeReturnTo(undefined), '/')
    assert.equal(safeReturnTo(null), '/')
  })
  it('B19 same-origin paths are kept', () => {
    assert.equal(safeReturnTo('/'), '/')
    assert.equal(safeReturnTo('/admin'), '/admin')
    assert.equal(safeReturnTo('/a/b?x=1&y=%2F#top'), '/a/b?x=1&y=%2F#top')
    assert.equal(safeReturnTo('/files/my%20doc'), '/files/my%20doc')
  })
})

describe('cookie sealing', () => {
  it('seals and opens a transaction, refuses another purpose, expiry and tampering', async () => {
    const ring = new Keyring([SECRET])
    const sealed = await ring.seal({ s: 'state' }, 'tx', 1000, 1600)
    assert.equal((await ring.open(sealed, 'tx', 1200))?.s, 'state')
    assert.equal(await ring.open(sealed, 'other', 1200), undefined)
    assert.equal(await ring.open(sealed, 'tx', 1700), undefined)
    const tampered = sealed.slice(0, -3) + (sealed.endsWith('AAA') ? 'BBB' : 'AAA')
    assert.equal(await ring.open(tampered, 'tx', 1200), undefined)
    assert.equal(await ring.open('not a jwe', 'tx', 1200), undefined)
    assert.equal(await ring.open('x'.repeat(100_000), 'tx', 1200), undefined)
  })

  it('O11 rotation: the first secret seals, every listed secret opens, a removed one does not', async () => {
    const old = new Keyring([OTHER])
    const rotated = new Keyring([SECRET, OTHER])
    const retired = new Keyring([SECRET])
    const sealed = await old.seal({ s: 1 }, 'tx', 1000, 1600)
    const signed = old.sign('session-id', 'session')
    assert.equal((await rotated.open(sealed, 'tx', 1100))?.s, 1)
    assert.equal(rotated.verify(signed, 'session'), 'session-id')
    assert.equal(await retired.open(sealed, 'tx', 1100), undefined)
    assert.equal(retired.verify(signed, 'session'), undefined)
    const fresh = rotated.sign('id2', 'session')
    assert.equal(retired.verify(fresh, 'session'), 'id2')
  })

  it('B25 signed values refuse wrong keys, truncation, garbage and other purposes', () => {
    const ring = new Keyring([SECRET])
    const signed = ring.sign('abc', 'session')
    assert.equal(ring.verify(signed, 'session'), 'abc')
    assert.equal(ring.verify(signed, 'login'), undefined)
    assert.equal(ring.verify(signed.slice(0, -2), 'session'), undefined)
    assert.equal(ring.verify('abc', 'session'), undefined)
    assert.equal(ring.verify('.', 'session'), undefined)
    assert.equal(ring.verify('abc.!!!!', 'session'), undefined)
    assert.equal(ring.verify(`${'x'.repeat(600)}.abc`, 'session'), undefined)
    assert.equal(new Keyring([OTHER]).verify(signed, 'session'), undefined)
    const mac = signed.slice(signed.indexOf('.') + 1)
    assert.equal(mac.length, 43)
    // The same bytes spelled otherwise (other trailing bits, a non-ASCII look-alike) do not pass.
    const last = mac.at(-1)!
    const sibling = String.fromCharCode(last.charCodeAt(0) ^ 1)
    assert.equal(ring.verify(`abc.${mac.slice(0, -1)}${sibling}`, 'session'), undefined)
    assert.equal(ring.verify(`abc.${mac.slice(0, -1)}\u0100`, 'session'), undefined)
    assert.equal(ring.verify(`abc.${mac}=`, 'session'), undefined)
  })

  it('B25 a megabyte Cookie header is parsed with bounded work', () => {
    const huge = Array.from({ length: 50_000 }, (_, i) => `c${i}=${'v'.repeat(20)}`).join('; ')
    const jar = parseCookies([huge])
    assert.ok(jar.size <= 200)
    assert.deepEqual(parseCookies(['a=1; a=2; =x; b="q"']).get('a'), ['1', '2'])
    assert.deepEqual(parseCookies(['b="q"']).get('b'), ['q'])
  })

  it('B25 one cookie is looked up with the rules and bounds of the full parse', () => {
    const huge = Array.from({ length: 50_000 }, (_, i) => `c${i}=${'v'.repeat(20)}`).join('; ')
    assert.equal(cookieValue([huge], 'c10'), 'v'.repeat(20))
    assert.equal(cookieValue([huge], 'c199'), parseCookies([huge]).get('c199')?.[0])
    assert.equal(cookieValue([huge], 'c200'), undefined)
    assert.equal(cookieValue([huge], 'c40000'), undefined)
    const headers = ['x=0;a=1; a=2; =x; b="q";  c = 3 ;d=', 'e=4']
    for (const name of ['a', 'b', 'c', 'd', 'e', 'x', 'f', '']) {
      assert.equal(cookieValue(headers, name), parseCookies(headers).get(name)?.[0], name)
    }
    assert.equal(cookieValue(['ab=1; b=2'], 'b'), '2')
    assert.equal(cookieValue([], 'a'), undefined)
  })

  it('B33 state comparison is by fixed-length digests', () => {
    assert.equal(safeEqual('abc', 'abc'), true)
    assert.equal(safeEqual('abc', 'abd'), false)
    assert.equal(safeEqual('abc', 'abcd'), false)
    assert.equal(safeEqual('', 'x'.repeat(10_000)), false)
  })

  it('B13 page text is escaped and capped', () => {
    assert.equal(escapeHtml(`<a href="x">'&`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;')
    const html = renderPage({ title: 't', paragraphs: [`<script>${'x'.repeat(5000)}`] })
    assert.doesNotMatch(html, /<script>/)
    assert.ok(html.length < 1000)
  })
})

describe('session record format', () => {
  const record: SessionRecord = {
    v: 1,
    iss: 'https://idp',
    sub: 'alice',
    sid: 's1',
    aud: 'demo-app',
    azp: 'demo-app',
    idToken: 'id',
    accessToken: 'at',
    refreshToken: 'rt',
    accessExpiresAt: 2,
    refreshAt: 1,
    createdAt: 0,
    expiresAt: 10,
    lastSeenAt: 0,
    offline: false,
  }
  it('O13 round-trips the current version; a newer or broken record is no session', () => {
    assert.deepEqual(decodeRecord(encodeRecord(record)), record)
    assert.equal(decodeRecord(JSON.stringify({ ...record, v: 2 })), undefined)
    assert.equal(decodeRecord('{'), undefined)
    assert.equal(decodeRecord('null'), undefined)
    assert.equal(decodeRecord(JSON.stringify({ ...record, sub: 5 })), undefined)
  })

  it('decodes a stored record once per distinct text, and never serves it for other text', () => {
    const cache = new IdentityCache({
      roles: () => [],
      username: () => 'alice',
      rolesMissing: () => {},
    })
    const data = encodeRecord(record)
    const first = cache.recordOf('s', data)
    assert.deepEqual(first, record)
    assert.ok(Object.isFrozen(first))
    // Equal text in another string (as a network store returns it) is still the same record.
    assert.equal(cache.recordOf('s', `${data} `.trimEnd()), first)
    const touched = cache.recordOf('s', encodeRecord({ ...record, lastSeenAt: 5 }))
    assert.equal(touched?.lastSeenAt, 5)
    assert.equal(cache.recordOf('s', '{'), undefined)
    assert.notEqual(cache.recordOf('s', data), first)
    assert.equal(cache.recordOf('other', data)?.sub, 'alice')
    cache.forget('other')
    assert.notEqual(cache.recordOf('other', data), first)
  })
})

describe('createSessionAuth options', () => {
  function throwsType(options: Record<string, unknown>, pattern: RegExp) {
    assert.throws(
      () => createSessionAuth({ ...base, ...options } as SessionAuthOptions),
      (error: unknown) => error instanceof SsoTypeError && pattern.test(error.message),
    )
  }
  it('refuses an empty client secret, a short or missing secret, and bad URLs', () => {
    throwsType({ clientSecret: '' }, /clientSecret must be a non-empty string/)
    throwsType(
      { clientSecret: undefined, tokenEndpointAuth: 'client_secret_basic' },
      /clientSecret is required/,
    )
    throwsType({ secret: 'short' }, /at least 32/)
    throwsType({ secret: [] }, /secret is required/)
    throwsType({ publicUrl: 'not a url' }, /publicUrl/)
    throwsType({ publicUrl: 'https://app.example.org/base' }, /origin/)
    throwsType({ issuer: 'http://idp.example.org/realms/x' }, /https/)
    throwsType({ prefix: 'auth/' }, /prefix/)
    throwsType({ postLogoutRedirectPath: '//evil.example' }, /postLogoutRedirectPath/)
    throwsType({ maxLoginAttempts: 0 }, /maxLoginAttempts/)
    throwsType({ sessionLifetime: -1 }, /sessionLifetime/)
    throwsType({ loginParams: ['redirect_uri'] }, /redirect_uri/)
  })
  it('B17 refuses insecure cookies except for an http localhost public URL', () => {
    throwsType({ publicUrl: 'http://app.example.org' }, /https/)
    throwsType({ publicUrl: 'http://localhost:3000' }, /insecureHttpForLocalhost/)
    throwsType({ cookies: { insecureHttpForLocalhost: true } }, /only with an http:\/\/localhost/)
    throwsType(
      { publicUrl: 'http://app.example.org', cookies: { insecureHttpForLocalhost: true } },
      /only with/,
    )
    const dev = createSessionAuth({
      ...base,
      publicUrl: 'http://localhost:3000',
      cookies: { insecureHttpForLocalhost: true },
    })
    assert.equal(dev.loginUrl('/x'), 'http://localhost:3000/auth/login?returnTo=%2Fx')
  })
  it('B18 builds URLs from the public URL, never from request headers', () => {
    const auth = createSessionAuth(base)
    const parts = auth.reject(
      new SsoError('session_missing', 'x'),
      request('/page', {
        accept: 'text/html',
        host: 'evil.example',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'http',
        forwarded: 'host=evil.example',
      }),
    )
    assert.equal(parts.headers.location, 'https://app.example.org/auth/login?returnTo=%2Fpage')
  })
})

describe('reject()', () => {
  const auth = createSessionAuth(base)
  const missing = new SsoError('session_missing', 'No valid session.')

  it('sends a navigation to login with the current path as returnTo', () => {
    const parts = auth.reject(
      missing,
      request('/admin?tab=1', { accept: 'text/html,application/xhtml+xml' }),
    )
    assert.equal(parts.status, 302)
    assert.equal(
      parts.headers.location,
      'https://app.example.org/auth/login?returnTo=%2Fadmin%3Ftab%3D1',
    )
    assert.equal(parts.headers['cache-control'], 'no-store')
  })

  it('B19 a protected path like //evil.example returns to /', () => {
    const parts = auth.reject(
      missing,
      fromRequest(
        new Request('https://app.example.org//evil.example', { headers: { accept: 'text/html' } }),
      ),
    )
    assert.equal(parts.headers.location, 'https://app.example.org/auth/login?returnTo=%2F')
  })

  it('B28 fetch, XHR, JSON and non-GET requests get 401 JSON with a login URL', () => {
    const cases = [
      request('/api', { accept: 'application/json' }),
      request('/api', { accept: 'text/html', 'sec-fetch-mode': 'cors' }),
      request('/api', { accept: 'text/html', 'x-requested-with': 'XMLHttpRequest' }),
      request('/api', { accept: 'text/html' }, 'POST'),
      request('/api', { accept: 'text/html' }, 'DELETE'),
    ]
    for (const req of cases) {
      const parts = auth.reject(missing, req)
      assert.equal(parts.status, 401)
      assert.equal(parts.headers['www-authenticate'], 'Bearer realm="demo-app"')
      assert.equal(parts.headers['content-type'], 'application/json')
      const body = JSON.parse(parts.body) as { error: string; login_url: string }
      assert.equal(body.error, 'session_missing')
      assert.equal(body.login_url, 'https://app.example.org/auth/login?returnTo=%2Fapi')
    }
  })

  it('maps 403, 503 and unknown errors like the bearer authenticator', () => {
    const forbidden = auth.reject(
      new SsoError('role_required', 'x', { requiredRoles: ['admin'] }),
      request('/a', { accept: 'application/json' }),
    )
    assert.equal(forbidden.status, 403)
    assert.match(String(forbidden.headers['www-authenticate']), /error="insufficient_scope"/)
    assert.equal((JSON.parse(forbidden.body) as { error: string }).error, 'role_required')
    const page = auth.reject(
      new SsoError('role_required', 'x'),
      request('/a', { accept: 'text/html' }),
    )
    assert.equal(page.status, 403)
    assert.match(String(page.headers['content-type']), /text\/html/)
    const down = auth.reject(
      new SsoError('session_store_unavailable', 'x', { retryAfter: 7 }),
      request('/a', { accept: 'text/html' }),
    )
    assert.equal(down.status, 503)
    assert.equal(down.headers['retry-after'], '7')
    assert.equal(down.headers.location, undefined)
    assert.equal(down.headers['set-cookie'], undefined)
    const crash = auth.reject(new Error('secret detail'), request('/a'))
    assert.equal(crash.status, 500)
    assert.doesNotMatch(crash.body, /secret detail/)
  })

  it('delegates requests carrying a bearer token to the bearer answers', () => {
    const withBearer = createSessionAuth({ ...base, bearer: {} })
    const parts = withBearer.reject(
      new SsoError('token_invalid', 'x'),
      request('/api', { authorization: 'Bearer x', accept: 'text/html' }),
    )
    assert.equal(parts.status, 401)
    assert.equal(
      parts.headers['www-authenticate'],
      'Bearer realm="demo-app", error="invalid_token"',
    )
  })

  it('an Authorization header of another scheme does not hide the session', async () => {
    const withBearer = createSessionAuth({ ...base, bearer: {} })
    const basic = request('/page', { authorization: 'Basic dTpw', accept: 'text/html' })
    const error = await withBearer.authenticate(basic).catch((e: unknown) => e)
    assert.ok(error instanceof SsoError && error.code === 'session_missing')
    assert.equal(withBearer.reject(error, basic).status, 302)
  })
})

describe('routes that do not exist', () => {
  const auth = createSessionAuth(base)
  it('resolves undefined outside the prefix and for unknown routes under it', async () => {
    assert.equal(await auth.handle(new Request('https://app.example.org/other')), undefined)
    assert.equal(await auth.handle(new Request('https://app.example.org/auth')), undefined)
    assert.equal(await auth.handle(new Request('https://app.example.org/auth/unknown')), undefined)
    assert.equal(await auth.handle(new Request('https://app.example.org/authx/login')), undefined)
  })
  it('B22 a GET on the back-channel route is 405', async () => {
    const response = await auth.handle(
      new Request('https://app.example.org/auth/backchannel-logout'),
    )
    assert.equal(response?.status, 405)
    assert.equal(response.headers.get('allow'), 'POST')
  })
  it('B23 there is no front-channel logout route', async () => {
    for (const path of ['/auth/frontchannel-logout?sid=x&iss=y', '/auth/frontchannel?sid=x']) {
      assert.equal(await auth.handle(new Request(`https://app.example.org${path}`)), undefined)
    }
  })
})

describe('bounded bodies', () => {
  const small = createSessionAuth({ ...base, maxBodySize: 1024 })
  const backchannel = 'https://app.example.org/auth/backchannel-logout'
  const form = { 'content-type': 'application/x-www-form-urlencoded' }

  /** A body streamed in 256-byte pieces, with no length: what a chunked upload looks like. */
  function chunked(size: number, pulled: { bytes: number }): ReadableStream<Uint8Array> {
    return new ReadableStream({
      pull(controller) {
        if (pulled.bytes >= size) {
          controller.close()
          return
        }
        pulled.bytes += 256
        controller.enqueue(new Uint8Array(256).fill(0x61))
      },
    })
  }

  it('H01 maxBodySize bounds the body a route reads, whatever its framing', async () => {
    const pulled = { bytes: 0 }
    const response = await small.handle(
      new Request(backchannel, {
        method: 'POST',
        headers: form,
        body: chunked(10 * 1024 * 1024, pulled),
        duplex: 'half',
      } as RequestInit),
    )
    assert.equal(response?.status, 413)
    assert.deepEqual(await response.json(), { error: 'body_too_large' })
    assert.equal(response.headers.get('connection'), 'close')
    assert.ok(pulled.bytes <= 1024 + 256 * 2, `${pulled.bytes} bytes read`)

    const declared = await small.handle(
      new Request(backchannel, {
        method: 'POST',
        headers: { ...form, 'content-length': '1025' },
        body: chunked(0, { bytes: 0 }),
        duplex: 'half',
      } as RequestInit),
    )
    assert.equal(declared?.status, 413)

    const within = await small.handle(
      new Request(backchannel, { method: 'POST', headers: form, body: 'logout_token=x' }),
    )
    assert.equal(within?.status, 400)
    assert.deepEqual(await within.json(), { error: 'logout_token_invalid' })
  })

  it('H01 maxBodySize must be a positive whole number of bytes', () => {
    for (const maxBodySize of [0, -1, 1.5, '65536', Number.POSITIVE_INFINITY]) {
      assert.throws(
        () => createSessionAuth({ ...base, maxBodySize } as unknown as SessionAuthOptions),
        /maxBodySize must be a positive whole number of bytes/,
      )
    }
  })
})

describe('loadSessionConfig', () => {
  const env = {
    SSOKIT_PRESET: 'cern',
    OIDC_SESSION_AUTH_ALLOWED: 'true',
    OIDC_CLIENT_ID: 'demo-app',
    OIDC_CLIENT_SECRET: 'demo-app-secret',
    SSOKIT_SESSION_SECRET: `${SECRET},${OTHER}`,
    SSOKIT_PUBLIC_URL: 'https://app.example.org',
  }
  /** The session options of an environment that allows sessions. */
  function sessionOptions(values: Record<string, string | undefined>) {
    const config = loadSessionConfig(values, { onEvent: () => {} })
    assert.ok(config.sessionAuthAllowed)
    return config
  }
  it('reads tsgauth names with their defaults', () => {
    const config = sessionOptions({
      ...env,
      OIDC_SESSION_STORE_TYPE: 'redis',
      OIDC_SESSION_STORE_PORT: '6380',
      OIDC_SESSION_LIFETIME: '86400',
    })
    assert.equal(config.auth.issuer, 'https://auth.cern.ch/auth/realms/cern')
    assert.deepEqual(config.auth.secret, [SECRET, OTHER])
    assert.equal(config.auth.sessionLifetime, 86400)
    assert.equal(config.auth.prefix, '/auth')
    assert.deepEqual(config.store, { type: 'redis', host: 'localhost', port: 6380 })
    const auth = createSessionAuth({ ...config.auth, bearer: false })
    assert.equal(auth.prefix, '/auth')
  })
  it('names the missing variable', () => {
    for (const name of [
      'OIDC_CLIENT_ID',
      'OIDC_CLIENT_SECRET',
      'SSOKIT_SESSION_SECRET',
      'SSOKIT_PUBLIC_URL',
    ]) {
      const partial = Object.fromEntries(Object.entries(env).filter(([key]) => key !== name))
      assert.throws(
        () => loadSessionConfig(partial, { onEvent: () => {} }),
        (error: unknown) => error instanceof TypeError && error.message.startsWith(name),
      )
    }
    assert.throws(
      () => loadSessionConfig({ ...env, OIDC_SESSION_STORE_TYPE: 'memcached' }),
      /OIDC_SESSION_STORE_TYPE/,
    )
  })
  it('reads the client authentication method and key; a secret is then optional', () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const jwk = JSON.stringify(privateKey.export({ format: 'jwk' }))
    const withoutSecret = { ...env, OIDC_CLIENT_SECRET: undefined }
    const keyed = sessionOptions({
      ...withoutSecret,
      SSOKIT_CLIENT_PRIVATE_KEY: jwk,
      SSOKIT_CLIENT_KEY_ID: 'key-1',
    })
    assert.equal(keyed.auth.clientSecret, undefined)
    assert.deepEqual(keyed.auth.clientPrivateKey, { key: JSON.parse(jwk) as unknown, kid: 'key-1' })
    createSessionAuth({ ...keyed.auth, bearer: false })
    const post = sessionOptions({ ...env, SSOKIT_TOKEN_ENDPOINT_AUTH: 'client_secret_post' })
    assert.equal(post.auth.tokenEndpointAuth, 'client_secret_post')
    const open = sessionOptions({ ...withoutSecret, SSOKIT_TOKEN_ENDPOINT_AUTH: 'none' })
    assert.equal(open.auth.clientSecret, undefined)
    assert.throws(
      () => loadSessionConfig({ ...env, SSOKIT_TOKEN_ENDPOINT_AUTH: 'basic' }),
      /SSOKIT_TOKEN_ENDPOINT_AUTH must be one of/,
    )
    assert.throws(
      () => loadSessionConfig({ ...withoutSecret, SSOKIT_CLIENT_PRIVATE_KEY: '{oops' }),
      /SSOKIT_CLIENT_PRIVATE_KEY/,
    )
  })
})
