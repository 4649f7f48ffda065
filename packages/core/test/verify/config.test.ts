import assert from 'node:assert/strict'
import { describe, test } from 'node:test'

import {
  cernPreset,
  CERN_ISSUER,
  createVerifier,
  loadConfig,
  presets,
  SIGNING_ALGORITHMS,
  SsoTypeError,
} from '@ssokit/core'

/** The smallest environment that loads: a client id and CERN's preset. */
const CERN = { OIDC_CLIENT_ID: 'x', SSOKIT_PRESET: 'cern' }

describe('configuration from the environment', () => {
  test('CERN only when asked for: SSOKIT_PRESET=cern or the preset option', () => {
    for (const options of [
      loadConfig({ OIDC_CLIENT_ID: 'my-api', SSOKIT_PRESET: 'cern' }),
      loadConfig({ OIDC_CLIENT_ID: 'my-api', SSOKIT_PRESET: 'CERN' }),
      loadConfig({ OIDC_CLIENT_ID: 'my-api' }, { preset: 'cern' }),
    ]) {
      assert.deepEqual(
        { ...options },
        { issuer: 'https://auth.cern.ch/auth/realms/cern', clientId: 'my-api' },
      )
      assert.ok(Object.isFrozen(options))
      assert.equal(createVerifier(options).issuer, CERN_ISSUER)
    }
    // OIDC_ISSUER wins over the preset.
    assert.equal(
      loadConfig({
        OIDC_CLIENT_ID: 'x',
        OIDC_ISSUER: 'https://sso.example.org',
        SSOKIT_PRESET: 'cern',
      }).issuer,
      'https://sso.example.org',
    )
  })

  test('OIDC_ISSUER unset without a preset is an error saying what to set', () => {
    assert.throws(
      () => loadConfig({ OIDC_CLIENT_ID: 'my-api' }),
      (e: unknown) =>
        e instanceof SsoTypeError &&
        e.code === 'ERR_MISSING_OPTION' &&
        e.message.startsWith('OIDC_ISSUER is not set') &&
        e.message.includes('SSOKIT_PRESET=cern') &&
        e.message.includes(CERN_ISSUER),
    )
    assert.throws(
      () => loadConfig({ OIDC_CLIENT_ID: 'x', SSOKIT_PRESET: 'keycloak' }),
      (e: unknown) =>
        e instanceof SsoTypeError && e.message.startsWith('SSOKIT_PRESET must be cern'),
    )
    assert.throws(
      () => loadConfig({ OIDC_CLIENT_ID: 'x' }, { preset: 'google' as 'cern' }),
      (e: unknown) => e instanceof SsoTypeError && /preset must be "cern"/.test(e.message),
    )
    assert.throws(
      () => loadConfig({ TSGAUTH_OIDC_PREFIX: 'MYAPP_', MYAPP_OIDC_CLIENT_ID: 'x' }),
      /^TypeError: MYAPP_OIDC_ISSUER is not set/,
    )
  })

  test('issuer, JWKS URI, algorithms and tolerance', () => {
    const options = loadConfig({
      OIDC_CLIENT_ID: 'my-api',
      OIDC_ISSUER: 'https://sso.example.org/realms/x',
      OIDC_JWKS_URI: 'https://sso.example.org/realms/x/certs',
      TSGAUTH_ALLOWED_ALGS: 'RS256, PS256',
      SSOKIT_CLOCK_TOLERANCE: '120',
    })
    assert.equal(options.issuer, 'https://sso.example.org/realms/x')
    assert.equal(options.jwksUri, 'https://sso.example.org/realms/x/certs')
    assert.deepEqual(options.algorithms, ['RS256', 'PS256'])
    assert.equal(options.clockTolerance, 120)
    createVerifier(options)
  })

  test('ALL means every asymmetric algorithm, never none or HS*', () => {
    for (const value of ['ALL', 'all']) {
      const { algorithms } = loadConfig({
        OIDC_CLIENT_ID: 'x',
        SSOKIT_PRESET: 'cern',
        TSGAUTH_ALLOWED_ALGS: value,
      })
      assert.deepEqual(algorithms, [...SIGNING_ALGORITHMS])
      assert.ok(!algorithms.some((a) => a.toLowerCase() === 'none' || a.startsWith('HS')))
    }
    // ssokit's own name wins over tsgauth's.
    const { algorithms } = loadConfig({
      OIDC_CLIENT_ID: 'x',
      SSOKIT_PRESET: 'cern',
      SSOKIT_ALLOWED_ALGS: 'ES256',
      TSGAUTH_ALLOWED_ALGS: 'ALL',
    })
    assert.deepEqual(algorithms, ['ES256'])
    for (const bad of ['HS256', 'RS256,none', ',', 'RS256,HS512']) {
      assert.throws(
        () => loadConfig({ OIDC_CLIENT_ID: 'x', SSOKIT_PRESET: 'cern', TSGAUTH_ALLOWED_ALGS: bad }),
        (e: unknown) => e instanceof SsoTypeError && /TSGAUTH_ALLOWED_ALGS/.test(e.message),
      )
    }
  })

  test('A17 OIDC_CLIENT_ID unset is a TypeError naming the variable', () => {
    for (const value of [undefined, '', '  ', '*']) {
      assert.throws(
        () => loadConfig({ OIDC_CLIENT_ID: value }),
        (e: unknown) => e instanceof TypeError && /OIDC_CLIENT_ID/.test(e.message),
      )
    }
    assert.throws(
      () =>
        loadConfig({ OIDC_CLIENT_ID: 'x', SSOKIT_PRESET: 'cern', SSOKIT_CLOCK_TOLERANCE: 'soon' }),
      TypeError,
    )
  })

  test('role and username claims', () => {
    const base = CERN
    assert.equal(loadConfig({ ...base, SSOKIT_ROLES_CLAIM: 'groups' }).roles, 'groups')
    assert.equal(loadConfig({ ...base, SSOKIT_ROLES_CLAIM: 'auto' }).roles, 'auto')
    assert.deepEqual(
      loadConfig({ ...base, SSOKIT_ROLES_CLAIM: 'realm_access.roles, resource_access.x.roles' })
        .roles,
      ['realm_access.roles', 'resource_access.x.roles'],
    )
    assert.equal(loadConfig({ ...base, SSOKIT_USERNAME_CLAIM: 'upn' }).usernameClaim, 'upn')
    assert.equal(loadConfig({ ...base, SSOKIT_TOKEN_TYPE: 'jwt' }).tokenType, 'jwt')
    assert.deepEqual(
      loadConfig({ ...base, SSOKIT_AUDIENCE: 'https://api.example.org, x' }).audience,
      ['https://api.example.org', 'x'],
    )
    assert.equal(loadConfig({ ...base, SSOKIT_TOKEN_TYPE: 'AT+JWT' }).tokenType, 'at+jwt')
    assert.equal(loadConfig({ ...base, SSOKIT_TOKEN_TYPE: 'bearer' }).tokenType, 'Bearer')
    assert.equal(loadConfig(base).roles, undefined)
    for (const [name, value] of [
      ['SSOKIT_ROLES_CLAIM', 'a..b'],
      ['SSOKIT_ROLES_CLAIM', ','],
      ['SSOKIT_USERNAME_CLAIM', '__proto__'],
      ['SSOKIT_TOKEN_TYPE', 'any'],
      ['SSOKIT_AUDIENCE', ' , '],
      ['SSOKIT_AUDIENCE', 'api,*'],
    ] as const) {
      assert.throws(
        () => loadConfig({ ...base, [name]: value }),
        (e: unknown) => e instanceof SsoTypeError && e.message.startsWith(name),
        `${name}=${value}`,
      )
    }
  })

  test('TSGAUTH_OIDC_PREFIX', () => {
    const options = loadConfig({
      TSGAUTH_OIDC_PREFIX: 'MYAPP_',
      MYAPP_OIDC_CLIENT_ID: 'prefixed',
      SSOKIT_PRESET: 'cern',
      OIDC_CLIENT_ID: 'plain',
    })
    assert.equal(options.clientId, 'prefixed')
    assert.throws(
      () => loadConfig({ TSGAUTH_OIDC_PREFIX: 'MYAPP_', OIDC_CLIENT_ID: 'x' }),
      /MYAPP_OIDC_CLIENT_ID/,
    )
  })

  test('CERN preset', () => {
    assert.equal(presets.cern.issuer, 'https://auth.cern.ch/auth/realms/cern')
    assert.equal(
      presets.cern.jwksUri,
      'https://auth.cern.ch/auth/realms/cern/protocol/openid-connect/certs',
    )
    assert.equal(
      presets.cern.tokenEndpoint,
      'https://auth.cern.ch/auth/realms/cern/protocol/openid-connect/token',
    )
    assert.equal(
      presets.cern.apiAccessTokenEndpoint,
      'https://auth.cern.ch/auth/realms/cern/api-access/token',
    )
    assert.equal(cernPreset('kerberos').issuer, 'https://auth.cern.ch/auth/realms/kerberos')
    assert.throws(() => cernPreset('../x'), TypeError)
    assert.ok(Object.isFrozen(presets.cern))
  })
})
