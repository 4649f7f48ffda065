/**
 * Roles and usernames from tokens of providers other than Keycloak: role claims as strings, in
 * `groups`, in `scope`, under nested or dotted names; the username fallback; and the one warning
 * when the configured role claim is absent.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { SsoTypeError, type RoleSource } from '@ssokit/core'

import { CLIENT, ISSUER, JwksServer, testKey, testVerifier, token } from './helpers.js'

const server = new JwksServer()

before(async () => {
  await server.start()
  server.setKeys(testKey('k1'))
})
after(() => server.close())

/** A token without Keycloak's role claims, as most providers issue them. */
function plain(overrides: Record<string, unknown> = {}): string {
  return token({ cern_roles: undefined, resource_access: undefined, ...overrides })
}

async function rolesOf(roles: RoleSource, claims: Record<string, unknown>): Promise<string[]> {
  const identity = await testVerifier(server, { roles }).verifier.verify(plain(claims))
  return [...identity.roles].sort()
}

describe('role sources', () => {
  test('a configured claim may hold a list or a space- or comma-separated string', async () => {
    assert.deepEqual(await rolesOf('groups', { groups: ['admin', 'user'] }), ['admin', 'user'])
    assert.deepEqual(await rolesOf('groups', { groups: 'admin user' }), ['admin', 'user'])
    assert.deepEqual(await rolesOf('groups', { groups: 'admin, user' }), ['admin', 'user'])
    assert.deepEqual(await rolesOf('groups', { groups: ' admin,,user\t' }), ['admin', 'user'])
    assert.deepEqual(await rolesOf('roles', { roles: 'admin' }), ['admin'])
    assert.deepEqual(await rolesOf('groups', { groups: '' }), [])
    assert.deepEqual(await rolesOf('groups', { groups: [] }), [])
  })

  test('A21 a string is split, never matched by substring', async () => {
    assert.deepEqual(await rolesOf('groups', { groups: 'admin-readonly' }), ['admin-readonly'])
    assert.deepEqual(await rolesOf('groups', { groups: 'admins,read:admin' }), [
      'admins',
      'read:admin',
    ])
    // The default source keeps reading lists only, as CERN and Keycloak send them.
    const identity = await testVerifier(server).verifier.verify(token({ cern_roles: 'admin' }))
    assert.equal(identity.roles.has('admin'), true, 'from resource_access, not the string')
    const none = await testVerifier(server).verifier.verify(
      plain({ cern_roles: 'admin', resource_access: { [CLIENT]: { roles: 'admin' } } }),
    )
    assert.equal(none.roles.size, 0)
  })

  test('scope is split on spaces only (RFC 8693)', async () => {
    assert.deepEqual(await rolesOf('scope', { scope: 'openid  read:items write' }), [
      'openid',
      'read:items',
      'write',
    ])
    assert.deepEqual(await rolesOf('scope', { scope: 'read,write' }), ['read,write'])
    assert.deepEqual(await rolesOf('scp', { scp: ['read', 'write'] }), ['read', 'write'])
  })

  test('nested claims by dotted path, dotted claim names by their whole name', async () => {
    assert.deepEqual(await rolesOf('realm_access.roles', { realm_access: { roles: ['staff'] } }), [
      'staff',
    ])
    assert.deepEqual(
      await rolesOf('resource_access.other-api.roles', {
        resource_access: { 'other-api': { roles: ['reader'] }, [CLIENT]: { roles: ['x'] } },
      }),
      ['reader'],
    )
    // A Keycloak client id with dots.
    assert.deepEqual(
      await rolesOf('resource_access.my.app.roles', {
        resource_access: { 'my.app': { roles: ['editor'] }, my: { other: ['no'] } },
      }),
      ['editor'],
    )
    // Auth0's namespaced custom claims.
    assert.deepEqual(
      await rolesOf('https://example.org/roles', { 'https://example.org/roles': ['admin'] }),
      ['admin'],
    )
    // When the longest name leads nowhere, a shorter one is tried.
    assert.deepEqual(await rolesOf('a.b.c', { 'a.b': { x: 1 }, a: { 'b.c': ['found'] } }), [
      'found',
    ])
  })

  test('several sources give all their roles together', async () => {
    const roles = ['realm_access.roles', `resource_access.${CLIENT}.roles`, 'groups']
    assert.deepEqual(
      await rolesOf(roles, {
        realm_access: { roles: ['staff'] },
        resource_access: { [CLIENT]: { roles: ['admin'] } },
        groups: 'ops',
      }),
      ['admin', 'ops', 'staff'],
    )
    assert.deepEqual(await rolesOf(roles, { groups: ['ops'] }), ['ops'])
  })

  test('prototype names stay out of reach, and bad sources are refused at construction', () => {
    for (const roles of [
      '',
      'a..b',
      '.groups',
      '__proto__',
      'groups.constructor',
      [],
      ['groups', ''],
      ['prototype'],
    ]) {
      assert.throws(
        () => testVerifier(server, { roles: roles as RoleSource }),
        (error: unknown) => error instanceof SsoTypeError && /^roles /.test(error.message),
        JSON.stringify(roles),
      )
    }
    assert.throws(
      () => testVerifier(server, { roles: 42 as unknown as RoleSource }),
      (error: unknown) => error instanceof SsoTypeError && error.code === 'ERR_INVALID_ARG_TYPE',
    )
    for (const usernameClaim of ['', '__proto__', 'a..b']) {
      assert.throws(
        () => testVerifier(server, { usernameClaim }),
        (error: unknown) => error instanceof SsoTypeError && /^usernameClaim /.test(error.message),
      )
    }
  })
})

describe('role_claim_missing', () => {
  test('a token without the configured role claim is reported once, naming the claim', async () => {
    const { verifier, events } = testVerifier(server, { roles: 'groups' })
    const identity = await verifier.verify(plain({ jti: 'a' }))
    assert.equal(identity.roles.size, 0)
    await verifier.verify(plain({ jti: 'b' }))
    await verifier.verify(plain({ jti: 'c', groups: 5 }))
    const warnings = events.filter((e) => e.reason === 'role_claim_missing')
    assert.equal(warnings.length, 1)
    const [warning] = warnings
    assert.equal(warning?.type, 'config_warning')
    assert.equal(warning.level, 'warn')
    assert.equal(warning.claim, 'groups')
    assert.equal(warning.iss, ISSUER)
    assert.match(warning.message, /carries no "groups" claim/)
    assert.match(warning.message, /roles option/)
  })

  test('the default source names both claims; a present but empty claim is no warning', async () => {
    const quiet = testVerifier(server)
    await quiet.verifier.verify(token({ cern_roles: [] }))
    await quiet.verifier.verify(token({ cern_roles: undefined }))
    assert.equal(quiet.events.filter((e) => e.reason === 'role_claim_missing').length, 0)
    const { verifier, events } = testVerifier(server)
    await verifier.verify(plain())
    const warning = events.find((e) => e.reason === 'role_claim_missing')
    assert.equal(warning?.claim, `cern_roles,resource_access.${CLIENT}.roles`)
    assert.match(
      warning.message,
      new RegExp(`no "cern_roles" or "resource_access\\.${CLIENT}\\.roles" claim`),
    )
  })

  test('several sources warn only when none of them is present; functions never warn', async () => {
    const several = testVerifier(server, { roles: ['groups', 'realm_access.roles'] })
    await several.verifier.verify(plain({ realm_access: { roles: [] } }))
    assert.equal(several.events.filter((e) => e.reason === 'role_claim_missing').length, 0)
    await several.verifier.verify(plain({ jti: 'x' }))
    assert.equal(
      several.events.find((e) => e.reason === 'role_claim_missing')?.claim,
      'groups,realm_access.roles',
    )
    const fn = testVerifier(server, { roles: () => [] })
    await fn.verifier.verify(plain())
    assert.equal(fn.events.filter((e) => e.reason === 'role_claim_missing').length, 0)
  })
})

describe('username', () => {
  test('preferred_username, then the configured claim, then email, then sub', async () => {
    const { verifier } = testVerifier(server, { usernameClaim: 'upn' })
    const base = { preferred_username: undefined, email: undefined, sub: 'u-123' }
    const name = async (claims: Record<string, unknown>) =>
      (await verifier.verify(plain({ ...base, ...claims }))).username
    assert.equal(await name({ preferred_username: 'alice', upn: 'a@corp', email: 'a@x' }), 'alice')
    assert.equal(await name({ upn: 'a@corp', email: 'a@x' }), 'a@corp')
    assert.equal(await name({ email: 'a@x' }), 'a@x')
    assert.equal(await name({}), 'u-123')
    assert.equal(await name({ preferred_username: '', upn: 7, email: 'a@x' }), 'a@x')
  })

  test('the configured claim defaults to cern_upn and may be a dotted path', async () => {
    const cern = await testVerifier(server).verifier.verify(
      plain({ preferred_username: undefined, cern_upn: 'jdoe', email: 'j@x' }),
    )
    assert.equal(cern.username, 'jdoe')
    const nested = await testVerifier(server, { usernameClaim: 'ext.login' }).verifier.verify(
      plain({ preferred_username: undefined, ext: { login: 'jd' } }),
    )
    assert.equal(nested.username, 'jd')
  })
})
