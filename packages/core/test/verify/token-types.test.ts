/**
 * `tokenType: 'jwt'`: access tokens typed `JWT` or not typed at all, as most providers other than
 * Keycloak issue them, are accepted; ID tokens, recognised by their marks, are still refused.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'

import { SsoError, SsoTypeError, type TokenTypePolicy } from '@ssokit/core'

import {
  CLIENT,
  ISSUER,
  JwksServer,
  NOW,
  signCompact,
  testKey,
  testVerifier,
  token,
} from './helpers.js'

const key = testKey('k1')
const server = new JwksServer()

before(async () => {
  await server.start()
  server.setKeys(key)
})
after(() => server.close())

/** The claims of an access token without Keycloak's marks. */
const base = {
  typ: undefined,
  cern_roles: undefined,
  resource_access: undefined,
  preferred_username: undefined,
}

/** `ok`, or the refusal's code, reason and claim: `token_invalid/id_token/nonce`. */
async function verdict(
  tokenType: TokenTypePolicy | undefined,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  const { verifier } = testVerifier(server, tokenType === undefined ? {} : { tokenType })
  try {
    await verifier.verify(token({ ...base, ...claims }, header))
    return 'ok'
  } catch (error) {
    if (!(error instanceof SsoError)) throw error
    const reason = (error.cause as { reason?: string } | undefined)?.reason
    return `${error.code}/${reason ?? ''}/${error.claim ?? ''}`
  }
}

const shapes: Record<string, [Record<string, unknown>, Record<string, unknown>]> = {
  // header typ JWT, an API identifier as audience, the client in azp (Auth0).
  auth0: [{ aud: [CLIENT, 'https://idp.example/userinfo'], azp: 'spa', scope: 'read' }, {}],
  // no typ header at all, `cid` and `scp` (Okta).
  okta: [{ cid: 'spa', scp: ['read'], azp: undefined }, { typ: undefined }],
  // Entra ID v1 application token: `appid` and `roles`, no scope, no azp.
  entraApp: [{ appid: 'daemon', roles: ['Task.Write'], azp: undefined, scope: undefined }, {}],
  // Cognito access token.
  cognito: [{ client_id: 'spa', token_use: 'access', scope: 'read', azp: undefined }, {}],
  // The API's own client asking for itself, with a scope.
  self: [{ azp: CLIENT, scope: 'read' }, {}],
}

describe("tokenType 'jwt'", () => {
  test('accepts access tokens typed JWT or untyped, as other providers issue them', async () => {
    for (const [name, [claims, header]] of Object.entries(shapes)) {
      assert.equal(await verdict('jwt', claims, header), 'ok', name)
      // The default asks for at+jwt or Keycloak's typ claim, and refuses them.
      assert.equal(await verdict(undefined, claims, header), 'token_invalid/token_type/typ', name)
    }
    // RFC 9068 and Keycloak tokens stay accepted.
    const rfc = { client_id: 'spa', jti: 'j' }
    assert.equal(await verdict('jwt', rfc, { typ: 'at+jwt' }), 'ok')
    assert.equal(
      await verdict('jwt', { ...rfc, jti: undefined }, { typ: 'at+jwt' }),
      'token_invalid/rfc9068_claims/',
    )
    assert.equal(await verdict('jwt', { typ: 'Bearer', nonce: 'n' }), 'ok', "Keycloak's own typ")
  })

  test('refuses ID tokens by their marks, with reason id_token', async () => {
    const access = { azp: 'spa', scope: 'read' }
    for (const mark of ['nonce', 'at_hash', 'c_hash', 's_hash']) {
      assert.equal(
        await verdict('jwt', { ...access, [mark]: 'x' }),
        `token_invalid/id_token/${mark}`,
      )
    }
    assert.equal(
      await verdict('jwt', { ...access, token_use: 'id' }),
      'token_invalid/id_token/token_use',
    )
    // The client id alone as audience and no access-token claim: an ID token without a nonce.
    for (const aud of [CLIENT, [CLIENT]]) {
      for (const azp of [undefined, CLIENT]) {
        assert.equal(
          await verdict('jwt', { aud, azp, scope: undefined }),
          'token_invalid/id_token/aud',
          JSON.stringify({ aud, azp }),
        )
      }
    }
    // Any access-token claim, or another party in azp, makes it an access token.
    for (const extra of [
      { scope: '' },
      { scp: 'read' },
      { client_id: 'spa' },
      { cid: 'spa' },
      { appid: 'daemon' },
      { azp: 'spa' },
    ]) {
      assert.equal(
        await verdict('jwt', { aud: CLIENT, azp: undefined, scope: undefined, ...extra }),
        'ok',
        JSON.stringify(extra),
      )
    }
    // Several audiences: not an ID token for this client alone.
    assert.equal(
      await verdict('jwt', { aud: [CLIENT, 'other'], azp: undefined, scope: undefined }),
      'ok',
    )
  })

  test('refuses other typed tokens under every policy', async () => {
    for (const tokenType of ['auto', 'jwt', 'at+jwt', 'Bearer'] as const) {
      assert.equal(await verdict(tokenType, { typ: 'ID' }), 'token_invalid/id_token/typ', tokenType)
      for (const typ of ['Refresh', 'Offline', 'Logout', 'bearer', '']) {
        assert.equal(
          await verdict(tokenType, { typ, scope: 'read' }),
          'token_invalid/token_type/typ',
          `${tokenType} ${typ}`,
        )
      }
      for (const typ of ['logout+jwt', 'secevent+jwt', 'dpop+jwt', 'id_token+jwt']) {
        assert.equal(
          await verdict(tokenType, { scope: 'read' }, { typ }),
          'token_invalid/token_type/typ',
          `${tokenType} header ${typ}`,
        )
      }
    }
    // A logout token typed JWT carries `events`.
    const events = { 'http://schemas.openid.net/event/backchannel-logout': {} }
    assert.equal(await verdict('jwt', { scope: 'read', events }), 'token_invalid/token_type/events')
  })

  test('a real ID token of a session client is refused on its bearer side', async () => {
    // What an OIDC provider returns at the token endpoint next to the access token.
    const idClaims: Record<string, unknown> = {
      iss: ISSUER,
      sub: 'alice',
      aud: CLIENT,
      azp: CLIENT,
      iat: NOW - 10,
      exp: NOW + 300,
      auth_time: NOW - 20,
      sid: 's1',
      email: 'alice@example.org',
    }
    const idToken = signCompact({ alg: 'RS256', typ: 'JWT', kid: 'k1' }, idClaims, key)
    const { verifier, events } = testVerifier(server, { tokenType: 'jwt' })
    await assert.rejects(verifier.verify(idToken), { code: 'token_invalid', claim: 'aud' })
    assert.equal(events.at(-1)?.reason, 'id_token')
  })

  test('an unknown policy is refused at construction', () => {
    for (const tokenType of ['JWT', 'any', '']) {
      assert.throws(
        () => testVerifier(server, { tokenType: tokenType as TokenTypePolicy }),
        (error: unknown) => error instanceof SsoTypeError && /"jwt"/.test(error.message),
      )
    }
  })
})

describe('audience', () => {
  const API = 'https://api.example.org'

  test('tokens may name a configured audience instead of the client id', async () => {
    const { verifier } = testVerifier(server, { audience: API })
    assert.equal((await verifier.verify(token({ aud: API }))).subject, 'alice')
    assert.equal((await verifier.verify(token({ aud: ['other', API] }))).subject, 'alice')
    // The client id alone is no longer enough: only what is configured is accepted.
    await assert.rejects(verifier.verify(token({ aud: CLIENT })), { code: 'audience_mismatch' })
    await assert.rejects(verifier.verify(token({ aud: `${API}/` })), { code: 'audience_mismatch' })
    const both = testVerifier(server, { audience: [API, CLIENT] }).verifier
    for (const aud of [API, CLIENT, [CLIENT]]) {
      assert.equal((await both.verify(token({ aud }))).subject, 'alice', JSON.stringify(aud))
    }
    await assert.rejects(both.verify(token({ aud: 'other' })), { code: 'audience_mismatch' })
  })

  test('A14 an audience option never loosens the check', () => {
    for (const audience of ['', ' ', '*', [], ['*'], [API, ''], 5, [5]]) {
      assert.throws(
        () => testVerifier(server, { audience: audience as string }),
        (error: unknown) => error instanceof SsoTypeError && /^audience /.test(error.message),
        JSON.stringify(audience),
      )
    }
  })
})
