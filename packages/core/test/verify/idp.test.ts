/** Tokens from the real development provider (`@ssokit/idp`), verified by the core. */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'

import {
  createBearerAuthenticator,
  createVerifier,
  requireRoles,
  type Verifier,
} from '@ssokit/core'
import { loginWithPassword, startIdp, type RunningIdp } from '@ssokit/idp'

import { b64u, outcome, signCompact, testKey } from './helpers.js'

const REDIRECT = 'http://localhost:7777/callback'
const basic = (id: string, secret: string) =>
  `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`

let idp: RunningIdp
let rfc: RunningIdp
let dir: string
const forgeKey = testKey('idp-key')

async function tokenRequest(
  provider: RunningIdp,
  body: Record<string, string>,
  auth?: [string, string],
) {
  const res = await fetch(`${provider.issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(auth === undefined ? {} : { authorization: basic(auth[0], auth[1]) }),
    },
    body: new URLSearchParams(body),
  })
  const json = (await res.json()) as Record<string, string>
  assert.equal(res.status, 200, JSON.stringify(json))
  return json
}

function clientCredentials(provider: RunningIdp, audience = 'demo-api') {
  return tokenRequest(provider, { grant_type: 'client_credentials', audience }, [
    'demo-app',
    'demo-app-secret',
  ])
}

async function userLogin(provider: RunningIdp) {
  const verifier = b64u(randomBytes(32))
  const challenge = b64u(createHash('sha256').update(verifier).digest())
  const url = new URL(`${provider.issuer}/protocol/openid-connect/auth`)
  url.search = new URLSearchParams({
    client_id: 'demo-app',
    redirect_uri: REDIRECT,
    response_type: 'code',
    scope: 'openid profile email',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 's',
    nonce: 'n',
  }).toString()
  const login = await loginWithPassword({
    issuer: provider.issuer,
    authorizeUrl: url,
    username: 'alice',
    password: 'alice',
  })
  assert.ok(login.code)
  return tokenRequest(
    provider,
    {
      grant_type: 'authorization_code',
      code: login.code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    },
    ['demo-app', 'demo-app-secret'],
  )
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ssokit-core-'))
  const keys = join(dir, 'keys.json')
  await writeFile(
    keys,
    JSON.stringify({
      keys: [
        {
          ...forgeKey.privateKey.export({ format: 'jwk' }),
          kid: 'idp-key',
          alg: 'RS256',
          use: 'sig',
        },
      ],
    }),
  )
  idp = await startIdp({ port: 0, keys, log: false })
  rfc = await startIdp({ port: 0, tokenStyle: 'rfc9068', realm: 'rfc', log: false })
})
after(async () => {
  await Promise.all([idp.close(), rfc.close()])
  await rm(dir, { recursive: true, force: true })
})

function verifierFor(provider: RunningIdp, clientId = 'demo-api'): Verifier {
  return createVerifier({ issuer: provider.issuer, clientId })
}

describe('tokens from the development provider', () => {
  test('client credentials (Keycloak style) give a service identity with roles', async () => {
    const { access_token } = await clientCredentials(idp)
    const identity = await verifierFor(idp).verify(access_token!)
    assert.equal(identity.kind, 'service')
    assert.match(identity.subject, /^service-account-/)
    assert.ok(identity.roles.has('reader'))
    requireRoles(identity, 'reader')
  })

  test('a user login (audience demo-app) and A13 its ID token refused', async () => {
    const tokens = await userLogin(idp)
    const verifier = verifierFor(idp, 'demo-app')
    const identity = await verifier.verify(tokens.access_token!)
    assert.equal(identity.subject, 'alice')
    assert.equal(identity.email, 'alice@example.org')
    assert.equal(identity.kind, 'user')
    assert.ok(identity.roles.has('admin'))
    assert.equal(await outcome(verifier.verify(tokens.id_token!)), 'token_invalid')
    // A13: a token for a different client.
    assert.equal(
      await outcome(verifierFor(idp, 'demo-api').verify(tokens.access_token!)),
      'audience_mismatch',
    )
  })

  test('RFC 9068 access tokens (at+jwt)', async () => {
    const { access_token } = await clientCredentials(rfc)
    const identity = await verifierFor(rfc).verify(access_token!)
    assert.equal(identity.kind, 'service')
    assert.equal(
      await outcome(
        createVerifier({ issuer: rfc.issuer, clientId: 'demo-api', tokenType: 'Bearer' }).verify(
          access_token!,
        ),
      ),
      'token_invalid',
    )
  })

  test('A33 rotation at the provider: one refetch, then 200', async () => {
    let clock = Date.now()
    const verifier = createVerifier({
      issuer: idp.issuer,
      clientId: 'demo-api',
      expert: { now: () => clock },
    })
    assert.equal(await outcome(verifier.verify((await clientCredentials(idp)).access_token!)), 'ok')
    const certs = () => idp.requests.filter((r) => r.path.endsWith('/certs')).length
    // The new key signs a while (more than the refetch cooldown) after the keys were read.
    clock += 31_000
    await idp.rotateKeys()
    const rotated = (await clientCredentials(idp)).access_token!
    const before = certs()
    assert.equal(await outcome(verifier.verify(rotated)), 'ok')
    assert.equal(certs() - before, 1)
  })

  test('forged tokens with the provider key verify; the evil key does not; A08 no outbound request', async () => {
    const verifier = verifierFor(idp)
    const now = Math.floor(Date.now() / 1000)
    const claims = {
      iss: idp.issuer,
      aud: 'demo-api',
      sub: 'carol',
      typ: 'Bearer',
      iat: now,
      exp: now + 60,
      cern_roles: ['x'],
    }
    assert.equal(
      await outcome(
        verifier.verify(
          signCompact({ alg: 'RS256', kid: 'idp-key', typ: 'JWT' }, claims, forgeKey),
        ),
      ),
      'ok',
    )
    const evil = testKey('k1-evil')
    const count = idp.requests.length
    const jku = `${idp.issuer}/not-a-jwks`
    const forged = signCompact(
      { alg: 'RS256', kid: 'idp-key', typ: 'JWT', jku, jwk: evil.jwk },
      claims,
      evil,
    )
    assert.equal(await outcome(verifier.verify(forged)), 'token_invalid')
    assert.equal(idp.requests.slice(count).filter((r) => r.path.endsWith('not-a-jwks')).length, 0)
  })

  test('through the bearer authenticator', async () => {
    const auth = createBearerAuthenticator({ issuer: idp.issuer, clientId: 'demo-api' })
    const { access_token } = await clientCredentials(idp)
    const identity = await auth.authenticate({
      method: 'GET',
      url: '/',
      header: (name) => (name === 'authorization' ? [`Bearer ${access_token!}`] : []),
    })
    assert.equal(identity.via, 'bearer')
  })
})
