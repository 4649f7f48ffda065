import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request, type IncomingHttpHeaders, type IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CookieJar } from '@ssokit/idp'
import { ASSERTION_TYPE, loadProxyConfig, startProxy, type RunningProxy } from '@ssokit/proxy'
import { RedisSessionStore } from '@ssokit/redis'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { finishLogin } from '../../../test/support/session-redis.js'
import {
  closedPort,
  freePort,
  headerOf,
  serviceToken,
  signIn,
  startRig,
  type Rig,
} from './support.js'

const SESSION_SECRET = 'forward-auth-test-session-secret-0123456789'

interface Answer {
  readonly status: number
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/**
 * One request to the proxy from a chosen loopback address (127.0.0.1 is the trusted front server
 * in these tests; 127.0.0.2 is anyone else), with headers exactly as given.
 */
async function ask(
  port: number,
  path: string,
  headers: Record<string, string | string[]>,
  from = '127.0.0.1',
): Promise<Answer> {
  const req = request({ host: '127.0.0.1', port, path, headers, localAddress: from, agent: false })
  req.end()
  const [res] = (await once(req, 'response')) as [IncomingMessage]
  let body = ''
  res.setEncoding('utf8')
  for await (const chunk of res) body += chunk as string
  return { status: res.statusCode ?? 0, headers: res.headers, body }
}

/** The `error` code of a JSON answer. */
function errorOf(answer: Answer): string {
  return (JSON.parse(answer.body) as { error?: string }).error ?? ''
}

/** What nginx's `auth_request` sends for `GET <uri>` (our documented snippet). */
function nginxMeta(uri: string, method = 'GET'): Record<string, string> {
  return {
    'x-original-uri': uri,
    'x-original-method': method,
    'x-forwarded-host': 'localhost:8080',
    'x-forwarded-proto': 'http',
  }
}

/** What Caddy's and Traefik's forward auth send. */
function caddyMeta(uri: string, method = 'GET'): Record<string, string> {
  return {
    'x-forwarded-uri': uri,
    'x-forwarded-method': method,
    'x-forwarded-host': 'localhost:8080',
    'x-forwarded-proto': 'http',
  }
}

const JSON_ACCEPT = { accept: 'application/json' }
const BROWSER = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' }

describe('ssokit proxy: forward auth (/_ssokit/auth)', () => {
  let dir: string
  let rig: Rig
  let alice: CookieJar
  let bob: CookieJar
  let cookieOf: (jar: CookieJar) => string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-fwdauth-'))
    const file = join(dir, 'proxy.yaml')
    await writeFile(
      file,
      [
        'trustedProxies: [127.0.0.1, "::1"]',
        'allowedRedirectDomains: [.example.org, app.example.net:8443]',
        'rules:',
        '  - path: /public',
        '    public: true',
        '  - path: /api/*/status',
        '    public: true',
        '  - path: /admin',
        '    roles: [admin]',
      ].join('\n'),
    )
    rig = await startRig({ file, env: { SSOKIT_SESSION_SECRET: SESSION_SECRET } })
    alice = await signIn(rig, 'alice')
    bob = await signIn(rig, 'bob')
    cookieOf = (jar) => jar.header(`${rig.base}/`)
  })
  after(async () => {
    await rig.close()
    await rm(dir, { recursive: true, force: true })
  })

  const auth = (
    headers: Record<string, string | string[]>,
    from?: string,
    path = '/_ssokit/auth',
  ) => ask(rig.proxy.port, path, headers, from)

  it('C10 allows a signed-in request with only the identity headers and a signed assertion', async () => {
    const answer = await auth({ ...nginxMeta('/app/page?x=1'), cookie: cookieOf(alice) })
    assert.equal(answer.status, 200)
    assert.equal(answer.body, '')
    assert.equal(answer.headers['x-forwarded-preferred-username'], 'alice')
    assert.equal(answer.headers['x-forwarded-email'], 'alice@example.org')
    assert.deepEqual(String(answer.headers['x-forwarded-groups']).split(',').sort(), [
      'admin',
      'user',
    ])
    const allowed = new Set([
      'x-forwarded-user',
      'x-forwarded-email',
      'x-forwarded-preferred-username',
      'x-forwarded-groups',
      'x-ssokit-assertion',
      'cache-control',
      'content-length',
      'date',
      'connection',
      'keep-alive',
    ])
    for (const name of Object.keys(answer.headers)) assert.ok(allowed.has(name), name)
    const keys = createRemoteJWKSet(new URL(`${rig.base}/_ssokit/jwks`))
    const { payload } = await jwtVerify(String(answer.headers['x-ssokit-assertion']), keys, {
      issuer: rig.base,
      audience: rig.echo.origin,
      typ: ASSERTION_TYPE,
    })
    assert.equal(payload.username, 'alice')
    assert.equal(payload.via, 'session')
    // A bearer token is as good as a session, through Caddy's or Traefik's headers too.
    const token = await serviceToken(rig.idp.issuer)
    const bearer = await auth({ ...caddyMeta('/app/api'), authorization: `Bearer ${token}` })
    assert.equal(bearer.status, 200)
    assert.equal(bearer.headers['x-forwarded-user'], 'service-account-demo-app')
  })

  it('C10 answers no session with 401: WWW-Authenticate for scripts, the sign-in address for browsers', async () => {
    const api = await auth({ ...nginxMeta('/app/data'), ...JSON_ACCEPT })
    assert.equal(api.status, 401)
    assert.match(String(api.headers['www-authenticate']), /^Bearer realm=/)
    assert.equal(api.headers['x-forwarded-user'], undefined)
    const page = await auth({ ...nginxMeta('/app/page?x=1&y=2'), ...BROWSER })
    assert.equal(page.status, 401)
    assert.equal(page.headers.location, undefined)
    const login = new URL(String(page.headers['x-ssokit-login']))
    assert.equal(login.origin, rig.base)
    assert.equal(login.pathname, '/_ssokit/login')
    assert.equal(login.searchParams.get('rd'), 'http://localhost:8080/app/page?x=1&y=2')
    // Front servers that relay the answer (Traefik, Caddy) can ask for the redirect itself.
    const relayed = await auth(
      { ...caddyMeta('/app/page'), ...BROWSER },
      undefined,
      '/_ssokit/auth?redirect=true',
    )
    assert.equal(relayed.status, 302)
    assert.equal(new URL(String(relayed.headers.location)).pathname, '/_ssokit/login')
    // Never a redirect for a script, even when asked.
    const script = await auth(
      { ...caddyMeta('/app/page'), ...JSON_ACCEPT },
      undefined,
      '/_ssokit/auth?redirect=true',
    )
    assert.equal(script.status, 401)
    // A bad token is a refusal, never a pass.
    const forged = await auth({ ...caddyMeta('/app/api'), authorization: 'Bearer not-a-jwt' })
    assert.equal(forged.status, 401)
    assert.match(String(forged.headers['www-authenticate']), /error="invalid_token"/)
  })

  it('C10 answers 403 when a rule needs a role the user lacks, 200 when the user holds it', async () => {
    const denied = await auth({
      ...nginxMeta('/admin/panel'),
      cookie: cookieOf(bob),
      ...JSON_ACCEPT,
    })
    assert.equal(denied.status, 403)
    assert.match(String(denied.headers['www-authenticate']), /insufficient_scope/)
    assert.equal(denied.headers['x-forwarded-user'], undefined)
    const allowed = await auth({ ...nginxMeta('/admin/panel'), cookie: cookieOf(alice) })
    assert.equal(allowed.status, 200)
  })

  it('C10 answers 5xx, never 2xx, when the session store fails', async () => {
    const port = await freePort()
    const config = await loadProxyConfig({
      flags: {
        upstream: rig.echo.origin,
        issuer: rig.idp.issuer,
        'client-id': 'demo-app',
        'public-url': rig.base,
        port,
        host: '127.0.0.1',
        'trusted-proxies': '127.0.0.1',
      },
      env: { OIDC_CLIENT_SECRET: 'demo-app-secret', SSOKIT_SESSION_SECRET: SESSION_SECRET },
    })
    const store = new RedisSessionStore({
      url: `redis://127.0.0.1:${await closedPort()}`,
      commandTimeout: 300,
      connectTimeout: 300,
    })
    let broken: RunningProxy | undefined
    try {
      broken = await startProxy(config, { store, onEvent: () => {} })
      const answer = await ask(broken.port, '/_ssokit/auth', {
        ...nginxMeta('/app'),
        cookie: cookieOf(alice),
        ...JSON_ACCEPT,
      })
      assert.equal(answer.status, 503)
      assert.equal(answer.headers['x-forwarded-user'], undefined)
    } finally {
      await broken?.close()
      await store.close()
    }
  })

  it('C04 reads the forwarded URI only from a trusted proxy, and refuses the check from anyone else', async () => {
    const spoof = {
      ...nginxMeta('/public/page'),
      'x-forwarded-uri': '/public/page',
      ...JSON_ACCEPT,
    }
    const untrusted = await auth(spoof, '127.0.0.2')
    assert.equal(untrusted.status, 400)
    assert.equal(errorOf(untrusted), 'untrusted_peer')
    // From the trusted proxy, headers only front servers set are not read at all.
    for (const header of ['x-original-url', 'x-rewrite-url', 'x-forwarded-prefix']) {
      const answer = await auth({ ...nginxMeta('/admin'), [header]: '/public', ...JSON_ACCEPT })
      assert.equal(answer.status, 401, header)
    }
    // Two spellings of the URI that disagree: the client slipped one past the front server.
    const disagree = await auth({
      ...nginxMeta('/admin'),
      'x-forwarded-uri': '/public',
      ...JSON_ACCEPT,
    })
    assert.equal(disagree.status, 400)
    assert.equal(errorOf(disagree), 'conflicting_metadata')
    const repeated = await auth({
      ...caddyMeta('/admin'),
      'x-forwarded-uri': ['/admin', '/public'],
    })
    assert.equal(repeated.status, 400)
  })

  it('C04 reverse mode decides on the real request target, whatever X-Forwarded-Uri says', async () => {
    const count = rig.echo.received.length
    const answer = await ask(rig.proxy.port, '/admin', {
      'x-forwarded-uri': '/public',
      'x-original-uri': '/public',
      ...JSON_ACCEPT,
    })
    assert.equal(answer.status, 401)
    assert.equal(rig.echo.received.length, count)
  })

  it('C05 takes the client address from a trusted peer only: the rightmost untrusted hop', async () => {
    const spoofed = await ask(
      rig.proxy.port,
      '/public/c05',
      { 'x-forwarded-for': '10.0.0.1' },
      '127.0.0.2',
    )
    assert.equal(spoofed.status, 200)
    assert.deepEqual(headerOf(rig.echo.received.at(-1)!, 'x-forwarded-for'), ['127.0.0.2'])
    const chained = await ask(rig.proxy.port, '/public/c05', {
      'x-forwarded-for': '10.0.0.1, 203.0.113.7, 127.0.0.1',
    })
    assert.equal(chained.status, 200)
    assert.deepEqual(headerOf(rig.echo.received.at(-1)!, 'x-forwarded-for'), ['203.0.113.7'])
    const forwarded = await ask(rig.proxy.port, '/public/c05', {
      forwarded: 'for=10.0.0.1, for="[2001:db8::7]:4711"',
    })
    assert.equal(forwarded.status, 200)
    assert.deepEqual(headerOf(rig.echo.received.at(-1)!, 'x-forwarded-for'), ['2001:db8::7'])
  })

  it('C11 refuses a check without the original method or URI, and matches the path without its query', async () => {
    for (const headers of [
      {},
      { 'x-original-uri': '/public' },
      { 'x-forwarded-method': 'GET' },
      { 'x-forwarded-uri': '/public', 'x-forwarded-method': 'GE T' },
      { ...caddyMeta('/public'), 'x-forwarded-proto': 'gopher' },
      { ...caddyMeta('/public'), 'x-forwarded-host': 'evil.example/x' },
      { ...caddyMeta('/public'), forwarded: 'host=evil.example' },
    ]) {
      const answer = await auth({ ...headers, ...JSON_ACCEPT })
      assert.equal(answer.status, 400, JSON.stringify(headers))
      assert.match(errorOf(answer), /metadata/)
      assert.equal(answer.headers['x-forwarded-user'], undefined)
    }
    // nginx sends $request_uri, query included: the query never makes a path public.
    const query = await auth({ ...nginxMeta('/admin?x=/public'), ...JSON_ACCEPT })
    assert.equal(query.status, 401)
    const withQuery = await auth({ ...nginxMeta('/public/x?next=/admin'), ...JSON_ACCEPT })
    assert.equal(withQuery.status, 200)
    // Public: every identity header is named, empty, so a front server replaces the client's.
    assert.equal(withQuery.headers['x-forwarded-user'], '')
    assert.equal(withQuery.headers['x-ssokit-assertion'], '')
    // The same through the Forwarded header, agreeing with X-Forwarded-Host.
    const agreeing = await auth({
      ...caddyMeta('/public'),
      forwarded: 'proto=http;host=localhost:8080',
    })
    assert.equal(agreeing.status, 200)
    const trace = await auth({ ...caddyMeta('/public', 'TRACE'), ...JSON_ACCEPT })
    assert.equal(trace.status, 405)
  })

  it('C06-C08 hold in forward mode: query, fragment, dot segments, encodings and anchoring', async () => {
    for (const uri of [
      '/api/private/x?path=/status',
      '/admin?public',
      '/admin#/public',
      '/public/../admin',
      '/public/%2e%2e/admin',
      '//admin',
      '/%61dmin',
      '/admin/public',
      '/publicity-secrets',
      '/api/publicadmin',
    ]) {
      const answer = await auth({ ...caddyMeta(uri), ...JSON_ACCEPT })
      assert.equal(answer.status, 401, uri)
    }
    for (const uri of [
      '/public%2f..%2fadmin',
      '/public/..%2fadmin',
      '/admin;x=1',
      '/admin%00',
      '/public/%252e%252e/admin',
      '/public\\..\\admin',
      '/public/%c0%af/admin',
      'http://localhost/public',
    ]) {
      const answer = await auth({ ...caddyMeta(uri), ...JSON_ACCEPT })
      assert.equal(answer.status, 400, uri)
    }
    assert.equal((await auth({ ...caddyMeta('/api/x/status'), ...JSON_ACCEPT })).status, 200)
    assert.equal((await auth({ ...caddyMeta('/_ssokit/login'), ...JSON_ACCEPT })).status, 200)
  })

  it('C12 returns after sign-in only to the public origin or an allowed domain', async () => {
    /** Signs in with `rd` (or the header oauth2-proxy set-ups send) and follows to the end. */
    const expect = async (rd: string, expected: string, header = false) => {
      const jar = new CookieJar()
      const start = await jar.fetch(
        `${rig.base}/_ssokit/login${header ? '' : `?rd=${encodeURIComponent(rd)}`}`,
        header ? { headers: { 'x-auth-request-redirect': rd } } : {},
      )
      assert.equal(start.status, 302, rd)
      const authorizeUrl = start.headers.get('location') ?? ''
      const { callback } = await finishLogin(rig.idp.issuer, authorizeUrl, 'alice', jar)
      assert.equal(callback.status, 302, rd)
      let location = new URL(callback.headers.get('location') ?? '', rig.base)
      if (location.pathname === '/_ssokit/continue') {
        const on = await fetch(location, { redirect: 'manual' })
        location = new URL(on.headers.get('location') ?? '')
      }
      assert.equal(location.href, expected, rd)
    }
    const home = `${rig.base}/`
    await expect(`${rig.base}/app/page?x=1#top`, `${rig.base}/app/page?x=1#top`)
    await expect('/app/relative?y=2', `${rig.base}/app/relative?y=2`)
    await expect('https://app.example.org/x', 'https://app.example.org/x')
    await expect('https://EXAMPLE.org/y', 'https://example.org/y')
    await expect('https://app.example.net:8443/z', 'https://app.example.net:8443/z')
    for (const rd of [
      'https://evilexample.org/',
      'https://example.org.evil.net/',
      'https://evil.net/?x=.example.org',
      'https://example.org:8443/',
      'https://app.example.net/',
      'https://example.org@evil.net/',
      'https://xn--exmple-cua.org/',
      'https://exämple.org/',
      '//evil.net/',
      '/\\evil.net/',
      'https:evil.net',
      'https:/\\evil.net',
      'https://evil.net\\@app.example.org/',
      'javascript:alert(1)',
      ' https://app.example.org/',
    ]) {
      await expect(rd, home)
    }
    await expect('https://app.example.org/h', 'https://app.example.org/h', true)
    await expect('https://evil.net/h', home, true)
    // The continue step checks again: it is no open redirect of its own.
    const direct = await fetch(
      `${rig.base}/_ssokit/continue?rd=${encodeURIComponent('https://evil.net/')}`,
      { redirect: 'manual' },
    )
    assert.equal(direct.status, 302)
    assert.equal(direct.headers.get('location'), home)
  })
})
