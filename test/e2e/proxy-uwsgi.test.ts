/**
 * A Python application under Debian's uWSGI with its default 4 KiB request buffer, behind
 * `ssokit proxy`: a user with 500 groups signs in, and a service with a 35 kB bearer token calls
 * it. The proxy takes the big SSO request (up to 64 KiB of headers) and sends the application
 * only short identity headers, so uWSGI needs no `--buffer-size`. The same token sent straight
 * to uWSGI is refused by uWSGI itself, which is the failure the proxy removes.
 */
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { CookieJar, DEFAULT_IDP_CONFIG, startIdp, type RunningIdp } from '@ssokit/idp'
import type { RunningProxy } from '@ssokit/proxy'
import { finishLogin } from '../support/session-redis.js'
import { startProxyFor } from '../support/proxy.js'
import { startUwsgi, type RunningUwsgi } from '../support/uwsgi.js'

/** Role names as long as real group names (`cern-it-...-members`). */
function roles(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `it-dep-grp-${String(i).padStart(4, '0')}-members`)
}

const MANY = roles(500)
/** uWSGI's default `--buffer-size`: the whole request head must fit in it. */
const UWSGI_BUFFER = 4096
const TOO_BIG = /invalid HTTP request size \(max 4096\)/

interface Seen {
  readonly path: string
  readonly headers: Record<string, string>
}

let idp: RunningIdp
let uwsgi: RunningUwsgi
let proxy: RunningProxy
let adfs: RunningProxy
let token = ''

/** Signs `username` in through a proxy the way a browser does; the jar holds the session. */
async function signIn(base: string, username: string): Promise<CookieJar> {
  const jar = new CookieJar()
  const start = await jar.fetch(`${base}/_ssokit/login?returnTo=/`)
  assert.equal(start.status, 302)
  const { callback } = await finishLogin(
    idp.issuer,
    start.headers.get('location') ?? '',
    username,
    jar,
  )
  assert.equal(callback.status, 302)
  return jar
}

async function seen(response: Response): Promise<Seen> {
  assert.equal(response.status, 200)
  return (await response.json()) as Seen
}

/** Bytes of the request head uWSGI parsed, rebuilt from what the application saw. */
function headBytes(headers: Record<string, string>): number {
  return Object.entries(headers).reduce((sum, [k, v]) => sum + k.length - 5 + v.length + 4, 0)
}

/** A GET with `authorization` straight to `origin`: the status, or the socket error. */
function direct(origin: string, authorization: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(`${origin}/whoami`, { headers: { authorization } }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', (error: NodeJS.ErrnoException) => {
      resolve(error.code ?? error.message)
    })
    req.end()
  })
}

let base = ''
let adfsBase = ''

before(async () => {
  idp = await startIdp({
    port: 0,
    log: false,
    config: {
      ...DEFAULT_IDP_CONFIG,
      users: [
        ...(DEFAULT_IDP_CONFIG.users ?? []),
        {
          username: 'carol',
          password: 'carol',
          name: 'Carol Manygroups',
          email: 'carol@example.org',
          roles: { '*': MANY },
        },
      ],
      clients: [
        ...(DEFAULT_IDP_CONFIG.clients ?? []),
        {
          client_id: 'many-roles',
          secret: 'many-roles-secret',
          grant_types: ['client_credentials'],
          roles: { 'demo-app': MANY },
        },
      ],
    },
  })
  uwsgi = await startUwsgi()
  ;({ proxy, base } = await startProxyFor(idp.issuer, uwsgi.origin))
  ;({ proxy: adfs, base: adfsBase } = await startProxyFor(idp.issuer, uwsgi.origin, {
    flags: { 'header-preset': 'shibboleth-adfs' },
  }))
  const response = await fetch(`${idp.issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'many-roles',
      client_secret: 'many-roles-secret',
      audience: 'demo-app',
    }),
  })
  token = ((await response.json()) as { access_token: string }).access_token
})

after(async () => {
  await proxy.close()
  await adfs.close()
  await uwsgi.stop()
  await idp.close()
})

describe('ssokit proxy in front of uWSGI with its default 4 KiB buffer', () => {
  it('a user with 500 groups signs in and the Python app gets the identity headers', async () => {
    const jar = await signIn(base, 'carol')
    const { path, headers } = await seen(
      await jar.fetch(`${base}/whoami`, { headers: { accept: 'application/json' } }),
    )
    assert.equal(path, '/whoami')
    assert.equal(headers.HTTP_X_FORWARDED_PREFERRED_USERNAME, 'carol')
    assert.equal(headers.HTTP_X_FORWARDED_EMAIL, 'carol@example.org')
    assert.match(headers.HTTP_X_FORWARDED_USER ?? '', /^\S+$/)
    const groups = (headers.HTTP_X_FORWARDED_GROUPS ?? '').split(',')
    // Whole entries, in order, bounded: the first of the sorted roles, never a cut name.
    assert.ok(groups.length > 10 && groups.length < MANY.length, `${groups.length} groups`)
    assert.deepEqual(groups, [...MANY].sort().slice(0, groups.length))
    assert.ok((headers.HTTP_X_SSOKIT_ASSERTION ?? '').split('.').length === 3)
    assert.equal(headers.HTTP_COOKIE, undefined, 'the proxy cookie reached the application')
    assert.ok(headBytes(headers) < UWSGI_BUFFER, `${headBytes(headers)} bytes of headers`)
  })

  it('a 35 kB bearer token with 500 roles passes through the proxy to the app', async () => {
    assert.ok(token.length > 32 * 1024, `${token.length} characters`)
    const { headers } = await seen(
      await fetch(`${base}/api/data`, { headers: { authorization: `Bearer ${token}` } }),
    )
    assert.equal(headers.HTTP_X_FORWARDED_USER, 'service-account-many-roles')
    assert.equal(headers.HTTP_AUTHORIZATION, undefined)
    assert.ok((headers.HTTP_X_FORWARDED_GROUPS ?? '').startsWith('it-dep-grp-0000-members,'))
  })

  it('the same token sent straight to uWSGI is refused: the request does not fit its buffer', async () => {
    const outcome = await direct(uwsgi.origin, `Bearer ${token}`)
    assert.notEqual(outcome, 200)
    // uWSGI says why on its log, which may come a moment after it dropped the connection.
    for (let i = 0; i < 50 && !TOO_BIG.test(uwsgi.log()); i++) {
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    assert.match(uwsgi.log(), TOO_BIG, String(outcome))
    // A small request still works, so it was the size, not the server.
    assert.equal(await direct(uwsgi.origin, 'Bearer short'), 200)
  })

  it('shibboleth-adfs: the app reads HTTP_ADFS_LOGIN, _EMAIL, _FULLNAME and _GROUP', async () => {
    const jar = await signIn(adfsBase, 'carol')
    const { headers } = await seen(
      await jar.fetch(`${adfsBase}/`, { headers: { accept: 'application/json' } }),
    )
    assert.equal(headers.HTTP_ADFS_LOGIN, 'carol')
    assert.equal(headers.HTTP_ADFS_EMAIL, 'carol@example.org')
    assert.equal(headers.HTTP_ADFS_FULLNAME, 'Carol Manygroups')
    const groups = (headers.HTTP_ADFS_GROUP ?? '').split(';')
    assert.deepEqual(groups, [...MANY].sort().slice(0, groups.length))
    assert.ok(headBytes(headers) < UWSGI_BUFFER, `${headBytes(headers)} bytes of headers`)
  })
})
