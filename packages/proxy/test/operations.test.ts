import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { CookieJar, DEFAULT_IDP_CONFIG, startIdp } from '@ssokit/idp'
import { loadProxyConfig, startProxy } from '@ssokit/proxy'
import { RedisSessionStore } from '@ssokit/redis'
import { register } from 'prom-client'
import { startRedis } from '../../../test/support/redis.js'
import { freePort, signIn, sink, startEcho, startRig, type Rig } from './support.js'

const SCRAPE_TOKEN = 'scrape-token-0123456789abcdef'

/** A stream keeping every access log line, parsed. */
function logCapture(): { stream: Writable; lines: Record<string, unknown>[]; text: () => string } {
  let text = ''
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString()
      done()
    },
  })
  return {
    stream,
    get lines() {
      return text
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>)
    },
    text: () => text,
  }
}

/** The value of one sample of the exposition text, or 0 when absent. */
function sample(text: string, series: string): number {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1))
  }
  return 0
}

async function token(rig: Rig): Promise<string> {
  const response = await fetch(`${rig.idp.issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'demo-app',
      client_secret: 'demo-app-secret',
    }),
  })
  const body = (await response.json()) as { access_token?: string }
  assert.ok(body.access_token)
  return body.access_token
}

/** Polls the access log until a line for `path` appears (lines are written when answers close). */
async function lineFor(
  log: ReturnType<typeof logCapture>,
  path: string,
): Promise<Record<string, unknown>> {
  for (let i = 0; i < 100; i++) {
    const line = log.lines.find((entry) => entry.path === path)
    if (line !== undefined) return line
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  throw new Error(`no access log line for ${path}`)
}

describe('ssokit proxy: metrics and access log', () => {
  let dir: string
  let rig: Rig
  const log = logCapture()
  let scrape: () => Promise<string>

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-ops-'))
    const tokenFile = join(dir, 'scrape-token')
    await writeFile(tokenFile, `${SCRAPE_TOKEN}\n`)
    const file = join(dir, 'proxy.yaml')
    await writeFile(file, ['rules:', '  - path: /public', '    public: true'].join('\n'))
    rig = await startRig({
      file,
      // Access tokens of 3 s: a session is refreshed after 2 s.
      idpConfig: { ...DEFAULT_IDP_CONFIG, access_token_ttl: 3 },
      flags: { 'metrics-token-file': tokenFile, 'upstream-timeout': 1 },
      accessLog: log.stream,
    })
    scrape = async () => {
      const response = await fetch(`${rig.base}/_ssokit/metrics`, {
        headers: { authorization: `Bearer ${SCRAPE_TOKEN}` },
      })
      assert.equal(response.status, 200)
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain/)
      return response.text()
    }
  })
  after(async () => {
    await rig.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('serves /_ssokit/metrics only to the scrape token', async () => {
    const url = `${rig.base}/_ssokit/metrics`
    const none = await fetch(url)
    assert.equal(none.status, 401)
    assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer realm="metrics"/)
    const wrong = await fetch(url, { headers: { authorization: `Bearer ${SCRAPE_TOKEN}x` } })
    assert.equal(wrong.status, 401)
    assert.equal((await fetch(url, { method: 'POST' })).status, 405)
    const text = await scrape()
    assert.match(text, /^# TYPE ssokit_proxy_requests_total counter$/m)
    assert.match(text, /^# TYPE ssokit_proxy_request_duration_seconds histogram$/m)
    assert.match(text, /^ssokit_proxy_logins_total\{result="failure"\} 0$/m)
    // The proxy's registry is its own: nothing of it in prom-client's global one.
    assert.doesNotMatch(await register.metrics(), /ssokit_proxy/)
  })

  it('counts requests by outcome, upstream errors, logins and refreshes', async () => {
    const forwarded = 'ssokit_proxy_requests_total{outcome="forwarded",status_class="2xx"}'
    const denied = 'ssokit_proxy_requests_total{outcome="unauthenticated",status_class="4xx"}'
    const timeouts = 'ssokit_proxy_upstream_errors_total{kind="timeout"}'
    const successes = 'ssokit_proxy_logins_total{result="success"}'
    const failures = 'ssokit_proxy_logins_total{result="failure"}'
    const refreshed = 'ssokit_proxy_session_refreshes_total{result="success"}'
    const before = await scrape()
    assert.equal((await fetch(`${rig.base}/public/a`)).status, 200)
    const json = { accept: 'application/json' }
    assert.equal((await fetch(`${rig.base}/private`, { headers: json })).status, 401)
    rig.echo.silent.add('/public/slow')
    assert.equal((await fetch(`${rig.base}/public/slow`, { headers: json })).status, 504)
    const jar = await signIn(rig, 'alice')
    const bad = await fetch(`${rig.base}/_ssokit/callback?state=${'x'.repeat(43)}&code=forged`)
    assert.ok(bad.status >= 400)
    // Past the access token's refresh time, the next request refreshes the session.
    await new Promise((resolve) => setTimeout(resolve, 2200))
    assert.equal((await jar.fetch(`${rig.base}/app`, { headers: json })).status, 200)
    const after = await scrape()
    assert.equal(sample(after, forwarded) - sample(before, forwarded), 2)
    assert.equal(sample(after, denied) - sample(before, denied), 1)
    assert.equal(sample(after, timeouts) - sample(before, timeouts), 1)
    assert.equal(sample(after, successes) - sample(before, successes), 1)
    assert.equal(sample(after, failures) - sample(before, failures), 1)
    assert.ok(sample(after, refreshed) - sample(before, refreshed) >= 1, 'a refresh was counted')
    assert.ok(
      sample(after, 'ssokit_proxy_request_duration_seconds_count{outcome="forwarded"}') >= 2,
    )
  })

  it('writes one JSON line per request without tokens, cookies or the query', async () => {
    const bearer = await token(rig)
    const jar = await signIn(rig, 'alice', new CookieJar())
    const cookie = jar.header(`${rig.base}/`)
    assert.match(cookie, /ssokit/)
    const secret = 'SECRETCODE123'
    const response = await fetch(`${rig.base}/logged/path?code=${secret}&state=abc`, {
      headers: { authorization: `Bearer ${bearer}`, cookie: `${cookie}; app=${secret}` },
    })
    assert.equal(response.status, 200)
    const viaCookie = await fetch(`${rig.base}/logged/cookie?code=${secret}`, {
      headers: { cookie, accept: 'application/json' },
    })
    assert.equal(viaCookie.status, 200)
    const line = await lineFor(log, '/logged/path')
    assert.equal(line.method, 'GET')
    assert.equal(line.status, 200)
    assert.equal(line.outcome, 'forwarded')
    assert.equal(line.user, 'service-account-demo-app')
    assert.equal(line.via, 'bearer')
    assert.equal(line.msg, 'request')
    assert.equal(typeof line.duration_ms, 'number')
    assert.equal(typeof line.time, 'string')
    const cookieLine = await lineFor(log, '/logged/cookie')
    assert.equal(cookieLine.via, 'session')
    const text = log.text()
    for (const forbidden of [
      bearer,
      bearer.split('.')[2] ?? bearer,
      secret,
      'code=',
      '?',
      ...cookie.split('; ').map((pair) => pair.split('=').slice(1).join('=')),
    ]) {
      assert.ok(!text.includes(forbidden), `the access log holds ${forbidden.slice(0, 20)}`)
    }
    // Anything else the client sends never shapes a line: an odd method is OTHER.
    const odd = await fetch(`${rig.base}/public/odd`, { method: 'PROPFIND' })
    await odd.arrayBuffer()
    assert.equal((await lineFor(log, '/public/odd')).method, 'OTHER')
  })
})

describe('ssokit proxy: readyz names what is down', () => {
  it('answers 503 with the reason when Redis or the provider is down, 200 when both answer', async () => {
    const idp = await startIdp({ port: 0, log: false })
    const echo = await startEcho()
    const redis = await startRedis()
    const store = new RedisSessionStore({ url: redis.url })
    const port = await freePort()
    const config = await loadProxyConfig({
      flags: {
        upstream: echo.origin,
        issuer: idp.issuer,
        'client-id': 'demo-app',
        'public-url': `http://localhost:${port}`,
        port,
        'redis-url': redis.url,
      },
      env: {
        OIDC_CLIENT_SECRET: 'demo-app-secret',
        SSOKIT_SESSION_SECRET: 'a-session-secret-of-at-least-32-chars',
      },
    })
    const proxy = await startProxy(config, { store, onEvent: () => {}, accessLog: sink() })
    const readyz = async () => {
      const response = await fetch(`${proxy.url}/_ssokit/readyz`)
      return { status: response.status, body: (await response.json()) as Record<string, string> }
    }
    try {
      assert.deepEqual(await readyz(), {
        status: 200,
        body: { status: 'ready', provider: 'ok', store: 'ok' },
      })
      await redis.stop()
      const storeDown = await readyz()
      assert.equal(storeDown.status, 503)
      assert.equal(storeDown.body.store, 'unavailable')
      assert.equal(storeDown.body.provider, 'ok')
      assert.equal(storeDown.body.reason, 'session_store_unavailable')
      await redis.restart()
      await idp.close()
      let providerDown = await readyz()
      // The store client reconnects in the background, and a probe of the provider is reused
      // for a moment: poll until both settle.
      for (
        let i = 0;
        i < 100 && (providerDown.body.store !== 'ok' || providerDown.body.provider === 'ok');
        i++
      ) {
        await new Promise((resolve) => setTimeout(resolve, 100))
        providerDown = await readyz()
      }
      assert.equal(providerDown.status, 503)
      assert.equal(providerDown.body.provider, 'unavailable')
      assert.equal(providerDown.body.store, 'ok')
      assert.equal(providerDown.body.reason, 'provider_unavailable')
    } finally {
      await proxy.close()
      await store.close()
      await echo.close()
      await idp.close().catch(() => undefined)
      await redis.stop()
    }
  })
})
