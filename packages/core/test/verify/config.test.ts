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

describe('configuration from the environment', () => {
  test('tsgauth variable names with CERN defaults', () => {
    const options = loadConfig({ OIDC_CLIENT_ID: 'my-api' })
    assert.deepEqual(
      { ...options },
      { issuer: 'https://auth.cern.ch/auth/realms/cern', clientId: 'my-api' },
    )
    assert.ok(Object.isFrozen(options))
    const verifier = createVerifier(options)
    assert.equal(verifier.issuer, CERN_ISSUER)
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
      const { algorithms } = loadConfig({ OIDC_CLIENT_ID: 'x', TSGAUTH_ALLOWED_ALGS: value })
      assert.deepEqual(algorithms, [...SIGNING_ALGORITHMS])
      assert.ok(!algorithms.some((a) => a.toLowerCase() === 'none' || a.startsWith('HS')))
    }
    // ssokit's own name wins over tsgauth's.
    const { algorithms } = loadConfig({
      OIDC_CLIENT_ID: 'x',
      SSOKIT_ALLOWED_ALGS: 'ES256',
      TSGAUTH_ALLOWED_ALGS: 'ALL',
    })
    assert.deepEqual(algorithms, ['ES256'])
    for (const bad of ['HS256', 'RS256,none', ',', 'RS256,HS512']) {
      assert.throws(
        () => loadConfig({ OIDC_CLIENT_ID: 'x', TSGAUTH_ALLOWED_ALGS: bad }),
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
      () => loadConfig({ OIDC_CLIENT_ID: 'x', SSOKIT_CLOCK_TOLERANCE: 'soon' }),
      TypeError,
    )
  })

  test('role and username claims', () => {
    const base = { OIDC_CLIENT_ID: 'x' }
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
