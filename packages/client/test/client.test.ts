import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'

import { SsoError } from '@ssokit/core'
import { startIdp, type RunningIdp } from '@ssokit/idp'

import { authFetch, clientCredentials, exchange, type TokenSource } from '../src/index.js'
import { basicCredentials } from '../src/provider.js'
import { renewAt } from '../src/expiry.js'
import { claimsOf, DEMO_APP, fakeJwt, json, startFixture, userToken } from './helpers.js'

function isCode(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof SsoError, `expected an SsoError, got ${String(error)}`)
    assert.equal(error.code, code)
    return true
  }
}

const tokenPosts = (idp: RunningIdp) =>
  idp.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/token')).length

describe('clientCredentials and exchange against the idp', () => {
  let idp: RunningIdp
  before(async () => {
    idp = await startIdp({ port: 0 })
  })
  after(() => idp.close())

  it('gets a service token for an audience at the token endpoint and at api-access/token', async () => {
    for (const apiAccess of [false, true]) {
      const source = clientCredentials({
        issuer: idp.issuer,
        ...DEMO_APP,
        audience: 'demo-api',
        apiAccess,
      })
      const claims = claimsOf(await source.token())
      assert.equal(claims.aud, 'demo-api')
      assert.equal(claims.sub, 'service-account-demo-app')
      const who = await source.identity()
      assert.equal(who.subject, 'service-account-demo-app')
      assert.deepEqual(who.audience, ['demo-api'])
      assert.equal(who.refreshable, false)
      assert.ok(who.expiresAt instanceof Date)
    }
    assert.ok(idp.requests.some((r) => r.path.endsWith('/api-access/token') && r.status === 200))
  })

  it('reuses a fresh token and does not ask again', async () => {
    const source = clientCredentials({ issuer: idp.issuer, ...DEMO_APP })
    const before = tokenPosts(idp)
    const [a, b] = await Promise.all([source.token(), source.token()])
    assert.equal(a, b)
    assert.equal(await source.token(), a)
    assert.equal(tokenPosts(idp) - before, 1)
  })

  it('reports a wrong secret as client_auth_failed', async () => {
    const source = clientCredentials({
      issuer: idp.issuer,
      clientId: 'demo-app',
      clientSecret: 'wrong',
    })
    await assert.rejects(source.token(), isCode('client_auth_failed'))
  })

  it('reports an unreachable provider as provider_unavailable after bounded retries', async () => {
    const closed = await startIdp({ port: 0 })
    const issuer = closed.issuer
    await closed.close()
    const source = clientCredentials({ issuer, ...DEMO_APP })
    await assert.rejects(source.token(), isCode('provider_unavailable'))
  })

  it('exchanges a user token for another audience, and refreshes the exchanged one', async () => {
    const subject: TokenSource = {
      token: () => Promise.resolve(user),
      identity: () => Promise.reject(new Error('not used')),
      logout: () => Promise.resolve(),
    }
    const user = await userToken(idp)
    let now = Date.now()
    const exchanged = exchange(
      subject,
      { issuer: idp.issuer, ...DEMO_APP, audience: 'demo-api', refreshable: true },
      { clock: () => now },
    )
    const first = await exchanged.token()
    assert.equal(claimsOf(first).aud, 'demo-api')
    assert.equal(claimsOf(first).sub, 'alice')
    assert.equal((await exchanged.identity()).refreshable, true)
    now += 24 * 3600 * 1000
    const before = idp.requests.length
    const second = await exchanged.token()
    assert.notEqual(second, first)
    assert.equal(claimsOf(second).aud, 'demo-api')
    assert.equal(idp.requests.length - before, 1, 'one refresh, no new exchange')
  })

  it('D09 client_secret_basic encodes the id and secret before Base64', async () => {
    assert.equal(
      basicCredentials('svc:a', 'p@ss:w+rd%/='),
      `Basic ${Buffer.from('svc%3Aa:p%40ss%3Aw%2Brd%25%2F%3D').toString('base64')}`,
    )
    const seen: string[] = []
    const fixture = await startFixture((req, res) => {
      seen.push(req.headers.authorization ?? '')
      json(res, 200, { access_token: fakeJwt({ sub: 'x' }), token_type: 'Bearer', expires_in: 60 })
    })
    try {
      await clientCredentials({
        issuer: fixture.url,
        clientId: 'svc:a',
        clientSecret: 'p@ss:w+rd%/=',
      }).token()
      assert.deepEqual(seen, [basicCredentials('svc:a', 'p@ss:w+rd%/=')])
      await clientCredentials({
        issuer: fixture.url,
        clientId: 'svc:a',
        clientSecret: 'p@ss:w+rd%/=',
        tokenEndpointAuth: 'client_secret_post',
      }).token()
      const last = fixture.requests.at(-1)!
      assert.equal(last.headers.authorization, undefined)
      assert.equal(new URLSearchParams(last.body).get('client_secret'), 'p@ss:w+rd%/=')
    } finally {
      await fixture.close()
    }
  })

  it('D10 refuses untrustworthy token-endpoint answers and follows no redirect', async () => {
    const elsewhere = await startFixture((_req, res) => {
      json(res, 200, {})
    })
    const answers: Record<string, (res: import('node:http').ServerResponse) => void> = {
      error: (res) => {
        json(res, 200, { error: 'invalid_grant' })
      },
      notJson: (res) => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end('<html>not json</html>')
      },
      noAccessToken: (res) => {
        json(res, 200, { token_type: 'Bearer', expires_in: 60 })
      },
      tokenType: (res) => {
        json(res, 200, { access_token: 'x', token_type: 'mac', expires_in: 60 })
      },
      expiresInString: (res) => {
        json(res, 200, { access_token: 'x', token_type: 'Bearer', expires_in: '3600' })
      },
      huge: (res) => {
        json(res, 200, { access_token: 'x'.repeat(10 * 1024 * 1024), token_type: 'Bearer' })
      },
      redirect: (res) => {
        res.writeHead(307, { location: `${elsewhere.url}/token` })
        res.end()
      },
    }
    let current = 'error'
    const fixture = await startFixture((_req, res) => {
      answers[current]!(res)
    })
    try {
      for (const name of Object.keys(answers)) {
        current = name
        const source = clientCredentials({ issuer: fixture.url, clientId: 'c', clientSecret: 's' })
        await assert.rejects(source.token(), isCode('token_response_invalid'), name)
      }
      assert.equal(elsewhere.requests.length, 0)
    } finally {
      await fixture.close()
      await elsewhere.close()
    }
  })

  it('D11 refuses exchange answers without issued_token_type, of type N_A, or for another audience', async () => {
    const subject: TokenSource = {
      token: () => Promise.resolve(fakeJwt({ iss: 'x', sub: 'alice' })),
      identity: () => Promise.reject(new Error('not used')),
      logout: () => Promise.resolve(),
    }
    const access = 'urn:ietf:params:oauth:token-type:access_token'
    const answers: Record<string, unknown>[] = [
      { access_token: fakeJwt({ aud: 'api' }), token_type: 'Bearer', expires_in: 60 },
      { access_token: 'opaque', token_type: 'N_A', issued_token_type: access, expires_in: 60 },
      { access_token: fakeJwt({ aud: 'other' }), token_type: 'Bearer', issued_token_type: access },
    ]
    let current = 0
    const fixture = await startFixture((_req, res) => {
      json(res, 200, answers[current])
    })
    try {
      for (current = 0; current < answers.length; current++) {
        const source = exchange(subject, {
          issuer: fixture.url,
          clientId: 'c',
          clientSecret: 's',
          audience: 'api',
        })
        await assert.rejects(source.token(), isCode('token_response_invalid'), `answer ${current}`)
      }
    } finally {
      await fixture.close()
    }
  })

  it('D13 refuses plain http except on loopback, and a discovery document of another issuer', async () => {
    assert.throws(
      () =>
        clientCredentials({
          issuer: 'http://sso.example.org/realms/x',
          clientId: 'c',
          clientSecret: 's',
        }),
      { name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' },
    )
    const insecure = await startFixture(
      (_req, res) => {
        json(res, 200, {})
      },
      (origin) => ({ issuer: origin, token_endpoint: 'http://sso.example.org/token' }),
    )
    const impostor = await startFixture(
      (_req, res) => {
        json(res, 200, {})
      },
      () => ({
        issuer: 'https://sso.example.org',
        token_endpoint: 'https://sso.example.org/token',
      }),
    )
    try {
      await assert.rejects(
        clientCredentials({ issuer: insecure.url, clientId: 'c', clientSecret: 's' }).token(),
        isCode('insecure_transport'),
      )
      await assert.rejects(
        clientCredentials({ issuer: impostor.url, clientId: 'c', clientSecret: 's' }).token(),
        isCode('token_response_invalid'),
      )
      assert.equal(insecure.requests.filter((r) => r.path === '/token').length, 0)
    } finally {
      await insecure.close()
      await impostor.close()
    }
  })

  it('D15 renews at receipt time + expires_in - margin, falls back to exp - iat, and distrusts a clock that went back', async () => {
    const received = 1_000_000_000_000
    assert.equal(renewAt(received, 300, undefined), received + 300_000 - 60_000)
    assert.equal(renewAt(received, 60, undefined), received + 30_000, 'margin at most half')
    const iat = 2_000_000_000 // the provider's clock is far off ours: only the lifetime counts
    assert.equal(renewAt(received, undefined, { iat, exp: iat + 300 }), received + 240_000)
    assert.equal(renewAt(received, undefined, undefined), received, 'no lifetime: used once')

    let now = Date.now()
    const source = clientCredentials({ issuer: idp.issuer, ...DEMO_APP }, { clock: () => now })
    const first = await source.token()
    const lifetime = (claimsOf(first).exp as number) - (claimsOf(first).iat as number)
    now += (lifetime - 61) * 1000
    assert.equal(await source.token(), first, 'still fresh before the margin')
    now += 2000
    const second = await source.token()
    assert.notEqual(second, first, 'renewed inside the margin')
    now -= 3600 * 1000
    assert.notEqual(await source.token(), second, 'a clock before receipt proves nothing')
  })

  it('D17 never takes an ID token for the access token', async () => {
    const id = fakeJwt({ typ: 'ID', aud: 'c', sub: 'alice' })
    let answer: Record<string, unknown> = { access_token: id, id_token: id, token_type: 'Bearer' }
    const fixture = await startFixture((_req, res) => {
      json(res, 200, answer)
    })
    try {
      const source = clientCredentials({ issuer: fixture.url, clientId: 'c', clientSecret: 's' })
      await assert.rejects(source.token(), isCode('token_response_invalid'))
      answer = {
        access_token: fakeJwt({ typ: 'ID', sub: 'alice' }),
        token_type: 'Bearer',
        expires_in: 60,
      }
      await assert.rejects(source.token(), isCode('token_response_invalid'))
    } finally {
      await fixture.close()
    }
  })
})

describe('authFetch', () => {
  let idp: RunningIdp
  before(async () => {
    idp = await startIdp({ port: 0 })
  })
  after(() => idp.close())

  async function resource(refuse: (token: string, count: number) => boolean) {
    const seen: string[] = []
    const server = createServer((req, res) => {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '')
      seen.push(token)
      res.writeHead(refuse(token, seen.length) ? 401 : 200, { 'content-type': 'text/plain' })
      res.end(refuse(token, seen.length) ? 'no' : 'yes')
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/items`,
      seen,
      close: () =>
        new Promise<void>((resolve) =>
          server.close(() => {
            resolve()
          }),
        ),
    }
  }

  it('sends the bearer token; after a 401 renews once and retries once, a body included', async () => {
    const source = clientCredentials({ issuer: idp.issuer, ...DEMO_APP })
    let refused: string | undefined
    const api = await resource((token) => {
      refused ??= token
      return token === refused
    })
    try {
      const response = await authFetch(source)(api.url, { method: 'POST', body: 'payload' })
      assert.equal(response.status, 200)
      assert.equal(await response.text(), 'yes')
      assert.equal(api.seen.length, 2)
      assert.notEqual(api.seen[0], api.seen[1])
    } finally {
      await api.close()
    }
  })

  it('answers a second 401 as it is, never a loop', async () => {
    const source = clientCredentials({ issuer: idp.issuer, ...DEMO_APP })
    const api = await resource(() => true)
    try {
      const response = await authFetch(source)(api.url)
      assert.equal(response.status, 401)
      assert.equal(api.seen.length, 2)
    } finally {
      await api.close()
    }
  })
})
