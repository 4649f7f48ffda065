import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CookieJar, DEFAULT_IDP_CONFIG } from '@ssokit/idp'
import { ASSERTION_TYPE } from '@ssokit/proxy'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import {
  headerOf,
  namesOf,
  rawRequest,
  signIn,
  startRig,
  type Received,
  type Rig,
} from './support.js'

const SPOOFED: readonly (readonly [string, string])[] = [
  ['X-Forwarded-User', 'mallory'],
  ['X-Forwarded-Email', 'mallory@evil.example'],
  ['X-Forwarded-Groups', 'admin'],
  ['X-Forwarded-Preferred-Username', 'mallory'],
  ['X-Forwarded-Access-Token', 'forged'],
  ['X-Auth-Request-User', 'mallory'],
  ['X-Auth-Request-Email', 'mallory@evil.example'],
  ['Remote-User', 'mallory'],
  ['ADFS-LOGIN', 'mallory'],
  ['ADFS-GROUP', 'admin'],
  ['X-Ssokit-Assertion', 'forged'],
  ['X-Original-URL', '/public'],
  ['X-Forwarded-For', '10.0.0.1'],
]

/** No header of the spoofed set reached the upstream with the client's value. */
function assertNoSpoofed(received: Received): void {
  const folded = new Map<string, string[]>()
  for (let i = 0; i + 1 < received.rawHeaders.length; i += 2) {
    const name = (received.rawHeaders[i] ?? '').toLowerCase().replaceAll('_', '-')
    folded.set(name, [...(folded.get(name) ?? []), received.rawHeaders[i + 1] ?? ''])
  }
  for (const [name, value] of SPOOFED) {
    const seen = folded.get(name.toLowerCase()) ?? []
    assert.ok(!seen.includes(value), `${name}: ${value} reached the upstream`)
  }
  assert.deepEqual(folded.get('authorization') ?? [], [])
}

describe('ssokit proxy: reverse proxy in front of an echo upstream', () => {
  let dir: string
  let rig: Rig
  let alice: CookieJar
  let bob: CookieJar

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-proxy-'))
    const file = join(dir, 'proxy.yaml')
    await writeFile(
      file,
      [
        'rules:',
        '  - path: /public',
        '    public: true',
        '  - path: /api/*/status',
        '    public: true',
        '  - path: /admin',
        '    roles: [admin]',
        '  - path: /ops',
        '    roles: [operator]',
      ].join('\n'),
    )
    rig = await startRig({ file })
    alice = await signIn(rig, 'alice')
    bob = await signIn(rig, 'bob')
  })
  after(async () => {
    await rig.close()
    await rm(dir, { recursive: true, force: true })
  })

  function last(): Received {
    const received = rig.echo.received.at(-1)
    assert.ok(received, 'the upstream received a request')
    return received
  }

  async function get(path: string, jar?: CookieJar, headers: Record<string, string> = {}) {
    const url = `${rig.base}${path}`
    const init = { headers: { accept: 'application/json', ...headers } }
    return jar === undefined ? fetch(url, { ...init, redirect: 'manual' }) : jar.fetch(url, init)
  }

  it('sends a browser without a session to sign in, and answers a script with 401', async () => {
    const before = rig.echo.received.length
    // A browser's navigation (fetch() in Node announces itself as sec-fetch-mode: cors).
    const page = await rawRequest(rig.proxy.port, [
      'GET /app/page?x=1 HTTP/1.1',
      `Host: ${new URL(rig.base).host}`,
      'Accept: text/html,application/xhtml+xml',
    ])
    assert.equal(page.status, 302)
    const location = new URL(/^location: (.*)$/im.exec(page.head)?.[1] ?? '')
    assert.equal(location.pathname, '/_ssokit/login')
    assert.equal(location.searchParams.get('returnTo'), '/app/page?x=1')
    const api = await get('/app/data')
    assert.equal(api.status, 401)
    assert.match(api.headers.get('www-authenticate') ?? '', /^Bearer realm=/)
    const xhr = await fetch(`${rig.base}/app/data`, {
      headers: { accept: '*/*', 'x-requested-with': 'XMLHttpRequest' },
      redirect: 'manual',
    })
    assert.equal(xhr.status, 401)
    assert.equal(rig.echo.received.length, before, 'nothing reached the upstream')
  })

  it('forwards a signed-in request with the identity headers, the query, and the answer', async () => {
    const response = await get('/app/items?a=1&b=two', alice)
    assert.equal(response.status, 200)
    assert.equal(response.headers.get('x-upstream'), 'echo')
    assert.deepEqual(response.headers.getSetCookie(), ['app=1; Path=/', 'other=2; Path=/'])
    assert.equal(await response.text(), 'GET /app/items?a=1&b=two')
    const received = last()
    assert.equal(received.url, '/app/items?a=1&b=two')
    assert.equal(headerOf(received, 'x-forwarded-preferred-username')[0], 'alice')
    assert.equal(headerOf(received, 'x-forwarded-email')[0], 'alice@example.org')
    assert.match(headerOf(received, 'x-forwarded-user')[0] ?? '', /.+/)
    assert.deepEqual(headerOf(received, 'x-forwarded-groups')[0]?.split(',').sort(), [
      'admin',
      'user',
    ])
    assert.equal(headerOf(received, 'x-forwarded-proto')[0], 'http')
    assert.equal(headerOf(received, 'x-forwarded-host')[0], new URL(rig.base).host)
  })

  it('C01 removes spoofed identity headers on authenticated, public, preflight and own paths', async () => {
    const spoofed = Object.fromEntries(SPOOFED)
    // Authenticated: exactly the proxy's values.
    assert.equal((await get('/app', alice, spoofed)).status, 200)
    assertNoSpoofed(last())
    assert.equal(headerOf(last(), 'x-forwarded-preferred-username')[0], 'alice')
    // Public route: no identity at all.
    assert.equal((await get('/public/page', undefined, spoofed)).status, 200)
    assertNoSpoofed(last())
    assert.deepEqual(headerOf(last(), 'x-forwarded-user'), [])
    // Preflight on a public route.
    const preflight = await fetch(`${rig.base}/public/x`, { method: 'OPTIONS', headers: spoofed })
    assert.equal(preflight.status, 200)
    assert.equal(last().method, 'OPTIONS')
    assertNoSpoofed(last())
    // A preflight, an error path and the proxy's own endpoints never reach the upstream.
    const count = rig.echo.received.length
    assert.equal(
      (await fetch(`${rig.base}/app`, { method: 'OPTIONS', headers: spoofed })).status,
      401,
    )
    for (const path of ['/_ssokit/healthz', '/_ssokit/jwks', '/_ssokit/nothing', '/_ssokit']) {
      await (await get(path, undefined, spoofed)).arrayBuffer()
    }
    assert.equal(rig.echo.received.length, count)
  })

  it('C02 removes every spelling of an identity header: case, "_" for "-", repeats', async () => {
    const answer = await rawRequest(rig.proxy.port, [
      'GET /public/c02 HTTP/1.1',
      `Host: ${new URL(rig.base).host}`,
      'X_Forwarded_User: mallory',
      'x-forwarded-user: mallory',
      'X-FORWARDED-EMAIL: mallory@evil.example',
      'X-Forwarded_Groups: admin',
      'X-Forwarded-Groups: admin',
      'X-Forwarded-Groups: admin',
      'ADFS_LOGIN: mallory',
      'remote_user: mallory',
      'X-Auth_Request-User: mallory',
    ])
    assert.equal(answer.status, 200)
    const received = last()
    assert.equal(received.url, '/public/c02')
    assertNoSpoofed(received)
    const folded = namesOf(received).map((n) => n.replaceAll('_', '-'))
    for (const name of [
      'x-forwarded-user',
      'x-forwarded-email',
      'x-forwarded-groups',
      'adfs-login',
      'remote-user',
      'x-auth-request-user',
    ]) {
      assert.ok(!folded.includes(name), name)
    }
  })

  it('C03 drops headers a client nominates in Connection, never the proxy-set ones', async () => {
    const cookie = alice.header(`${rig.base}/`)
    const answer = await rawRequest(rig.proxy.port, [
      'GET /app/c03 HTTP/1.1',
      `Host: ${new URL(rig.base).host}`,
      `Cookie: ${cookie}`,
      'Accept: application/json',
      'Connection: keep-alive, X-Forwarded-User, X-Forwarded-Email, X-App-Header',
      'X-Forwarded-User: mallory',
      'X-App-Header: hop',
      'X-Kept: yes',
    ])
    assert.equal(answer.status, 200)
    const received = last()
    assert.equal(received.url, '/app/c03')
    assert.equal(headerOf(received, 'x-forwarded-preferred-username')[0], 'alice')
    assert.equal(headerOf(received, 'x-forwarded-email')[0], 'alice@example.org')
    assert.equal(headerOf(received, 'x-forwarded-user').length, 1)
    assert.notEqual(headerOf(received, 'x-forwarded-user')[0], 'mallory')
    assert.deepEqual(headerOf(received, 'x-app-header'), [])
    assert.deepEqual(headerOf(received, 'x-kept'), ['yes'])
  })

  it('C06 matches rules on the path only: a query or fragment never makes a path public', async () => {
    const count = rig.echo.received.length
    for (const path of ['/api/private/x?path=/status', '/admin?public', '/app?/public']) {
      assert.equal((await get(path)).status, 401, path)
    }
    const fragment = await rawRequest(rig.proxy.port, [
      'GET /admin#/public HTTP/1.1',
      `Host: ${new URL(rig.base).host}`,
      'Accept: application/json',
    ])
    assert.equal(fragment.status, 401)
    assert.equal(rig.echo.received.length, count)
    // The pattern itself does match the path it names.
    assert.equal((await get('/api/v1/status')).status, 200)
    assert.equal(last().url, '/api/v1/status')
  })

  it('C07 forwards the canonical path it matched, and refuses ambiguous forms with 400', async () => {
    const host = `Host: ${new URL(rig.base).host}`
    const canonical: [string, string][] = [
      ['/public/../admin', '/admin'],
      ['/public/%2e%2e/admin', '/admin'],
      ['/public/./x/../../admin', '/admin'],
      ['//admin', '/admin'],
      ['/%61dmin', '/admin'],
      ['/admin/', '/admin/'],
    ]
    for (const [target] of canonical) {
      const anonymous = await rawRequest(rig.proxy.port, [
        `GET ${target} HTTP/1.1`,
        host,
        'Accept: application/json',
      ])
      assert.equal(anonymous.status, 401, target)
    }
    const cookie = `Cookie: ${alice.header(`${rig.base}/`)}`
    for (const [target, path] of canonical) {
      const signedIn = await rawRequest(rig.proxy.port, [`GET ${target} HTTP/1.1`, host, cookie])
      assert.equal(signedIn.status, 200, target)
      assert.equal(last().url, path, target)
    }
    const count = rig.echo.received.length
    for (const target of [
      '/public%2f..%2fadmin',
      '/public/..%2fadmin',
      '/public/..%5cadmin',
      '/public\\..\\admin',
      '/admin;x=1',
      '/admin%00',
      '/public/%252e%252e/admin',
      '/public/%c0%af../admin',
      '/public/%zz',
    ]) {
      const answer = await rawRequest(rig.proxy.port, [`GET ${target} HTTP/1.1`, host, cookie])
      assert.equal(answer.status, 400, target)
    }
    assert.equal(rig.echo.received.length, count)
  })

  it('C08 matches whole segments: /public covers neither /admin/public nor /publicity', async () => {
    const count = rig.echo.received.length
    for (const path of ['/admin/public', '/publicity-secrets', '/api/publicadmin', '/public-x']) {
      assert.equal((await get(path)).status, 401, path)
    }
    assert.equal(rig.echo.received.length, count)
    assert.equal((await get('/public')).status, 200)
    assert.equal((await get('/public/deeper/still')).status, 200)
  })

  it('C09 serves health only on its exact path and method, and no header grants access', async () => {
    const health = await get('/_ssokit/healthz')
    assert.equal(health.status, 200)
    assert.deepEqual(await health.json(), { status: 'ok' })
    assert.equal((await fetch(`${rig.base}/_ssokit/healthz`, { method: 'POST' })).status, 405)
    const count = rig.echo.received.length
    assert.equal((await get('/admin', undefined, { 'user-agent': 'kube-probe/1.29' })).status, 401)
    const dotted = await rawRequest(rig.proxy.port, [
      'GET /_ssokit/healthz/../../admin HTTP/1.1',
      `Host: ${new URL(rig.base).host}`,
      'Accept: application/json',
    ])
    assert.equal(dotted.status, 401)
    assert.equal(rig.echo.received.length, count)
    const ready = await get('/_ssokit/readyz')
    assert.equal(ready.status, 200)
  })

  it("C13 verifies bearer tokens: another client's token and garbage are 401, its own passes", async () => {
    const token = async (clientId: string, secret: string) => {
      const response = await fetch(`${rig.idp.issuer}/protocol/openid-connect/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: clientId,
          client_secret: secret,
        }),
      })
      const body = (await response.json()) as { access_token?: string }
      assert.ok(body.access_token)
      return body.access_token
    }
    const count = rig.echo.received.length
    for (const bearer of [await token('demo-api', 'demo-api-secret'), 'not-a-jwt']) {
      const response = await get('/app/api', undefined, { authorization: `Bearer ${bearer}` })
      assert.equal(response.status, 401)
      assert.match(response.headers.get('www-authenticate') ?? '', /error="invalid_token"/)
    }
    assert.equal(rig.echo.received.length, count)
    const own = await get('/app/api', undefined, {
      authorization: `Bearer ${await token('demo-app', 'demo-app-secret')}`,
    })
    assert.equal(own.status, 200)
    assert.deepEqual(headerOf(last(), 'authorization'), [])
    assert.match(headerOf(last(), 'x-forwarded-user')[0] ?? '', /^service-account-demo-app$/)
  })

  it("C15 sends the application its own cookies but never the proxy's, and no Authorization", async () => {
    const own = alice
      .header(`${rig.base}/`)
      .split('; ')
      .filter((pair) => pair.includes('ssokit'))
    assert.ok(own.length > 0)
    const response = await get('/app/c15', undefined, {
      cookie: ['theme=dark', ...own, 'lang=en'].join('; '),
    })
    assert.equal(response.status, 200)
    const cookies = headerOf(last(), 'cookie')
    assert.deepEqual(cookies, ['theme=dark; lang=en'])
    // Only the proxy's cookies: no Cookie header at all.
    await get('/app/c15', undefined, { cookie: own.join('; ') })
    assert.deepEqual(headerOf(last(), 'cookie'), [])
    assert.deepEqual(headerOf(last(), 'authorization'), [])
  })

  it('C16 signs an identity assertion the application verifies with the published keys', async () => {
    await get('/app/c16', alice)
    const [assertion] = headerOf(last(), 'x-ssokit-assertion')
    assert.ok(assertion)
    const keys = createRemoteJWKSet(new URL(`${rig.base}/_ssokit/jwks`))
    const { payload, protectedHeader } = await jwtVerify(assertion, keys, {
      issuer: rig.base,
      audience: rig.echo.origin,
      typ: ASSERTION_TYPE,
    })
    assert.equal(payload.username, 'alice')
    assert.equal(payload.email, 'alice@example.org')
    assert.deepEqual([...(payload.roles as string[])].sort(), ['admin', 'user'])
    assert.equal(protectedHeader.alg, 'ES256')
    assert.ok((payload.exp ?? 0) - (payload.iat ?? 0) <= 60)
    // A forged assertion from the client never reaches the upstream.
    await get('/public/c16', undefined, { 'x-ssokit-assertion': assertion })
    assert.deepEqual(headerOf(last(), 'x-ssokit-assertion'), [])
  })

  it('C17 answers 502, never 101, when the upstream does not accept a WebSocket handshake', async () => {
    for (const cookie of [undefined, alice.header(`${rig.base}/`)]) {
      const answer = await rawRequest(rig.proxy.port, [
        'GET /public/socket HTTP/1.1',
        `Host: ${new URL(rig.base).host}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Version: 13',
        ...(cookie === undefined ? [] : [`Cookie: ${cookie}`]),
      ])
      assert.equal(answer.status, 502)
    }
  })

  it('C18 answers 403 when a required role is absent, and forwards when it is held', async () => {
    const count = rig.echo.received.length
    const denied = await get('/admin/panel', bob)
    assert.equal(denied.status, 403)
    assert.match(denied.headers.get('www-authenticate') ?? '', /insufficient_scope/)
    // Nobody holds "operator": an absent role claim is never an allow.
    assert.equal((await get('/ops', alice)).status, 403)
    assert.equal((await get('/ops', bob)).status, 403)
    assert.equal(rig.echo.received.length, count)
    assert.equal((await get('/admin/panel', alice)).status, 200)
    assert.equal(last().url, '/admin/panel')
  })

  it('streams request and response bodies through both ways', async () => {
    const size = 3 * 1024 * 1024
    const payload = Buffer.alloc(size, 7)
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= size) {
          controller.close()
          return
        }
        const chunk = payload.subarray(sent, sent + 64 * 1024)
        sent += chunk.length
        controller.enqueue(chunk)
      },
    })
    const response = await alice.fetch(`${rig.base}/app/upload`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/octet-stream' },
      body,
      duplex: 'half',
    } as RequestInit)
    assert.equal(response.status, 200)
    const back = Buffer.from(await response.arrayBuffer())
    assert.equal(back.length, size)
    assert.ok(back.equals(payload))
    assert.equal(last().body.length, size)
  })

  it('accepts request headers up to 64 KiB and refuses larger ones with 431', async () => {
    const big = 'x'.repeat(40 * 1024)
    assert.equal((await get('/public/big', undefined, { 'x-big': big })).status, 200)
    assert.equal(headerOf(last(), 'x-big')[0]?.length, big.length)
    const count = rig.echo.received.length
    const huge = 'x'.repeat(70 * 1024)
    assert.equal((await get('/public/huge', undefined, { 'x-huge': huge })).status, 431)
    assert.equal(rig.echo.received.length, count)
  })
})

describe('ssokit proxy: --max-header-size', () => {
  let rig: Rig

  before(async () => {
    rig = await startRig({ flags: { 'max-header-size': 8192 } })
  })
  after(async () => {
    await rig.close()
  })

  it('refuses headers over the configured limit with 431, unforwarded, and keeps serving', async () => {
    const fits = 'x'.repeat(6 * 1024)
    const under = await fetch(`${rig.base}/public-fits`, {
      headers: { accept: 'application/json', 'x-fits': fits },
    })
    // Through the limit's check: the proxy's own 401, not a refusal of the headers.
    assert.equal(under.status, 401)
    await under.arrayBuffer()
    const count = rig.echo.received.length
    const over = await rawRequest(rig.proxy.port, [
      'GET /anything HTTP/1.1',
      'Host: localhost',
      `X-Over: ${'x'.repeat(8192 + 1024)}`,
    ])
    assert.equal(over.status, 431)
    assert.equal(rig.echo.received.length, count)
    // Many at once, then an ordinary request: no crash, no stuck connection.
    const answers = await Promise.all(
      Array.from({ length: 8 }, () =>
        rawRequest(rig.proxy.port, [
          'GET / HTTP/1.1',
          'Host: localhost',
          ...Array.from({ length: 20 }, (_, i) => `X-Many-${i}: ${'y'.repeat(500)}`),
        ]),
      ),
    )
    assert.deepEqual(
      answers.map((a) => a.status),
      Array.from({ length: 8 }, () => 431),
    )
    const health = await fetch(`${rig.base}/_ssokit/healthz`)
    assert.equal(health.status, 200)
    assert.equal(rig.echo.received.length, count)
  })
})

describe('ssokit proxy: upstream failures', () => {
  it('answers 502 when the upstream is down, as JSON for scripts and a page for browsers', async () => {
    const { closedPort } = await import('./support.js')
    const rig = await startRig({ upstream: `http://127.0.0.1:${await closedPort()}` })
    try {
      const json = await fetch(`${rig.base}/public-nothing`, {
        headers: { accept: 'application/json' },
      })
      // Not public here: every path needs sign-in, so sign in first.
      assert.equal(json.status, 401)
      const jar = await signIn(rig, 'alice')
      const api = await jar.fetch(`${rig.base}/x`, { headers: { accept: 'application/json' } })
      assert.equal(api.status, 502)
      assert.deepEqual(await api.json(), { error: 'upstream_unavailable' })
      const page = await jar.fetch(`${rig.base}/x`, { headers: { accept: 'text/html' } })
      assert.equal(page.status, 502)
      assert.match(page.headers.get('content-type') ?? '', /text\/html/)
    } finally {
      await rig.close()
    }
  })

  it('sends a GET once more when the upstream closed its kept-alive connection under it, never a POST', async () => {
    // As uWSGI's http-socket: an HTTP/1.1 answer without `Connection: close`, then the
    // connection is closed; here the close waits for the next request, so the race is certain.
    const { createServer } = await import('node:net')
    let requests = 0
    const upstream = createServer((socket) => {
      let answered = false
      socket.on('data', () => {
        requests++
        if (answered) {
          socket.destroy()
          return
        }
        answered = true
        socket.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 3\r\n\r\nok\n')
      })
      socket.on('error', () => undefined)
    })
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
    const { port } = upstream.address() as AddressInfo
    const rig = await startRig({ upstream: `http://127.0.0.1:${port}` })
    try {
      const jar = await signIn(rig, 'alice')
      for (let i = 0; i < 3; i++) {
        const answer = await jar.fetch(`${rig.base}/page`, { headers: { accept: 'text/plain' } })
        assert.equal(answer.status, 200, `GET ${i}`)
        assert.equal(await answer.text(), 'ok\n')
      }
      assert.ok(requests >= 4, 'a GET met a closed connection and was sent again')
      const statuses: number[] = []
      for (let i = 0; i < 2; i++) {
        const before = requests
        const answer = await jar.fetch(`${rig.base}/form`, {
          method: 'POST',
          body: `a=${i}`,
          headers: { accept: 'application/json' },
        })
        await answer.arrayBuffer()
        statuses.push(answer.status)
        assert.equal(requests, before + 1, 'a POST is sent once')
      }
      assert.ok(
        statuses.includes(502),
        `a POST on a closed connection is a 502: ${statuses.join()}`,
      )
    } finally {
      await rig.close()
      upstream.close()
    }
  })

  it('answers 504 when the upstream does not answer in time', async () => {
    const rig = await startRig({ flags: { 'upstream-timeout': '1' } })
    try {
      rig.echo.silent.add('/slow')
      const jar = await signIn(rig, 'alice')
      const response = await jar.fetch(`${rig.base}/slow`, {
        headers: { accept: 'application/json' },
      })
      assert.equal(response.status, 504)
      assert.deepEqual(await response.json(), { error: 'upstream_timeout' })
      assert.equal(rig.echo.received.at(-1)?.url, '/slow')
    } finally {
      await rig.close()
    }
  })

  it('sends the shibboleth-adfs header names with ";" between groups', async () => {
    const rig = await startRig({ flags: { 'header-preset': 'shibboleth-adfs' } })
    try {
      const jar = await signIn(rig, 'alice')
      assert.equal((await jar.fetch(`${rig.base}/legacy`)).status, 200)
      const received = rig.echo.received.at(-1)
      assert.ok(received)
      assert.equal(headerOf(received, 'adfs-login')[0], 'alice')
      assert.equal(headerOf(received, 'adfs-email')[0], 'alice@example.org')
      assert.equal(headerOf(received, 'adfs-fullname')[0], 'Alice Example')
      assert.deepEqual(headerOf(received, 'adfs-group')[0]?.split(';').sort(), ['admin', 'user'])
      assert.deepEqual(headerOf(received, 'x-forwarded-user'), [])
    } finally {
      await rig.close()
    }
  })
})

describe('ssokit proxy: claim values in headers', () => {
  let rig: Rig
  const groups = Array.from(
    { length: 400 },
    (_, i) => `group-${String(i).padStart(4, '0')}-of-the-experiment`,
  )
  before(async () => {
    rig = await startRig({
      idpConfig: {
        ...DEFAULT_IDP_CONFIG,
        users: [
          ...(DEFAULT_IDP_CONFIG.users ?? []),
          {
            username: 'carol',
            password: 'carol',
            name: 'Carol\r\nX-Injected: yes',
            email: 'zoë@example.org',
            roles: { '*': ['admins,users', 'a-ok', ...groups] },
          },
        ],
      },
    })
  })
  after(() => rig.close())

  it('C14 drops values with control characters, encodes the rest, and bounds every header', async () => {
    const jar = await signIn(rig, 'carol')
    const response = await jar.fetch(`${rig.base}/c14`, { headers: { accept: 'application/json' } })
    assert.equal(response.status, 200)
    const received = rig.echo.received.at(-1)
    assert.ok(received)
    assert.deepEqual(headerOf(received, 'x-injected'), [])
    assert.equal(headerOf(received, 'x-forwarded-email')[0], 'zo%C3%AB@example.org')
    const [joined = ''] = headerOf(received, 'x-forwarded-groups')
    const entries = joined.split(',')
    // "admins,users" would read as two groups: it is left out, not split.
    assert.ok(!entries.includes('admins') && !entries.includes('users'))
    assert.ok(entries.includes('a-ok'))
    assert.ok(joined.length <= 1024, String(joined.length))
    assert.ok(entries.length > 10 && entries.length < groups.length)
    for (const entry of entries) assert.ok(entry === 'a-ok' || groups.includes(entry), entry)
    // The whole set of identity headers stays far below a 4 KiB upstream buffer.
    const identityBytes = received.rawHeaders
      .map((v, i, all) =>
        i % 2 === 0 &&
        /^(x-forwarded-(user|email|groups|preferred-username)|x-ssokit-assertion)$/i.test(v)
          ? v.length + (all[i + 1]?.length ?? 0)
          : 0,
      )
      .reduce((a, b) => a + b, 0)
    assert.ok(identityBytes < 3000, String(identityBytes))
  })
})
