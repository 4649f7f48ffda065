import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import {
  CookieJar,
  IdpConfigError,
  loadIdpConfigFile,
  loginWithPassword,
  LoginRejectedError,
  resolveIdpConfig,
  startIdp,
  type RunningIdp,
} from '@ssokit/idp'
import { authorizeUrl, codeLogin, DEMO_APP, oidc, pkce, post, REDIRECT } from './helpers.js'

describe('configuration validation', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-idp-config-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('names the file and the key path of a bad value', async () => {
    const file = join(dir, 'realm.yaml')
    await writeFile(
      file,
      'realm: test\nusers:\n  - username: a\n    password: a\n  - username: b\n    password: 12\n',
    )
    await assert.rejects(startIdp({ port: 0, config: file }), (error: unknown) => {
      assert.ok(error instanceof IdpConfigError)
      assert.equal(error.source, file)
      assert.equal(error.path, 'users[1].password')
      assert.ok(error.message.startsWith(`${file}: users[1].password: `))
      return true
    })
  })

  it('refuses an issuer path that is not a plain path', async () => {
    for (const issuerPath of ['auth', '//x', '/a//b', '/a?b', '/a b']) {
      await assert.rejects(startIdp({ port: 0, issuerPath }), TypeError, issuerPath)
    }
  })

  it('rejects unknown keys, bad grants, unknown role targets and broken syntax', async () => {
    const cases: [unknown, string][] = [
      [{ users: [{ username: 'a', password: 'a', mail: 'x' }] }, 'users[0].mail'],
      [{ clients: [{ client_id: 'c', grant_types: ['password'] }] }, 'clients[0].grant_types[0]'],
      [
        { clients: [{ client_id: 'c', grant_types: ['client_credentials'] }] },
        'clients[0].grant_types',
      ],
      [{ clients: [{ client_id: 'c', secret: 's' }] }, 'clients[0].redirect_uris'],
      [
        { clients: [{ client_id: 'c', redirect_uris: ['http://localhost:*/a*b'] }] },
        'clients[0].redirect_uris[0]',
      ],
      [
        { users: [{ username: 'a', password: 'a', roles: { nope: ['x'] } }] },
        'users[0].roles.nope',
      ],
      [{ access_token_ttl: -1 }, 'access_token_ttl'],
      [{ realm: 'a b' }, 'realm'],
      [
        { clients: [{ client_id: 'c', token_endpoint_auth_method: 'tls_client_auth' }] },
        'clients[0].token_endpoint_auth_method',
      ],
      [
        { clients: [{ client_id: 'c', token_endpoint_auth_method: 'private_key_jwt' }] },
        'clients[0].jwks',
      ],
      [
        { clients: [{ client_id: 'c', token_endpoint_auth_method: 'client_secret_post' }] },
        'clients[0].secret',
      ],
      [
        { clients: [{ client_id: 'c', jwks: { keys: [{ kty: 'EC', d: 'private' }] } }] },
        'clients[0].jwks.keys[0].d',
      ],
      [
        {
          token_endpoint_auth_methods: ['private_key_jwt'],
          clients: [{ client_id: 'c', redirect_uris: ['http://localhost:*/*'] }],
        },
        'clients[0].token_endpoint_auth_method',
      ],
      [{ token_endpoint_auth_methods: [] }, 'token_endpoint_auth_methods'],
      [
        {
          clients: [
            { client_id: 'c', redirect_uris: ['http://localhost:*/*'], consent_required: 'yes' },
          ],
        },
        'clients[0].consent_required',
      ],
    ]
    for (const [config, path] of cases) {
      assert.throws(
        () => resolveIdpConfig(config, 'inline'),
        (error: unknown) => error instanceof IdpConfigError && error.path === path,
        path,
      )
    }
    const broken = join(dir, 'broken.json')
    await writeFile(broken, '{ "realm": ')
    await assert.rejects(startIdp({ port: 0, config: broken }), (error: unknown) => {
      assert.ok(error instanceof IdpConfigError)
      assert.match(error.message, /broken\.json: is not valid JSON/)
      return true
    })
  })

  it('checks the Kerberos section and TOTP secrets, resolving the keytab against the file', async () => {
    const user = { username: 'carol', password: 'pw' }
    const bad = (config: Record<string, unknown>, path: string) => {
      assert.throws(
        () => resolveIdpConfig({ users: [user], ...config }),
        (error: unknown) => error instanceof IdpConfigError && error.path === path,
      )
    }
    bad({ kerberos: { realm: 'EXAMPLE.ORG' } }, 'kerberos.keytab')
    bad({ kerberos: { keytab: 'k', realm: 'EXAMPLE.ORG', extra: 1 } }, 'kerberos.extra')
    bad({ kerberos: { keytab: 'k', realm: 'EXAMPLE.ORG', service: 'HTTP/x' } }, 'kerberos.service')
    bad(
      {
        kerberos: { keytab: 'k', realm: 'EXAMPLE.ORG', principals: { 'x@EXAMPLE.ORG': 'nobody' } },
      },
      'kerberos.principals["x@EXAMPLE.ORG"]',
    )
    bad({ users: [{ ...user, otp_secret: 'not base32!' }] }, 'users[0].otp_secret')
    bad({ otp_max_attempts: 0 }, 'otp_max_attempts')
    const file = join(dir, 'kerberos.yaml')
    await writeFile(
      file,
      'users:\n  - username: carol\n    password: pw\n    otp_secret: jbswy3dpehpk3pxp\nkerberos:\n  keytab: FILE:http.keytab\n  realm: EXAMPLE.ORG\n',
    )
    const config = await loadIdpConfigFile(file)
    assert.equal(config.kerberos?.keytab, `FILE:${join(dir, 'http.keytab')}`)
    assert.equal(config.kerberos.service, '')
    assert.equal(config.users[0]?.otp_secret, 'JBSWY3DPEHPK3PXP')
    assert.equal(config.otpMaxAttempts, 3)
  })

  it('accepts a JSON file with its own realm and users', async () => {
    const file = join(dir, 'realm.json')
    await writeFile(
      file,
      JSON.stringify({
        realm: 'physics',
        users: [{ username: 'carol', password: 'pw', roles: { web: ['editor'] } }],
        clients: [{ client_id: 'web', secret: 'web-secret', redirect_uris: [REDIRECT] }],
      }),
    )
    const idp = await startIdp({ port: 0, config: file })
    try {
      assert.match(idp.issuer, /\/auth\/realms\/physics$/)
      const { tokens } = await codeLogin(idp, {
        username: 'carol',
        password: 'pw',
        client: { id: 'web', secret: 'web-secret' },
      })
      assert.ok(tokens.access_token)
    } finally {
      await idp.close()
    }
  })
})

describe('refused requests', () => {
  let idp: RunningIdp
  before(async () => {
    idp = await startIdp({ port: 0 })
  })
  after(() => idp.close())

  it('re-renders the login form on a wrong password and issues no code', async () => {
    const jar = new CookieJar()
    const url = authorizeUrl(idp, { clientId: 'demo-app', challenge: pkce().challenge })
    await assert.rejects(
      loginWithPassword({
        issuer: idp.issuer,
        authorizeUrl: url,
        username: 'alice',
        password: 'nope',
        cookies: jar,
      }),
      (error: unknown) =>
        error instanceof LoginRejectedError && /Invalid username or password/.test(error.message),
    )
    // Drive it by hand too, to see the page itself.
    let res = await jar.fetch(url)
    const loginPage = new URL(res.headers.get('location')!, idp.issuer).href
    res = await jar.fetch(loginPage)
    const html = await res.text()
    assert.match(html, /id="kc-form-login"/)
    assert.match(html, /id="kc-login"/)
    const posted = await jar.fetch(loginPage, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: '<b>alice</b>', password: 'nope' }),
    })
    assert.equal(posted.status, 200)
    assert.equal(posted.headers.get('location'), null)
    const again = await posted.text()
    assert.match(again, /id="kc-error-message"/)
    assert.match(again, /value="&lt;b&gt;alice&lt;\/b&gt;"/)
    assert.ok(!again.includes('<b>alice</b>'))
    assert.ok(!idp.requests.some((r) => r.status === 303 && r.path.endsWith('/callback')))
  })

  it('refuses an unknown client at the authorization and token endpoints', async () => {
    const res = await fetch(authorizeUrl(idp, { clientId: 'ghost', challenge: pkce().challenge }), {
      redirect: 'manual',
    })
    assert.equal(res.status, 400)
    assert.equal(res.headers.get('location'), null)
    assert.match(await res.text(), /invalid_client/)
    const token = await post(oidc(idp, 'token'), { grant_type: 'client_credentials' }, [
      'ghost',
      'x',
    ])
    assert.equal(token.status, 401)
    assert.equal(token.body.error, 'invalid_client')
    assert.equal(token.body.access_token, undefined)
  })

  it('refuses a wrong client secret', async () => {
    for (const url of [oidc(idp, 'token'), `${idp.issuer}/api-access/token`]) {
      const { status, body } = await post(url, {
        grant_type: 'client_credentials',
        client_id: DEMO_APP.id,
        client_secret: 'wrong',
      })
      assert.equal(status, 401, url)
      assert.equal(body.error, 'invalid_client')
      assert.equal(body.access_token, undefined)
    }
  })

  it('refuses a redirect URI that is not registered', async () => {
    for (const redirectUri of [
      'https://evil.example/callback',
      'http://localhost:80@evil.example/callback',
      'http://localhost.evil.example:8080/callback',
    ]) {
      const res = await fetch(
        authorizeUrl(idp, { clientId: 'demo-app', redirectUri, challenge: pkce().challenge }),
        { redirect: 'manual' },
      )
      assert.equal(res.status, 400, redirectUri)
      assert.equal(res.headers.get('location'), null)
      assert.match(await res.text(), /invalid_redirect_uri/)
    }
  })

  it('accepts a loopback redirect on any port', async () => {
    const { tokens } = await codeLogin(idp, { redirectUri: 'http://127.0.0.1:53111/any/path?x=1' })
    assert.ok(tokens.access_token)
  })

  it('refuses a reused authorization code', async () => {
    const { verifier, challenge } = pkce()
    const login = await loginWithPassword({
      issuer: idp.issuer,
      authorizeUrl: authorizeUrl(idp, { clientId: 'demo-app', challenge }),
      username: 'alice',
      password: 'alice',
    })
    const form = {
      grant_type: 'authorization_code',
      code: login.code!,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    }
    const first = await post(oidc(idp, 'token'), form, [DEMO_APP.id, DEMO_APP.secret])
    assert.equal(first.status, 200)
    const second = await post(oidc(idp, 'token'), form, [DEMO_APP.id, DEMO_APP.secret])
    assert.equal(second.status, 400)
    assert.equal(second.body.error, 'invalid_grant')
    assert.equal(second.body.access_token, undefined)
  })

  it('requires PKCE and checks the verifier', async () => {
    const login = await loginWithPassword({
      issuer: idp.issuer,
      authorizeUrl: authorizeUrl(idp, { clientId: 'demo-app' }),
      username: 'alice',
      password: 'alice',
    })
    assert.equal(login.code, undefined)
    const location = new URL(login.location)
    assert.equal(location.searchParams.get('error'), 'invalid_request')
    assert.match(location.searchParams.get('error_description') ?? '', /PKCE/)

    const { challenge } = pkce()
    const ok = await loginWithPassword({
      issuer: idp.issuer,
      authorizeUrl: authorizeUrl(idp, { clientId: 'demo-app', challenge }),
      username: 'alice',
      password: 'alice',
    })
    const wrong = await post(
      oidc(idp, 'token'),
      {
        grant_type: 'authorization_code',
        code: ok.code!,
        redirect_uri: REDIRECT,
        code_verifier: pkce().verifier,
      },
      [DEMO_APP.id, DEMO_APP.secret],
    )
    assert.equal(wrong.status, 400)
    assert.equal(wrong.body.error, 'invalid_grant')
    assert.equal(wrong.body.access_token, undefined)
  })

  it('answers outside the realm with 404', async () => {
    const res = await fetch(idp.issuer.replace('/auth/realms/dev', '/auth/realms/other/x'))
    assert.equal(res.status, 404)
  })
})
