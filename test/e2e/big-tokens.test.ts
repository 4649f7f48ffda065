/**
 * Big legitimate tokens: a service account with hundreds of roles gets a real token of 35 kB
 * from the development provider, far past Node's 16 KiB header limit. Each adapter, on a server
 * whose header limit is raised as docs/api-protection.md shows, must accept it, and must answer
 * a token past `maxTokenLength` with 431 token_too_large, not the 401 of a forged token.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createBearerAuthenticator } from '@ssokit/core'
import { DEFAULT_IDP_CONFIG, startIdp, type RunningIdp } from '@ssokit/idp'
import {
  ADAPTERS,
  startAdapter,
  type AdapterName,
  type RunningAdapter,
} from '../support/adapters.js'

/** Role names as long as real group names (`cern-it-...-members`). */
function roles(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `it-dep-grp-${String(i).padStart(4, '0')}-members`)
}

const MANY = roles(500)
/** The header limit the servers are given: room for a 64 KiB token and the rest of the head. */
const MAX_HEADER_SIZE = 128 * 1024

let idp: RunningIdp
const servers = new Map<AdapterName, RunningAdapter>()
const plain = new Map<AdapterName, RunningAdapter>()
let large = ''
let tooLarge = ''

async function serviceToken(clientId: string): Promise<string> {
  const response = await fetch(`${idp.issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: `${clientId}-secret`,
      audience: 'demo-api',
    }),
  })
  const body = (await response.json()) as Record<string, unknown>
  assert.equal(response.status, 200, JSON.stringify(body))
  return String(body.access_token)
}

before(async () => {
  idp = await startIdp({
    port: 0,
    log: false,
    config: {
      ...DEFAULT_IDP_CONFIG,
      clients: [
        ...(DEFAULT_IDP_CONFIG.clients ?? []),
        {
          client_id: 'many-roles',
          secret: 'many-roles-secret',
          grant_types: ['client_credentials'],
          roles: { 'demo-api': MANY },
        },
        {
          client_id: 'too-many-roles',
          secret: 'too-many-roles-secret',
          grant_types: ['client_credentials'],
          roles: { 'demo-api': roles(1000) },
        },
      ],
    },
  })
  large = await serviceToken('many-roles')
  tooLarge = await serviceToken('too-many-roles')
  const auth = createBearerAuthenticator({
    issuer: idp.issuer,
    clientId: 'demo-api',
    onEvent: () => {},
  })
  for (const name of ADAPTERS) {
    servers.set(name, await startAdapter(name, auth, { maxHeaderSize: MAX_HEADER_SIZE }))
    plain.set(name, await startAdapter(name, auth))
  }
})

after(async () => {
  for (const server of [...servers.values(), ...plain.values()]) await server.close()
  await idp.close()
})

describe('big tokens through every adapter', () => {
  it('H03 a real 35 kB token with 500 roles is accepted once the header limit is raised', async () => {
    assert.ok(large.length > 32 * 1024 && large.length < 64 * 1024, `${large.length} characters`)
    for (const [name, server] of servers) {
      const res = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${large}` } })
      assert.equal(res.status, 200, name)
      const identity = (await res.json()) as { subject: string; roles: string[] }
      assert.equal(identity.subject, 'service-account-many-roles', name)
      assert.deepEqual(identity.roles, [...MANY].sort(), name)
    }
  })

  it('H03 a real token past maxTokenLength is 431 token_too_large, not 401 invalid_token', async () => {
    assert.ok(
      tooLarge.length > 64 * 1024 && tooLarge.length < MAX_HEADER_SIZE - 1024,
      `${tooLarge.length} characters`,
    )
    for (const [name, server] of servers) {
      const before = server.calls()
      const res = await fetch(`${server.url}/me`, {
        headers: { authorization: `Bearer ${tooLarge}` },
      })
      assert.equal(res.status, 431, name)
      assert.deepEqual(await res.json(), { error: 'token_too_large' }, name)
      assert.equal(res.headers.get('cache-control'), 'no-store', name)
      assert.equal(server.calls(), before, `${name}: handler ran`)
    }
  })

  it('H03 without the raised limit Node itself refuses the head with 431, before any adapter', async () => {
    for (const [name, server] of plain) {
      const res = await fetch(`${server.url}/me`, { headers: { authorization: `Bearer ${large}` } })
      assert.equal(res.status, 431, name)
      assert.equal(server.calls(), 0, name)
    }
  })
})
