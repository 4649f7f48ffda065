/**
 * tsgauth's environment variables wherever a migrating deployment sets them: no setting silently
 * ignored, `OIDC_SESSION_AUTH_ALLOWED` with tsgauth's meaning, the bearer settings of a session
 * application, and no silent default to CERN.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import {
  createBearerAuthenticator,
  createSessionAuth,
  fromRequest,
  loadConfig,
  loadSessionConfig,
  SsoTypeError,
  type Authenticator,
  type SsoEvent,
} from '@ssokit/core'
import { startIdp, type RunningIdp } from '@ssokit/idp'

import { captureStderr, closedPort } from '../stderr.js'

const BASE = { OIDC_CLIENT_ID: 'demo-api', OIDC_ISSUER: 'https://sso.example.org/realms/x' }
const SESSION = {
  SSOKIT_SESSION_SECRET: 'a-session-secret-of-at-least-32-characters',
  SSOKIT_PUBLIC_URL: 'https://app.example.org',
  OIDC_CLIENT_SECRET: 'demo-app-secret',
}

/** The warnings `loadConfig` reports for an environment, as `name reason -> message`. */
function warningsOf(env: Record<string, string | undefined>): SsoEvent[] {
  const events: SsoEvent[] = []
  loadConfig({ ...BASE, ...env }, { onEvent: (event) => events.push(event) })
  for (const event of events) {
    assert.equal(event.type, 'config_warning')
    assert.equal(event.level, 'warn')
  }
  return events
}

function only(env: Record<string, string | undefined>): SsoEvent {
  const events = warningsOf(env)
  assert.equal(events.length, 1, JSON.stringify(events))
  const [event] = events
  assert.ok(event)
  return event
}

describe('unknown and unused environment variables', () => {
  test('a misspelt name is named with the likely intended one', () => {
    for (const [name, intended] of [
      ['OIDC_CLIENTID', 'OIDC_CLIENT_ID'],
      ['OIDC_ISUER', 'OIDC_ISSUER'],
      ['OIDC_ISSUER_URL', 'OIDC_ISSUER'],
      ['OIDC_JWKS_URL', 'OIDC_JWKS_URI'],
      ['TSGAUTH_ALLOWED_ALG', 'TSGAUTH_ALLOWED_ALGS'],
      ['SSOKIT_ALLOWED_ALGORITHMS', 'SSOKIT_ALLOWED_ALGS'],
      ['SSOKIT_CLIENT_ID', 'OIDC_CLIENT_ID'],
      ['ODIC_SESSION_LIFETIME', 'OIDC_SESSION_LIFETIME'],
      ['OIDC_SESSION_LIFE_TIME', 'OIDC_SESSION_LIFETIME'],
      ['SSOKIT_ROLE_CLAIM', 'SSOKIT_ROLES_CLAIM'],
    ] as const) {
      const event = only({ [name]: 'x' })
      assert.equal(event.reason, 'env_unknown', name)
      assert.equal(event.name, name)
      assert.equal(
        event.message,
        `${name} is not a setting ssokit reads, so it is ignored: did you mean ${intended}?`,
      )
    }
    const far = only({ SSOKIT_FROBNICATE: '1' })
    assert.equal(far.message, 'SSOKIT_FROBNICATE is not a setting ssokit reads, so it is ignored.')
  })

  test("tsgauth's names ssokit has no use for say why, and what to set instead", () => {
    const cases: [string, RegExp][] = [
      ['OIDC_TOKEN_URI', /discovery document/],
      ['OIDC_AUTH_URI', /discovery document/],
      ['OIDC_LOGOUT_URI', /discovery document/],
      ['OIDC_ALLOW_TOKEN_REQUEST', /set OIDC_SESSION_AUTH_ALLOWED/],
      ['OIDC_SESSION_CLAIMS_LIFETIME', /set OIDC_SESSION_LIFETIME/],
      ['OIDC_REDIS_HOST', /set OIDC_SESSION_STORE_HOST/],
      ['OIDC_SESSION_COOKIE_SAMESITE', /SameSite=Lax/],
      ['CERNSSO_TOKEN_DIR', /TSGAUTH_AUTHDIR/],
      ['TSGAUTH_CLIENT_ID', /set OIDC_CLIENT_ID/],
    ]
    for (const [name, why] of cases) {
      const event = only({ [name]: 'x' })
      assert.equal(event.reason, 'env_not_used', name)
      assert.equal(event.name, name)
      assert.match(event.message, new RegExp(`^${name} is ignored: `))
      assert.match(event.message, why)
    }
  })

  test("the client's cache variables, tsgauth's among them, are known names", () => {
    for (const name of [
      'SSOKIT_HOME',
      'SSOKIT_CLIENT_SECRET',
      'TSGAUTH_AUTHDIR',
      'TSGAUTH_LOGLEVEL',
    ]) {
      const events: unknown[] = []
      loadConfig({ ...BASE, [name]: 'x' }, { onEvent: (event) => events.push(event) })
      assert.deepEqual(events, [], name)
    }
  })

  test('known names and other variables are not reported', () => {
    assert.deepEqual(
      warningsOf({
        PATH: '/usr/bin',
        HOME: '/home/x',
        MY_OIDC_THING: 'x',
        OIDC_JWKS_URI: 'https://sso.example.org/certs',
        SSOKIT_REDIS_URL: 'redis://127.0.0.1',
        SSOKIT_CLOCK_TOLERANCE: '60',
        TSGAUTH_ALLOWED_ALGS: 'RS256',
        OIDC_SESSION_STORE_TYPE: 'memory',
        OIDC_CLIENT_SECRET: 'x',
        UNSET: undefined,
        OIDC_UNSET: undefined,
      }),
      [],
    )
  })

  test('TSGAUTH_OIDC_PREFIX: unprefixed and wrongly prefixed names are reported', () => {
    const events: SsoEvent[] = []
    const options = loadConfig(
      {
        TSGAUTH_OIDC_PREFIX: 'MYAPP_',
        MYAPP_OIDC_CLIENT_ID: 'demo-api',
        MYAPP_OIDC_ISSUER: 'https://sso.example.org',
        OIDC_JWKS_URI: 'https://sso.example.org/certs',
        MYAPP_OIDC_CLIENTID: 'x',
        MYAPP_SSOKIT_CLOCK_TOLERANCE: '60',
        MYAPP_DATABASE_URL: 'postgres://',
      },
      { onEvent: (event) => events.push(event) },
    )
    assert.equal(options.clientId, 'demo-api')
    assert.equal(options.jwksUri, undefined, 'the unprefixed name is not read')
    assert.deepEqual(
      events.map((e) => [e.name, e.reason, e.message]),
      [
        [
          'MYAPP_OIDC_CLIENTID',
          'env_unknown',
          'MYAPP_OIDC_CLIENTID is not a setting ssokit reads, so it is ignored: did you mean MYAPP_OIDC_CLIENT_ID?',
        ],
        [
          'MYAPP_SSOKIT_CLOCK_TOLERANCE',
          'env_prefixed',
          'MYAPP_SSOKIT_CLOCK_TOLERANCE is ignored: TSGAUTH_OIDC_PREFIX applies to OIDC_ names only: did you mean SSOKIT_CLOCK_TOLERANCE?',
        ],
        [
          'OIDC_JWKS_URI',
          'env_prefixed',
          'OIDC_JWKS_URI is ignored because TSGAUTH_OIDC_PREFIX is "MYAPP_": did you mean MYAPP_OIDC_JWKS_URI?',
        ],
      ],
    )
  })

  test('loadConfig says that OIDC_SESSION_AUTH_ALLOWED=true gets no browser sessions from it', () => {
    const event = only({ OIDC_SESSION_AUTH_ALLOWED: 'True' })
    assert.equal(event.reason, 'env_ignored')
    assert.equal(event.name, 'OIDC_SESSION_AUTH_ALLOWED')
    assert.match(event.message, /loadConfig configures bearer tokens only/)
    assert.match(event.message, /loadSessionConfig/)
    assert.deepEqual(warningsOf({ OIDC_SESSION_AUTH_ALLOWED: 'false' }), [])
  })

  test('without a hook, each warning is printed once, also when the configuration fails', () => {
    const stderr = captureStderr()
    try {
      assert.throws(
        () => loadConfig({ OIDC_CLIENTID: 'demo-api', OIDC_ISSUER: BASE.OIDC_ISSUER }),
        /OIDC_CLIENT_ID is not set/,
      )
      loadConfig({ ...BASE, OIDC_TOKEN_URI: 'x', OIDC_AUTH_URI: 'y' })
    } finally {
      stderr.restore()
    }
    assert.deepEqual(stderr.lines, [
      'ssokit warn: OIDC_CLIENTID is not a setting ssokit reads, so it is ignored: did you mean OIDC_CLIENT_ID? [env_unknown]',
      "ssokit warn: OIDC_AUTH_URI is ignored: ssokit reads the provider's endpoints from its discovery document (OIDC_ISSUER). [env_not_used]",
      "ssokit warn: OIDC_TOKEN_URI is ignored: ssokit reads the provider's endpoints from its discovery document (OIDC_ISSUER). [env_not_used]",
    ])
  })

  test('a failing hook never stops start-up', () => {
    const options = loadConfig(
      { ...BASE, OIDC_CLIENTID: 'x' },
      {
        onEvent: () => {
          throw new Error('broken hook')
        },
      },
    )
    assert.equal(options.clientId, 'demo-api')
  })
})

describe('loadSessionConfig', () => {
  test('OIDC_SESSION_AUTH_ALLOWED unset or false: bearer tokens only, as in tsgauth', () => {
    for (const allowed of [undefined, 'false', '0', 'no', 'OFF']) {
      const config = loadSessionConfig(
        { ...BASE, OIDC_SESSION_AUTH_ALLOWED: allowed },
        { onEvent: () => assert.fail('nothing to warn about') },
      )
      assert.equal(config.sessionAuthAllowed, false, allowed)
      assert.equal(config.auth, undefined)
      // No client secret, session secret or public URL is needed to accept bearer tokens.
      assert.deepEqual({ ...config.bearer }, { issuer: BASE.OIDC_ISSUER, clientId: 'demo-api' })
      assert.ok(Object.isFrozen(config))
    }
  })

  test('session variables set while sessions are off are named in a warning', () => {
    const events: SsoEvent[] = []
    const config = loadSessionConfig(
      { ...BASE, ...SESSION, OIDC_SESSION_LIFETIME: '3600' },
      { onEvent: (event) => events.push(event) },
    )
    assert.equal(config.sessionAuthAllowed, false)
    assert.equal(events.length, 1)
    const [event] = events
    assert.equal(event?.reason, 'env_ignored')
    assert.equal(
      event.name,
      'OIDC_CLIENT_SECRET,OIDC_SESSION_LIFETIME,SSOKIT_SESSION_SECRET,SSOKIT_PUBLIC_URL',
    )
    assert.match(
      event.message,
      /^OIDC_CLIENT_SECRET, OIDC_SESSION_LIFETIME, SSOKIT_SESSION_SECRET, SSOKIT_PUBLIC_URL are ignored: OIDC_SESSION_AUTH_ALLOWED is not true, so browsers are not signed in/,
    )
    assert.match(event.message, /Set OIDC_SESSION_AUTH_ALLOWED=true/)
  })

  test('OIDC_SESSION_AUTH_ALLOWED true: session options, with the bearer settings', () => {
    for (const allowed of ['true', 'True', '1', 'yes', 'on']) {
      const config = loadSessionConfig(
        {
          ...BASE,
          ...SESSION,
          OIDC_SESSION_AUTH_ALLOWED: allowed,
          OIDC_JWKS_URI: 'https://sso.example.org/certs',
          TSGAUTH_ALLOWED_ALGS: 'RS256,ES256',
          SSOKIT_CLOCK_TOLERANCE: '120',
          SSOKIT_TOKEN_TYPE: 'jwt',
          SSOKIT_AUDIENCE: 'https://api.example.org',
          SSOKIT_ROLES_CLAIM: 'groups',
          SSOKIT_USERNAME_CLAIM: 'upn',
        },
        { onEvent: () => assert.fail('nothing to warn about') },
      )
      assert.ok(config.sessionAuthAllowed, allowed)
      assert.equal(config.auth.roles, 'groups')
      assert.equal(config.auth.usernameClaim, 'upn')
      assert.deepEqual(
        { ...config.auth.bearer },
        {
          jwksUri: 'https://sso.example.org/certs',
          algorithms: ['RS256', 'ES256'],
          clockTolerance: 120,
          tokenType: 'jwt',
          audience: ['https://api.example.org'],
        },
      )
      assert.equal(config.bearer.jwksUri, 'https://sso.example.org/certs')
      assert.equal(config.bearer.roles, 'groups')
    }
    // SSOKIT_ALLOWED_ALGS wins, as for loadConfig.
    const ssokit = loadSessionConfig({
      ...BASE,
      ...SESSION,
      OIDC_SESSION_AUTH_ALLOWED: 'true',
      SSOKIT_ALLOWED_ALGS: 'ES256',
      TSGAUTH_ALLOWED_ALGS: 'ALL',
    })
    assert.ok(ssokit.sessionAuthAllowed)
    assert.deepEqual(ssokit.auth.bearer?.algorithms, ['ES256'])
    assert.throws(
      () => loadSessionConfig({ ...BASE, OIDC_SESSION_AUTH_ALLOWED: 'maybe' }),
      (e: unknown) =>
        e instanceof SsoTypeError &&
        /^OIDC_SESSION_AUTH_ALLOWED must be true or false/.test(e.message),
    )
  })

  test('OIDC_ISSUER is required unless CERN is asked for', () => {
    assert.throws(
      () => loadSessionConfig({ OIDC_CLIENT_ID: 'demo-app' }),
      (e: unknown) =>
        e instanceof SsoTypeError &&
        e.code === 'ERR_MISSING_OPTION' &&
        e.message.startsWith('OIDC_ISSUER is not set'),
    )
    for (const config of [
      loadSessionConfig({ OIDC_CLIENT_ID: 'demo-app', SSOKIT_PRESET: 'cern' }),
      loadSessionConfig({ OIDC_CLIENT_ID: 'demo-app' }, { preset: 'cern' }),
    ]) {
      assert.equal(config.bearer.issuer, 'https://auth.cern.ch/auth/realms/cern')
    }
  })

  test('TSGAUTH_OIDC_PREFIX applies to every OIDC_ name', () => {
    const config = loadSessionConfig(
      {
        TSGAUTH_OIDC_PREFIX: 'MYAPP_',
        MYAPP_OIDC_CLIENT_ID: 'demo-app',
        MYAPP_OIDC_ISSUER: BASE.OIDC_ISSUER,
        MYAPP_OIDC_CLIENT_SECRET: 'secret',
        MYAPP_OIDC_SESSION_AUTH_ALLOWED: 'true',
        MYAPP_OIDC_SESSION_LIFETIME: '600',
        MYAPP_OIDC_AUTH_ROUTE_PREFIX: '/login',
        MYAPP_OIDC_SESSION_STORE_TYPE: 'redis',
        MYAPP_OIDC_SESSION_STORE_PORT: '6390',
        SSOKIT_SESSION_SECRET: SESSION.SSOKIT_SESSION_SECRET,
        SSOKIT_PUBLIC_URL: SESSION.SSOKIT_PUBLIC_URL,
      },
      { onEvent: () => assert.fail('nothing to warn about') },
    )
    assert.ok(config.sessionAuthAllowed)
    assert.equal(config.auth.clientId, 'demo-app')
    assert.equal(config.auth.clientSecret, 'secret')
    assert.equal(config.auth.sessionLifetime, 600)
    assert.equal(config.auth.prefix, '/login')
    assert.deepEqual(config.store, { type: 'redis', host: 'localhost', port: 6390 })
  })
})

describe('the bearer settings of a session application reach its verifier', () => {
  let idp: RunningIdp
  let dir: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-env-'))
    idp = await startIdp({ port: 0, keys: join(dir, 'keys.json'), log: false })
  })
  after(async () => {
    await idp.close()
    await rm(dir, { recursive: true, force: true })
  })

  async function serviceToken(): Promise<string> {
    const response = await fetch(`${idp.issuer}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${btoa('demo-app:demo-app-secret')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    })
    return ((await response.json()) as { access_token: string }).access_token
  }

  function env(extra: Record<string, string>, sessions: boolean): Record<string, string> {
    return {
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENT_ID: 'demo-app',
      ...(sessions ? { ...SESSION, OIDC_SESSION_AUTH_ALLOWED: 'true' } : {}),
      ...extra,
    }
  }

  async function outcome(sessions: boolean, extra: Record<string, string>): Promise<string> {
    const config = loadSessionConfig(env(extra, sessions), { onEvent: () => {} })
    const request = fromRequest(
      new Request('https://app.example.org/api', {
        headers: { authorization: `Bearer ${await serviceToken()}` },
      }),
    )
    const subjectOf = async (auth: Authenticator): Promise<string> => {
      try {
        return (await auth.authenticate(request)).subject
      } catch (error) {
        return (error as { code: string }).code
      }
    }
    if (!config.sessionAuthAllowed) {
      return subjectOf(createBearerAuthenticator({ ...config.bearer, onEvent: () => {} }))
    }
    const auth = createSessionAuth({ ...config.auth, onEvent: () => {} })
    try {
      return await subjectOf(auth)
    } finally {
      await auth.close()
    }
  }

  test('OIDC_JWKS_URI and TSGAUTH_ALLOWED_ALGS / SSOKIT_ALLOWED_ALGS, with and without sessions', async () => {
    const closed = `http://127.0.0.1:${await closedPort()}/certs`
    for (const sessions of [true, false]) {
      assert.equal(await outcome(sessions, {}), 'service-account-demo-app')
      assert.equal(
        await outcome(sessions, { OIDC_JWKS_URI: `${idp.issuer}/protocol/openid-connect/certs` }),
        'service-account-demo-app',
      )
      // Keys from where OIDC_JWKS_URI says, and nowhere else.
      assert.equal(await outcome(sessions, { OIDC_JWKS_URI: closed }), 'provider_unavailable')
      assert.equal(await outcome(sessions, { TSGAUTH_ALLOWED_ALGS: 'ES256' }), 'token_invalid')
      assert.equal(await outcome(sessions, { SSOKIT_ALLOWED_ALGS: 'PS256' }), 'token_invalid')
      assert.equal(
        await outcome(sessions, { TSGAUTH_ALLOWED_ALGS: 'ALL' }),
        'service-account-demo-app',
      )
    }
  })
})
