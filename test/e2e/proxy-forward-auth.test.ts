/**
 * Forward auth behind real front servers: Debian's nginx (`auth_request`) and Caddy
 * (`forward_auth`), each configured with the block docs/proxy.md shows, in front of an echo
 * application that records what it received, with `ssokit proxy` answering their checks and the
 * development provider signing users in.
 */
import assert from 'node:assert/strict'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CookieJar, startIdp, type RunningIdp } from '@ssokit/idp'
import { loadProxyConfig, startProxy, type RunningProxy } from '@ssokit/proxy'
import {
  freePort,
  headerOf,
  rawRequest,
  serviceToken,
  startEcho,
  type Echo,
  type Received,
} from '../../packages/proxy/test/support.js'
import {
  caddyConfig,
  documentedSnippet,
  frontPort,
  nginxConfig,
  startFrontServer,
  withPorts,
  type FrontServer,
  type FrontServerKind,
} from '../support/front-servers.js'
import { tempDir } from '../support/redis.js'
import { finishLogin } from '../support/session-redis.js'

const IDENTITY = [
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-preferred-username',
  'x-forwarded-groups',
  'x-ssokit-assertion',
]
const SPOOFED: Record<string, string> = {
  'X-Forwarded-User': 'mallory',
  'X-Forwarded-Email': 'mallory@evil.example',
  'X-Forwarded-Preferred-Username': 'mallory',
  'X-Forwarded-Groups': 'admin',
  'X-Ssokit-Assertion': 'forged',
  'X-Forwarded-Access-Token': 'forged',
  'Remote-User': 'mallory',
}
const SPOOFED_VALUES: ReadonlySet<string> = new Set(Object.values(SPOOFED))
const BROWSER = { accept: 'text/html,application/xhtml+xml', 'sec-fetch-mode': 'navigate' }
const SCRIPT = { accept: 'application/json' }

/** Headers whose values the client chose never reached the application. */
function assertNoSpoofed(received: Received): void {
  for (let i = 0; i + 1 < received.rawHeaders.length; i += 2) {
    const name = (received.rawHeaders[i] ?? '').toLowerCase().replaceAll('_', '-')
    const value = received.rawHeaders[i + 1] ?? ''
    assert.ok(
      !SPOOFED_VALUES.has(value),
      `${received.rawHeaders[i] ?? ''}: ${value} reached the application (${name})`,
    )
  }
  assert.deepEqual(headerOf(received, 'authorization'), [])
}

interface Stack {
  readonly front: FrontServer
  readonly proxy: RunningProxy
}

const stacks: Partial<Record<FrontServerKind, Stack>> = {}
let idp: RunningIdp
let echo: Echo

async function startStack(kind: FrontServerKind): Promise<Stack> {
  const snippet = await documentedSnippet(kind)
  // A taken port is retried with another: the proxy's public URL needs the port beforehand.
  let lastError: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await frontPort()
    const proxyPort = await freePort()
    const config = await loadProxyConfig({
      flags: {
        upstream: echo.origin,
        issuer: idp.issuer,
        'client-id': 'demo-app',
        'public-url': `http://localhost:${port}`,
        port: proxyPort,
        host: '127.0.0.1',
        'trusted-proxies': '127.0.0.1',
      },
      env: { OIDC_CLIENT_SECRET: 'demo-app-secret' },
      file: await rulesFile(),
    })
    const proxy = await startProxy(config, { onEvent: () => {} })
    const filled = withPorts(snippet, {
      front: port,
      proxy: proxy.port,
      app: Number(new URL(echo.origin).port),
    })
    const dir = tempDir(`ssokit-${kind}-conf-`)
    try {
      const front = await startFrontServer({
        kind,
        port,
        config: kind === 'nginx' ? nginxConfig(dir, filled) : caddyConfig(filled),
        ready: async () => {
          try {
            const answer = await fetch(`http://localhost:${port}/_ssokit/healthz`)
            return answer.status === 200 && (await answer.text()).includes('ok')
          } catch {
            return false
          }
        },
      })
      return { front, proxy }
    } catch (error) {
      lastError = error
      await proxy.close()
    }
  }
  throw lastError
}

let rules: string | undefined
async function rulesFile(): Promise<string> {
  if (rules !== undefined) return rules
  rules = join(tempDir('ssokit-fwd-rules-'), 'proxy.yaml')
  await writeFile(
    rules,
    [
      'rules:',
      '  - path: /public',
      '    public: true',
      '  - path: /admin',
      '    roles: [admin]',
    ].join('\n'),
  )
  return rules
}

before(async () => {
  idp = await startIdp({ port: 0, log: false })
  echo = await startEcho()
  const [nginx, caddy] = await Promise.allSettled([startStack('nginx'), startStack('caddy')])
  if (nginx.status === 'fulfilled') stacks.nginx = nginx.value
  if (caddy.status === 'fulfilled') stacks.caddy = caddy.value
  if (nginx.status === 'rejected') throw nginx.reason
  if (caddy.status === 'rejected') throw caddy.reason
})

after(async () => {
  // Each front server is stopped even when a test, or the other one's start, failed.
  await Promise.allSettled(
    Object.values(stacks).map(async (stack) => {
      await stack.front.stop()
      await stack.proxy.close()
    }),
  )
  await echo.close()
  await idp.close()
})

function stack(kind: FrontServerKind): Stack {
  const found = stacks[kind]
  assert.ok(found, `${kind} is running`)
  return found
}

/** The last request the application received, which must be for `path`. */
function lastFor(path: string): Received {
  const received = echo.received.at(-1)
  assert.ok(received, 'the application received a request')
  assert.equal(received.url, path)
  return received
}

/** A page navigation, as a browser sends it (Node's fetch always says `sec-fetch-mode: cors`). */
async function navigate(url: string): Promise<{ status: number; location: string }> {
  const target = new URL(url)
  const answer = await rawRequest(Number(target.port), [
    `GET ${target.pathname}${target.search} HTTP/1.1`,
    `Host: ${target.host}`,
    'Accept: text/html,application/xhtml+xml',
    'Sec-Fetch-Mode: navigate',
  ])
  return { status: answer.status, location: /^location: (.*)$/im.exec(answer.head)?.[1] ?? '' }
}

/** Signs `username` in the way a browser would: the protected page, the redirect, the provider. */
async function browserSignIn(front: FrontServer, path: string, username: string) {
  const jar = new CookieJar()
  const first = await navigate(`${front.origin}${path}`)
  assert.equal(first.status, 302, `${front.kind}: a browser without a session is redirected`)
  const login = new URL(first.location, front.origin)
  assert.equal(login.origin, front.origin)
  assert.equal(login.pathname, '/_ssokit/login')
  assert.equal(login.searchParams.get('rd'), `${front.origin}${path}`)
  const start = await jar.fetch(login, { headers: BROWSER })
  assert.equal(start.status, 302)
  const { callback } = await finishLogin(
    idp.issuer,
    start.headers.get('location') ?? '',
    username,
    jar,
  )
  assert.equal(callback.status, 302)
  assert.equal(
    new URL(callback.headers.get('location') ?? '', front.origin).href,
    `${front.origin}${path}`,
  )
  return jar
}

for (const kind of ['nginx', 'caddy'] as const) {
  describe(`forward auth behind real ${kind}`, () => {
    it('sends a browser without a session to sign in and answers a script with 401, the application untouched', async () => {
      const { front } = stack(kind)
      const count = echo.received.length
      const page = await navigate(`${front.origin}/app/page?x=1`)
      assert.equal(page.status, 302)
      const login = new URL(page.location, front.origin)
      assert.equal(login.pathname, '/_ssokit/login')
      assert.equal(login.searchParams.get('rd'), `${front.origin}/app/page?x=1`)
      const api = await fetch(`${front.origin}/app/data`, { headers: SCRIPT, redirect: 'manual' })
      assert.equal(api.status, 401)
      const forged = await fetch(`${front.origin}/app/data`, {
        headers: { ...SCRIPT, authorization: 'Bearer not-a-jwt' },
        redirect: 'manual',
      })
      assert.equal(forged.status, 401)
      assert.equal(echo.received.length, count, 'nothing reached the application')
    })

    it('signs a browser in through the front server; the application gets the identity headers', async () => {
      const { front } = stack(kind)
      const jar = await browserSignIn(front, '/app/signed-in?y=2', 'alice')
      const page = await jar.fetch(`${front.origin}/app/signed-in?y=2`, {
        headers: { ...SCRIPT, ...SPOOFED },
      })
      assert.equal(page.status, 200)
      const received = lastFor('/app/signed-in?y=2')
      assert.deepEqual(headerOf(received, 'x-forwarded-preferred-username'), ['alice'])
      assert.deepEqual(headerOf(received, 'x-forwarded-email'), ['alice@example.org'])
      assert.deepEqual(headerOf(received, 'x-forwarded-groups')[0]?.split(',').sort(), [
        'admin',
        'user',
      ])
      assert.equal(headerOf(received, 'x-ssokit-assertion').length, 1)
      assertNoSpoofed(received)
      // A rule needing a role: alice holds it, bob does not.
      assert.equal((await jar.fetch(`${front.origin}/admin/x`, { headers: SCRIPT })).status, 200)
      const bob = await browserSignIn(front, '/app/bob', 'bob')
      const count = echo.received.length
      assert.equal((await bob.fetch(`${front.origin}/admin/x`, { headers: SCRIPT })).status, 403)
      assert.equal(echo.received.length, count)
    })

    it('passes a request with a valid bearer token with its identity, and without the token', async () => {
      const { front } = stack(kind)
      const token = await serviceToken(idp.issuer)
      const answer = await fetch(`${front.origin}/app/api`, {
        headers: { ...SCRIPT, ...SPOOFED, authorization: `Bearer ${token}` },
      })
      assert.equal(answer.status, 200)
      const received = lastFor('/app/api')
      assert.deepEqual(headerOf(received, 'x-forwarded-user'), ['service-account-demo-app'])
      assertNoSpoofed(received)
    })

    it('C01 never lets spoofed identity headers reach the application, under any spelling', async () => {
      const { front } = stack(kind)
      // A public path: the application sees no identity at all.
      const answer = await rawRequest(front.port, [
        'GET /public/c01 HTTP/1.1',
        `Host: localhost:${front.port}`,
        ...Object.entries(SPOOFED).map(([name, value]) => `${name}: ${value}`),
        'x-forwarded-user: mallory',
        'X_Forwarded_User: mallory',
        'X-Forwarded_Groups: admin',
        'X-Original-URI: /admin',
        'X-Forwarded-Uri: /admin',
        'Authorization: Bearer forged',
      ])
      assert.equal(answer.status, 200)
      const received = lastFor('/public/c01')
      assertNoSpoofed(received)
      // Absent, or (Caddy 2.6 sets what the answer lacks to "") empty.
      for (let i = 0; i + 1 < received.rawHeaders.length; i += 2) {
        const name = (received.rawHeaders[i] ?? '').toLowerCase().replaceAll('_', '-')
        if (IDENTITY.includes(name)) assert.equal(received.rawHeaders[i + 1], '', name)
      }
    })

    it('C04 decides on the real request URI, whatever forwarding headers the client sends', async () => {
      const { front } = stack(kind)
      const count = echo.received.length
      for (const header of [
        'X-Original-URI',
        'X-Forwarded-Uri',
        'X-Original-URL',
        'X-Rewrite-URL',
      ]) {
        const answer = await fetch(`${front.origin}/admin/x`, {
          headers: { ...SCRIPT, [header]: '/public/x', 'X-Forwarded-Method': 'GET' },
          redirect: 'manual',
        })
        // The front server replaced or removed the client's header: a plain "not signed in".
        assert.equal(answer.status, 401, header)
      }
      assert.equal(echo.received.length, count, 'nothing reached the application')
      // Clients cannot call the check themselves through the front server.
      const direct = await fetch(`${front.origin}/_ssokit/auth`, {
        headers: { ...SCRIPT, 'X-Forwarded-Uri': '/admin', 'X-Forwarded-Method': 'GET' },
      })
      assert.equal(direct.status, 404)
    })

    it('lets public paths through without a session, and never a query into a public rule', async () => {
      const { front } = stack(kind)
      const answer = await fetch(`${front.origin}/public/page?x=1`, { headers: SCRIPT })
      assert.equal(answer.status, 200)
      assert.equal(await answer.text(), 'GET /public/page?x=1')
      const count = echo.received.length
      const query = await fetch(`${front.origin}/admin?/public`, {
        headers: SCRIPT,
        redirect: 'manual',
      })
      assert.equal(query.status, 401)
      assert.equal(echo.received.length, count)
    })
  })
}
