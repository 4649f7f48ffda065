import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import {
  DEFAULT_IDP_CONFIG,
  IdpConfigError,
  loginWithPassword,
  resolveIdpConfig,
  startIdp,
  type RunningIdp,
} from '@ssokit/idp'
import { authorizeUrl, decode, DEMO_APP, oidc, pkce, post, REDIRECT } from './helpers.js'

const resource = (client: string) => `urn:ssokit:client:${client}`

/** A code-flow login of `clientId` (public) asking for `resources`; the token answer. */
async function publicLogin(
  idp: RunningIdp,
  clientId: string,
  resources: readonly string[],
): Promise<{ location: URL; status?: number; body?: Record<string, unknown> }> {
  const { verifier, challenge } = pkce()
  const url = new URL(authorizeUrl(idp, { clientId, challenge, scope: 'openid offline_access' }))
  for (const r of resources) url.searchParams.append('resource', r)
  const login = await loginWithPassword({
    issuer: idp.issuer,
    authorizeUrl: url,
    username: 'alice',
    password: 'alice',
  })
  const location = new URL(login.location)
  if (login.code === undefined) return { location }
  const form: Record<string, string> = {
    grant_type: 'authorization_code',
    code: login.code,
    redirect_uri: REDIRECT,
    code_verifier: verifier,
    client_id: clientId,
  }
  if (resources[0] !== undefined) form.resource = resources[0]
  const { status, body } = await post(oidc(idp, 'token'), form)
  return { location, status, body }
}

describe('resource indicators', () => {
  let idp: RunningIdp

  before(async () => {
    idp = await startIdp({
      port: 0,
      config: {
        ...DEFAULT_IDP_CONFIG,
        clients: [
          ...(DEFAULT_IDP_CONFIG.clients ?? []),
          {
            client_id: 'api-cli',
            grant_types: ['authorization_code', 'refresh_token'],
            redirect_uris: ['http://localhost:*/*'],
            resource_audiences: ['demo-api'],
          },
        ],
      },
    })
  })
  after(() => idp.close())

  it('H12 a public client gets no token for another client through resource, on any grant', async () => {
    const asked = await publicLogin(idp, 'demo-cli', [resource('demo-app')])
    assert.equal(asked.location.searchParams.get('error'), 'invalid_target')
    assert.equal(asked.location.searchParams.get('code'), null)
    assert.equal(asked.body, undefined)

    // A plain login, then the same request at the token endpoint: refused too.
    const plain = await publicLogin(idp, 'demo-cli', [])
    assert.equal(plain.status, 200)
    assert.equal(decode(plain.body!.access_token as string).payload.aud, 'demo-cli')
    const refresh = await post(oidc(idp, 'token'), {
      grant_type: 'refresh_token',
      refresh_token: plain.body!.refresh_token as string,
      client_id: 'demo-cli',
      resource: resource('demo-app'),
    })
    assert.equal(refresh.status, 400)
    assert.equal(refresh.body.error, 'invalid_target')
    assert.equal(refresh.body.access_token, undefined)

    const device = await post(oidc(idp, 'auth/device'), {
      client_id: 'demo-cli',
      scope: 'openid',
      resource: resource('demo-app'),
    })
    assert.equal(device.status, 400)
    assert.equal(device.body.error, 'invalid_target')
  })

  it('H12 a confidential client names no other audience with resource unless configured', async () => {
    const refused = await post(
      oidc(idp, 'token'),
      { grant_type: 'client_credentials', resource: resource('demo-cli') },
      [DEMO_APP.id, DEMO_APP.secret],
    )
    assert.equal(refused.status, 400)
    assert.equal(refused.body.error, 'invalid_target')
    // Its own audience, and CERN's documented `audience` parameter, keep working.
    const own = await post(
      oidc(idp, 'token'),
      { grant_type: 'client_credentials', resource: resource('demo-app') },
      [DEMO_APP.id, DEMO_APP.secret],
    )
    assert.equal(own.status, 200)
    assert.equal(decode(own.body.access_token!).payload.aud, 'demo-app')
    const cern = await post(
      `${idp.issuer}/api-access/token`,
      { grant_type: 'client_credentials', audience: 'demo-api' },
      [DEMO_APP.id, DEMO_APP.secret],
    )
    assert.equal(cern.status, 200)
    assert.equal(decode(cern.body.access_token!).payload.aud, 'demo-api')
  })

  it('H12 a client configured with resource_audiences gets tokens for exactly those', async () => {
    const allowed = await publicLogin(idp, 'api-cli', [resource('demo-api')])
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body))
    const { payload } = decode(allowed.body!.access_token as string)
    assert.equal(payload.aud, 'demo-api')
    assert.equal(payload.azp, 'api-cli')
    const other = await publicLogin(idp, 'api-cli', [resource('demo-app')])
    assert.equal(other.location.searchParams.get('error'), 'invalid_target')
  })

  it('H12 resource_audiences must name known clients', () => {
    assert.throws(
      () =>
        resolveIdpConfig({
          clients: [
            {
              client_id: 'cli',
              redirect_uris: ['http://localhost:*/*'],
              resource_audiences: ['nobody'],
            },
          ],
        }),
      (error: unknown) =>
        error instanceof IdpConfigError && error.path === 'clients[0].resource_audiences[0]',
    )
  })
})
