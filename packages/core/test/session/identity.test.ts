/**
 * The identity of a browser session, from the tokens of the development provider and from tokens
 * shaped like other providers': roles in `groups` or only in the ID token, opaque access tokens,
 * no `preferred_username`.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'

import {
  createSessionAuth,
  MemorySessionStore,
  SsoTypeError,
  type RoleSource,
  type SessionAuth,
  type SessionAuthOptions,
  type SsoEvent,
} from '@ssokit/core'
import { decodeJwt } from 'jose'

import { IdentityCache } from '../../src/session/identity-cache.js'
import { encodeRecord, type SessionRecord } from '../../src/session/record.js'
import { Browser, startTestIdp, type TestIdp, webAppOptions } from './support.js'

let t: TestIdp
/** Rewrites the token endpoint's answer (as another provider would shape it), when set. */
let rewrite:
  ((body: Record<string, unknown>, idClaims: Record<string, unknown>) => Promise<void>) | undefined

async function tappedFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const url = input instanceof Request ? input.url : String(input)
  const response = await fetch(input, init)
  if (!url.endsWith('/token') || rewrite === undefined || response.status !== 200) return response
  const body = (await response.json()) as Record<string, unknown>
  await rewrite(body, decodeJwt(String(body.id_token)))
  return Response.json(body, { status: 200, headers: { 'cache-control': 'no-store' } })
}

before(async () => {
  t = await startTestIdp()
})
after(async () => {
  await t.close()
})

async function signIn(
  extra: Partial<SessionAuthOptions>,
  username = 'alice',
): Promise<{ auth: SessionAuth; events: SsoEvent[]; browser: Browser }> {
  const events: SsoEvent[] = []
  const auth = createSessionAuth(
    webAppOptions(t.issuer, new MemorySessionStore(), {
      bearer: false,
      onEvent: (event) => events.push(event),
      expert: { fetch: tappedFetch },
      ...extra,
    }),
  )
  const browser = new Browser(auth, t.issuer)
  const response = await browser.login(username)
  assert.equal(response.status, 302)
  return { auth, events, browser }
}

/** ID token claims as a provider without `preferred_username` (or CERN's `cern_upn`) sends them. */
function withoutNames(claims: Record<string, unknown>): Record<string, unknown> {
  const copy = { ...claims }
  delete copy.preferred_username
  delete copy.cern_upn
  return copy
}

const missing = (events: SsoEvent[]) => events.filter((e) => e.reason === 'role_claim_missing')

describe('session identities', () => {
  it('the default reads cern_roles; a user without roles is no warning', async () => {
    const alice = await signIn({})
    try {
      const identity = await alice.browser.authenticate('/')
      assert.deepEqual([...identity.roles].sort(), ['admin', 'user'])
      assert.equal(identity.username, 'alice')
    } finally {
      await alice.auth.close()
    }
    const bob = await signIn({}, 'bob')
    try {
      assert.equal((await bob.browser.authenticate('/')).roles.size, 0)
      assert.deepEqual(missing(bob.events), [])
    } finally {
      await bob.auth.close()
    }
  })

  it('a configured path reads the access token', async () => {
    const { auth, browser, events } = await signIn({ roles: 'realm_access.roles' })
    try {
      assert.deepEqual([...(await browser.authenticate('/')).roles], ['staff'])
      assert.deepEqual(missing(events), [])
    } finally {
      await auth.close()
    }
  })

  it('roles only in the ID token, an opaque access token, no preferred_username', async () => {
    rewrite = async (body, claims) => {
      body.access_token = 'opaque-access-token-of-another-provider'
      body.id_token = await t.sign({ ...withoutNames(claims), groups: 'editors, staff' })
    }
    try {
      const { auth, browser, events } = await signIn({ roles: 'groups' })
      try {
        const identity = await browser.authenticate('/')
        assert.deepEqual([...identity.roles].sort(), ['editors', 'staff'])
        assert.equal(identity.username, 'alice@example.org', 'email, for lack of a username')
        assert.deepEqual(missing(events), [])
      } finally {
        await auth.close()
      }
    } finally {
      rewrite = undefined
    }
  })

  it('the username claim is configurable, and read from either token', async () => {
    rewrite = async (body, claims) => {
      body.access_token = 'opaque-access-token-of-another-provider'
      body.id_token = await t.sign({ ...withoutNames(claims), upn: 'alice@corp.example' })
    }
    try {
      const configured = await signIn({ usernameClaim: 'upn' })
      const fallback = await signIn({})
      try {
        assert.equal((await configured.browser.authenticate('/')).username, 'alice@corp.example')
        assert.equal((await fallback.browser.authenticate('/')).username, 'alice@example.org')
      } finally {
        await configured.auth.close()
        await fallback.auth.close()
      }
    } finally {
      rewrite = undefined
    }
    // With the development provider's JWT access token, its preferred_username is found.
    const keycloak = await signIn({ usernameClaim: 'upn' })
    try {
      assert.equal((await keycloak.browser.authenticate('/')).username, 'alice')
    } finally {
      await keycloak.auth.close()
    }
  })

  it('role_claim_missing is reported once when neither token has the configured claim', async () => {
    const { auth, browser, events } = await signIn({ roles: 'groups' })
    try {
      assert.equal((await browser.authenticate('/')).roles.size, 0)
      const second = new Browser(auth, t.issuer)
      assert.equal((await second.login('bob')).status, 302)
      await second.authenticate('/')
      const warnings = missing(events)
      assert.equal(warnings.length, 1)
      const [warning] = warnings
      assert.equal(warning?.type, 'config_warning')
      assert.equal(warning.level, 'warn')
      assert.equal(warning.claim, 'groups')
      assert.equal(warning.iss, t.issuer)
    } finally {
      await auth.close()
    }
  })

  it('bad role sources and username claims are refused at construction, bearer or not', () => {
    for (const bearer of [false, undefined] as const) {
      for (const extra of [
        { roles: 'a..b' },
        { roles: [] as readonly string[] },
        { roles: 42 as unknown as RoleSource },
        { usernameClaim: '__proto__' },
      ]) {
        assert.throws(
          () =>
            createSessionAuth(
              webAppOptions(t.issuer, new MemorySessionStore(), {
                ...(bearer === false ? { bearer } : {}),
                ...extra,
              } as Partial<SessionAuthOptions>),
            ),
          (error: unknown) =>
            error instanceof SsoTypeError && /roles|usernameClaim/.test(error.message),
          JSON.stringify(extra),
        )
      }
    }
  })
})

describe('identity cache', () => {
  const jwt = (claims: Record<string, unknown>) =>
    `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`
  const record = (idClaims: Record<string, unknown>, accessToken: string): SessionRecord => ({
    v: 1,
    iss: 'https://idp.example.org',
    sub: 'u1',
    sid: undefined,
    aud: 'web-app',
    azp: undefined,
    idToken: jwt({ sub: 'u1', ...idClaims }),
    accessToken,
    refreshToken: undefined,
    accessExpiresAt: undefined,
    refreshAt: undefined,
    createdAt: 0,
    expiresAt: 10,
    lastSeenAt: 0,
    offline: false,
  })

  it('the access token has precedence over the ID token for roles', () => {
    let reported = 0
    const cache = new IdentityCache({
      roles: (claims) => (Array.isArray(claims.groups) ? (claims.groups as string[]) : undefined),
      username: (claims) => String(claims.sub),
      rolesMissing: () => {
        reported++
      },
    })
    const both = record({ groups: ['from-id'] }, jwt({ sub: 'u1', groups: ['from-access'] }))
    assert.deepEqual([...cache.identityOf('a', both).roles], ['from-access'])
    const idOnly = record({ groups: ['from-id'] }, 'opaque')
    assert.deepEqual([...cache.identityOf('b', idOnly).roles], ['from-id'])
    const neither = record({}, 'opaque')
    assert.equal(cache.identityOf('c', neither).roles.size, 0)
    assert.equal(reported, 1)
    assert.ok(encodeRecord(neither).length > 0)
  })
})
