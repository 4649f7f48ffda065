import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { rotateKeysFile, startIdp, type RunningIdp } from '@ssokit/idp'
import { codeLogin, decode, DEMO_API, DEMO_APP, oidc, post } from './helpers.js'

const USER_ONLY = [
  'preferred_username',
  'name',
  'given_name',
  'family_name',
  'email',
  'cern_upn',
  'cern_person_id',
]

async function clientCredentials(idp: RunningIdp, audience?: string) {
  const { body } = await post(
    oidc(idp, 'token'),
    { grant_type: 'client_credentials', ...(audience === undefined ? {} : { audience }) },
    [DEMO_APP.id, DEMO_APP.secret],
  )
  return body.access_token!
}

describe('token claims (keycloak style)', () => {
  let idp: RunningIdp
  before(async () => {
    idp = await startIdp({ port: 0 })
  })
  after(() => idp.close())

  it('shapes user access tokens like CERN SSO', async () => {
    const { tokens } = await codeLogin(idp)
    const { header, payload } = decode(tokens.access_token!)
    assert.equal(header.alg, 'RS256')
    assert.equal(header.typ, 'JWT')
    assert.equal(typeof header.kid, 'string')
    assert.equal(payload.typ, 'Bearer')
    assert.equal(payload.iss, idp.issuer)
    assert.equal(payload.aud, 'demo-app')
    assert.equal(payload.azp, 'demo-app')
    assert.equal(payload.sub, 'alice')
    assert.equal(payload.preferred_username, 'alice')
    assert.equal(payload.cern_upn, 'alice')
    assert.equal(payload.name, 'Alice Example')
    assert.equal(payload.given_name, 'Alice')
    assert.equal(payload.family_name, 'Example')
    assert.equal(payload.email, 'alice@example.org')
    assert.equal(payload.cern_person_id, 100001)
    assert.deepEqual(payload.cern_roles, ['admin', 'user'])
    assert.deepEqual(payload.resource_access, { 'demo-app': { roles: ['admin', 'user'] } })
    assert.deepEqual(payload.realm_access, { roles: ['staff'] })
    assert.equal(payload.scope, 'openid profile email')
    assert.equal(typeof payload.sid, 'string')
    assert.equal(payload.sid, decode(tokens.id_token!).payload.sid)
  })

  it('gives a user without roles empty cern_roles and no resource_access', async () => {
    const { tokens } = await codeLogin(idp, { username: 'bob', password: 'bob' })
    const { payload } = decode(tokens.access_token!)
    assert.equal(payload.sub, 'bob')
    assert.deepEqual(payload.cern_roles, [])
    assert.equal(payload.resource_access, undefined)
  })

  it('shapes ID tokens with typ ID', async () => {
    const { tokens } = await codeLogin(idp)
    const { payload } = decode(tokens.id_token!)
    assert.equal(payload.typ, 'ID')
    assert.equal(payload.aud, 'demo-app')
    assert.equal(payload.azp, 'demo-app')
    assert.deepEqual(payload.cern_roles, ['admin', 'user'])
  })

  it('gives service accounts no user claims', async () => {
    const { payload } = decode(await clientCredentials(idp, DEMO_API.id))
    assert.equal(payload.sub, 'service-account-demo-app')
    assert.equal(payload.aud, 'demo-api')
    assert.deepEqual(payload.cern_roles, ['reader'])
    assert.deepEqual(payload.resource_access, { 'demo-api': { roles: ['reader'] } })
    for (const claim of [...USER_ONLY, 'sid']) assert.equal(payload[claim], undefined, claim)
  })
})

describe('rfc9068 token style and lifetimes', () => {
  let idp: RunningIdp
  before(async () => {
    idp = await startIdp({ port: 0, tokenStyle: 'rfc9068', accessTokenTtl: 7 })
  })
  after(() => idp.close())

  it('uses the at+jwt header and no Keycloak typ claim', async () => {
    const { header, payload } = decode(await clientCredentials(idp))
    assert.equal(header.typ, 'at+jwt')
    assert.equal(payload.typ, undefined)
    assert.equal(payload.client_id, 'demo-app')
    assert.equal(payload.aud, 'demo-app')
  })

  it('applies the configured access token lifetime to every grant', async () => {
    const cc = decode(await clientCredentials(idp)).payload
    assert.equal(Number(cc.exp) - Number(cc.iat), 7)
    const { tokens } = await codeLogin(idp)
    const at = decode(tokens.access_token!).payload
    assert.equal(Number(at.exp) - Number(at.iat), 7)
    assert.equal(tokens.expires_in, 7)
  })

  it('reads lifetimes from the configuration', async () => {
    const short = await startIdp({
      port: 0,
      config: {
        access_token_ttl: 3,
        users: [{ username: 'u', password: 'p' }],
        clients: [{ client_id: 'c', secret: 's', grant_types: ['client_credentials'] }],
      },
    })
    try {
      const { body } = await post(oidc(short, 'token'), { grant_type: 'client_credentials' }, [
        'c',
        's',
      ])
      const p = decode(body.access_token!).payload
      assert.equal(Number(p.exp) - Number(p.iat), 3)
    } finally {
      await short.close()
    }
  })
})

describe('signing keys', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-idp-keys-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('rotates: old tokens still verify, new tokens use the new kid', async () => {
    const idp = await startIdp({ port: 0 })
    try {
      const jwks = () => createRemoteJWKSet(new URL(oidc(idp, 'certs')))
      const before = await clientCredentials(idp)
      await idp.rotateKeys()
      const afterRotation = await clientCredentials(idp)
      assert.notEqual(decode(before).header.kid, decode(afterRotation).header.kid)
      const certs = (await (await fetch(oidc(idp, 'certs'))).json()) as {
        keys: { kid: string; d?: string }[]
      }
      assert.equal(certs.keys.length, 2)
      assert.equal(certs.keys[0]!.kid, decode(afterRotation).header.kid)
      assert.ok(certs.keys.every((k) => k.d === undefined))
      await jwtVerify(before, jwks(), { issuer: idp.issuer })
      await jwtVerify(afterRotation, jwks(), { issuer: idp.issuer })
    } finally {
      await idp.close()
    }
  })

  it('keeps keys in a 0600 file reused across restarts', async () => {
    const file = join(dir, 'keys.json')
    const first = await startIdp({ port: 0, keys: file })
    const token = await clientCredentials(first)
    await first.close()
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    const second = await startIdp({ port: 0, keys: file })
    try {
      const jwks = createRemoteJWKSet(new URL(oidc(second, 'certs')))
      const { protectedHeader } = await jwtVerify(token, jwks)
      assert.equal(protectedHeader.kid, decode(await clientCredentials(second)).header.kid)
      await second.rotateKeys()
      const saved = JSON.parse(await readFile(file, 'utf8')) as { keys: { kid: string }[] }
      assert.equal(saved.keys.length, 2)
      assert.equal(saved.keys[1]!.kid, protectedHeader.kid)
      assert.equal((await stat(file)).mode & 0o777, 0o600)
    } finally {
      await second.close()
    }
  })

  it('rotates a keys file offline for the CLI', async () => {
    const file = join(dir, 'offline.json')
    const once = await rotateKeysFile(file)
    const twice = await rotateKeysFile(file)
    assert.equal(once.length, 2)
    assert.equal(twice.length, 3)
    assert.equal(twice[1]!.kid, once[0]!.kid)
  })
})
