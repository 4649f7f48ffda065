import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import {
  approveDevice,
  DEFAULT_IDP_CONFIG,
  loginWithPassword,
  startIdp,
  type RunningIdp,
} from '@ssokit/idp'
import {
  authorizeUrl,
  codeLogin,
  decode,
  DEMO_API,
  DEMO_APP,
  oidc,
  pkce,
  post,
  REDIRECT,
  startReceiver,
  type Receiver,
} from './helpers.js'

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const app = [DEMO_APP.id, DEMO_APP.secret] as const

describe('idp grants and endpoints', () => {
  let idp: RunningIdp
  let receiver: Receiver

  before(async () => {
    receiver = await startReceiver()
    idp = await startIdp({
      port: 0,
      config: {
        ...DEFAULT_IDP_CONFIG,
        clients: [
          ...(DEFAULT_IDP_CONFIG.clients ?? []),
          {
            client_id: 'bc-app',
            secret: 'bc-app-secret',
            redirect_uris: ['http://127.0.0.1:*/*'],
            post_logout_redirect_uris: ['http://127.0.0.1:*/*'],
            backchannel_logout_uri: receiver.url,
          },
        ],
      },
    })
  })
  after(async () => {
    await idp.close()
    await receiver.close()
  })

  it('serves Keycloak-shaped discovery', async () => {
    const res = await fetch(`${idp.issuer}/.well-known/openid-configuration`)
    assert.equal(res.status, 200)
    const d = (await res.json()) as Record<string, unknown>
    assert.match(idp.issuer, /^http:\/\/127\.0\.0\.1:\d+\/auth\/realms\/dev$/)
    assert.equal(d.issuer, idp.issuer)
    for (const [key, path] of [
      ['authorization_endpoint', 'auth'],
      ['token_endpoint', 'token'],
      ['jwks_uri', 'certs'],
      ['userinfo_endpoint', 'userinfo'],
      ['end_session_endpoint', 'logout'],
      ['device_authorization_endpoint', 'auth/device'],
      ['introspection_endpoint', 'token/introspect'],
      ['revocation_endpoint', 'revoke'],
    ]) {
      assert.equal(d[key!], oidc(idp, path!), key)
    }
    assert.deepEqual(d.code_challenge_methods_supported, ['S256'])
    assert.ok((d.grant_types_supported as string[]).includes(TOKEN_EXCHANGE))
  })

  it('runs authorization code + PKCE through the login form with plain fetch', async () => {
    const { tokens } = await codeLogin(idp)
    assert.equal(tokens.token_type, 'Bearer')
    assert.ok(tokens.access_token && tokens.id_token && tokens.refresh_token)
    const jwks = createRemoteJWKSet(new URL(oidc(idp, 'certs')))
    const at = await jwtVerify(tokens.access_token, jwks, {
      issuer: idp.issuer,
      audience: 'demo-app',
    })
    assert.equal(at.payload.sub, 'alice')
    const id = await jwtVerify(tokens.id_token, jwks, { issuer: idp.issuer, audience: 'demo-app' })
    assert.equal(id.payload.typ, 'ID')
    assert.equal(id.payload.email, 'alice@example.org')
  })

  it('answers userinfo for an access token and refuses a bad one', async () => {
    const { tokens } = await codeLogin(idp)
    const res = await fetch(oidc(idp, 'userinfo'), {
      headers: { authorization: `Bearer ${tokens.access_token!}` },
    })
    assert.equal(res.status, 200)
    const info = (await res.json()) as Record<string, unknown>
    assert.equal(info.sub, 'alice')
    assert.equal(info.email, 'alice@example.org')
    const bad = await fetch(oidc(idp, 'userinfo'), { headers: { authorization: 'Bearer x.y.z' } })
    assert.equal(bad.status, 401)
    assert.match(bad.headers.get('www-authenticate') ?? '', /invalid_token/)
  })

  it('refreshes tokens', async () => {
    const { tokens } = await codeLogin(idp)
    const { status, body } = await post(
      oidc(idp, 'token'),
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! },
      app,
    )
    assert.equal(status, 200)
    assert.ok(body.access_token)
    assert.notEqual(body.access_token, tokens.access_token)
    assert.equal(decode(body.access_token).payload.sub, 'alice')
    assert.equal(decode(body.access_token).payload.aud, 'demo-app')
  })

  it('keeps an offline refresh token working after logout, unlike a session one', async () => {
    const logoutAndRefresh = async (scope: string) => {
      const { tokens, cookies } = await codeLogin(idp, { scope })
      const logout = new URL(oidc(idp, 'logout'))
      logout.searchParams.set('id_token_hint', tokens.id_token!)
      assert.equal((await cookies.fetch(logout)).status, 303)
      return post(
        oidc(idp, 'token'),
        { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! },
        app,
      )
    }
    const offline = await logoutAndRefresh('openid offline_access')
    assert.equal(offline.status, 200, JSON.stringify(offline.body))
    assert.equal(decode(offline.body.access_token!).payload.sub, 'alice')
    const online = await logoutAndRefresh('openid profile')
    assert.equal(online.status, 400)
    assert.equal(online.body.error, 'invalid_grant')
    assert.equal(online.body.access_token, undefined)
  })

  it('logs out non-interactively with id_token_hint and post_logout_redirect_uri', async () => {
    const { tokens, cookies } = await codeLogin(idp)
    const logout = new URL(oidc(idp, 'logout'))
    logout.searchParams.set('id_token_hint', tokens.id_token!)
    logout.searchParams.set('post_logout_redirect_uri', 'http://localhost:7777/bye')
    logout.searchParams.set('state', 'st')
    const res = await cookies.fetch(logout)
    assert.equal(res.status, 303)
    assert.equal(res.headers.get('location'), 'http://localhost:7777/bye?state=st')
    // The session is gone: a new authorization request shows the login form again.
    const again = await loginWithPassword({
      issuer: idp.issuer,
      authorizeUrl: authorizeUrl(idp, { clientId: 'demo-app', challenge: pkce().challenge }),
      username: 'alice',
      password: 'alice',
      cookies,
    })
    assert.ok(again.code)
    const forms = idp.requests.filter(
      (r) => r.path.includes('/login-actions/') && r.method === 'POST',
    )
    assert.ok(forms.length > 0)
    // An access token of the ended session no longer introspects as active.
    const intro = await post(oidc(idp, 'token/introspect'), { token: tokens.access_token! }, app)
    assert.equal(intro.body.active, false)
  })

  it('refuses a post_logout_redirect_uri that is not registered', async () => {
    const { tokens, cookies } = await codeLogin(idp)
    const logout = new URL(oidc(idp, 'logout'))
    logout.searchParams.set('id_token_hint', tokens.id_token!)
    logout.searchParams.set('post_logout_redirect_uri', 'https://evil.example/')
    const res = await cookies.fetch(logout)
    assert.equal(res.status, 400)
    assert.equal(res.headers.get('location'), null)
  })

  it('delivers a signed back-channel logout token', async () => {
    const client = { id: 'bc-app', secret: 'bc-app-secret' }
    const { tokens, cookies } = await codeLogin(idp, {
      client,
      redirectUri: 'http://127.0.0.1:9999/cb',
    })
    const sid = decode(tokens.id_token!).payload.sid
    assert.equal(typeof sid, 'string')
    const logout = new URL(oidc(idp, 'logout'))
    logout.searchParams.set('id_token_hint', tokens.id_token!)
    const res = await cookies.fetch(logout)
    assert.equal(res.status, 303)
    const token = await receiver.next()
    const jwks = createRemoteJWKSet(new URL(oidc(idp, 'certs')))
    const { payload, protectedHeader } = await jwtVerify(token, jwks, {
      issuer: idp.issuer,
      audience: 'bc-app',
      algorithms: ['RS256'],
    })
    assert.equal(protectedHeader.alg, 'RS256')
    assert.equal(payload.sub, 'alice')
    assert.equal(payload.sid, sid)
    assert.ok(typeof payload.jti === 'string' && typeof payload.iat === 'number')
    assert.deepEqual(payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} })
    assert.equal(payload.nonce, undefined)
  })

  it('issues client credentials tokens on the token endpoint', async () => {
    const { status, body } = await post(oidc(idp, 'token'), { grant_type: 'client_credentials' }, [
      DEMO_API.id,
      DEMO_API.secret,
    ])
    assert.equal(status, 200)
    const { payload } = decode(body.access_token!)
    assert.equal(payload.sub, 'service-account-demo-api')
    assert.equal(payload.aud, 'demo-api')
    assert.equal(payload.azp, 'demo-api')
  })

  it('issues client credentials tokens for an audience on both endpoints', async () => {
    for (const url of [`${idp.issuer}/api-access/token`, oidc(idp, 'token')]) {
      const { status, body } = await post(url, {
        grant_type: 'client_credentials',
        client_id: DEMO_APP.id,
        client_secret: DEMO_APP.secret,
        audience: 'demo-api',
      })
      assert.equal(status, 200, url)
      const { payload } = decode(body.access_token!)
      assert.equal(payload.aud, 'demo-api')
      assert.equal(payload.azp, 'demo-app')
      assert.equal(payload.sub, 'service-account-demo-app')
      assert.deepEqual(payload.cern_roles, ['reader'])
    }
    const unknown = await post(`${idp.issuer}/api-access/token`, {
      grant_type: 'client_credentials',
      client_id: DEMO_APP.id,
      client_secret: DEMO_APP.secret,
      audience: 'nobody',
    })
    assert.equal(unknown.status, 400)
    assert.equal(unknown.body.error, 'invalid_target')
    assert.equal(unknown.body.access_token, undefined)
  })

  it('runs the device flow approved through the verification page', async () => {
    const start = await post(oidc(idp, 'auth/device'), {
      client_id: 'demo-cli',
      scope: 'openid profile',
    })
    assert.equal(start.status, 200)
    const { device_code, user_code, verification_uri } = start.body as Record<string, string>
    assert.equal(verification_uri, `${idp.issuer}/device`)
    const poll = () =>
      post(oidc(idp, 'token'), {
        grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
        device_code: device_code!,
        client_id: 'demo-cli',
      })
    const pending = await poll()
    assert.equal(pending.body.error, 'authorization_pending')
    await approveDevice({
      issuer: idp.issuer,
      userCode: user_code!,
      username: 'bob',
      password: 'bob',
    })
    const done = await poll()
    assert.equal(done.status, 200)
    const { payload } = decode(done.body.access_token!)
    assert.equal(payload.sub, 'bob')
    assert.equal(payload.aud, 'demo-cli')
    assert.deepEqual(payload.cern_roles, [])
  })

  it('exchanges a token for another audience, with a refresh token on request', async () => {
    const { tokens } = await codeLogin(idp)
    const plain = await post(
      oidc(idp, 'token'),
      { grant_type: TOKEN_EXCHANGE, subject_token: tokens.access_token!, audience: 'demo-api' },
      app,
    )
    assert.equal(plain.status, 200)
    assert.equal(plain.body.issued_token_type, 'urn:ietf:params:oauth:token-type:access_token')
    assert.equal(plain.body.refresh_token, undefined)
    const { payload } = decode(plain.body.access_token!)
    assert.equal(payload.aud, 'demo-api')
    assert.equal(payload.azp, 'demo-app')
    assert.equal(payload.sub, 'alice')
    assert.deepEqual(payload.cern_roles, ['admin', 'user'])

    const withRefresh = await post(
      oidc(idp, 'token'),
      {
        grant_type: TOKEN_EXCHANGE,
        subject_token: tokens.access_token!,
        audience: 'demo-api',
        requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token',
      },
      app,
    )
    assert.equal(withRefresh.status, 200)
    assert.equal(
      withRefresh.body.issued_token_type,
      'urn:ietf:params:oauth:token-type:refresh_token',
    )
    const refreshed = await post(
      oidc(idp, 'token'),
      { grant_type: 'refresh_token', refresh_token: withRefresh.body.refresh_token! },
      app,
    )
    assert.equal(refreshed.status, 200)
    assert.equal(decode(refreshed.body.access_token!).payload.aud, 'demo-api')

    const forged = await post(
      oidc(idp, 'token'),
      {
        grant_type: TOKEN_EXCHANGE,
        subject_token: `${tokens.access_token!}x`,
        audience: 'demo-api',
      },
      app,
    )
    assert.equal(forged.status, 400)
    assert.equal(forged.body.error, 'invalid_grant')
    assert.equal(forged.body.access_token, undefined)
  })

  it('introspects access and refresh tokens', async () => {
    const { tokens } = await codeLogin(idp)
    const at = await post(oidc(idp, 'token/introspect'), { token: tokens.access_token! }, [
      DEMO_API.id,
      DEMO_API.secret,
    ])
    assert.equal(at.status, 200)
    assert.equal(at.body.active, true)
    assert.equal(at.body.sub, 'alice')
    assert.equal(at.body.username, 'alice')
    const rt = await post(oidc(idp, 'token/introspect'), { token: tokens.refresh_token! }, app)
    assert.equal(rt.body.active, true)
    const junk = await post(oidc(idp, 'token/introspect'), { token: 'nope' }, app)
    assert.equal(junk.body.active, false)
    const noAuth = await post(oidc(idp, 'token/introspect'), { token: tokens.access_token! })
    assert.equal(noAuth.status, 401)
    assert.equal(noAuth.body.error, 'invalid_client')
  })

  it('revokes access and refresh tokens', async () => {
    const { tokens } = await codeLogin(idp)
    const introspect = (token: string) => post(oidc(idp, 'token/introspect'), { token }, app)
    assert.equal(
      (await post(oidc(idp, 'revoke'), { token: tokens.access_token! }, app)).status,
      200,
    )
    assert.equal((await introspect(tokens.access_token!)).body.active, false)
    const userinfo = await fetch(oidc(idp, 'userinfo'), {
      headers: { authorization: `Bearer ${tokens.access_token!}` },
    })
    assert.equal(userinfo.status, 401)
    assert.equal(
      (await post(oidc(idp, 'revoke'), { token: tokens.refresh_token! }, app)).status,
      200,
    )
    assert.equal((await introspect(tokens.refresh_token!)).body.active, false)
    const refresh = await post(
      oidc(idp, 'token'),
      { grant_type: 'refresh_token', refresh_token: tokens.refresh_token! },
      app,
    )
    assert.equal(refresh.body.error, 'invalid_grant')
  })

  it('logs every request with its status', async () => {
    await fetch(`${idp.issuer}/nowhere`)
    const last = idp.requests.at(-1)
    assert.deepEqual(last, { method: 'GET', path: '/auth/realms/dev/nowhere', status: 404 })
    assert.ok(idp.requests.some((r) => r.path.endsWith('/protocol/openid-connect/token')))
    assert.equal(REDIRECT.startsWith('http://localhost:'), true)
  })
})
