/**
 * IdP-initiated Single Logout on both bindings the SP metadata offers (HTTP-Redirect with a
 * query signature, HTTP-POST with an enveloped XML signature made with the IdP's key), and the
 * checks around the library's: a LogoutRequest is taken once (the replay cache in the session
 * store, shared by every instance), must be recent and must be addressed to this endpoint.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { deflateRawSync } from 'node:zlib'
import { fromRequest, MemorySessionStore } from '@ssokit/core'
import { createSamlAuth, type SamlAuth, type SamlEvent } from '../src/index.js'
import {
  ACS,
  APP,
  assertionXml,
  base64,
  cookiesSet,
  idpMetadata,
  IDP_ENTITY,
  makeKeyPair,
  redirectedXml,
  requestIdOf,
  responseXml,
  sign,
  signRedirect,
  SLO_URL,
  SECRET,
  SP_ENTITY,
  type KeyPair,
} from './support.js'

const SLO = `${APP}/auth/saml/slo`

let idpKey: KeyPair
let rogueKey: KeyPair
let spKey: KeyPair
const events: SamlEvent[] = []
const store = new MemorySessionStore()
let auth: SamlAuth
/** A second instance sharing the store, as two replicas behind a load balancer. */
let other: SamlAuth

function makeAuth(): SamlAuth {
  return createSamlAuth({
    publicUrl: APP,
    secret: SECRET,
    entityId: SP_ENTITY,
    idp: { xml: idpMetadata(idpKey.cert) },
    certificate: spKey.cert,
    privateKey: spKey.key,
    store,
    onEvent: (event) => events.push(event),
  })
}

/** Signs in through `auth` with a session of `sessionIndex`; resolves to the session cookie. */
async function signIn(sessionIndex: string): Promise<string> {
  const start = await auth.handle(new Request(`${APP}/auth/login?returnTo=/app`))
  assert.equal(start?.status, 302)
  const f = {
    inResponseTo: requestIdOf(start.headers.get('location') ?? ''),
    destination: ACS,
    recipient: ACS,
    audience: SP_ENTITY,
    sessionIndex,
  }
  const answer = await auth.handle(
    new Request(ACS, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        cookie: cookiesSet(start).join('; '),
      },
      body: new URLSearchParams({
        SAMLResponse: base64(responseXml(f, sign(assertionXml(f), 'Assertion', idpKey))),
      }),
    }),
  )
  assert.equal(answer?.status, 303, JSON.stringify(events.at(-1)))
  const cookie = cookiesSet(answer).find((c) => c.startsWith('__Host-ssokit-session='))
  assert.ok(cookie)
  return cookie
}

async function signedIn(cookie: string): Promise<boolean> {
  const request = fromRequest(new Request(`${APP}/app`, { headers: { cookie } }))
  return auth.authenticate(request).then(
    () => true,
    (error: unknown) => {
      assert.equal((error as { code?: string }).code, 'session_missing')
      return false
    },
  )
}

interface LogoutFields {
  readonly sessionIndex: string
  readonly id?: string
  readonly issued?: Date
  readonly destination?: string
}

function logoutRequestXml(f: LogoutFields): string {
  const issued = (f.issued ?? new Date()).toISOString()
  return `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${f.id ?? `_${randomUUID()}`}" Version="2.0" IssueInstant="${issued}" Destination="${f.destination ?? SLO}"><saml:Issuer>${IDP_ENTITY}</saml:Issuer><saml:NameID>user@example.org</saml:NameID><samlp:SessionIndex>${f.sessionIndex}</samlp:SessionIndex></samlp:LogoutRequest>`
}

/** The HTTP-Redirect binding: deflated, base64, the query signed. */
function redirectRequest(f: LogoutFields, by: KeyPair = idpKey): Request {
  const message = `SAMLRequest=${encodeURIComponent(deflateRawSync(logoutRequestXml(f)).toString('base64'))}`
  return new Request(`${SLO}?${signRedirect(message, by)}`)
}

/** The HTTP-POST binding: the XML signed (enveloped), base64, in an auto-posted form. */
function postRequest(f: LogoutFields, by: KeyPair | null = idpKey): Request {
  const xml = logoutRequestXml(f)
  return new Request(SLO, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      SAMLRequest: base64(by === null ? xml : sign(xml, 'LogoutRequest', by)),
      RelayState: 'state-1',
    }),
  })
}

async function send(target: SamlAuth, request: Request): Promise<Response> {
  const response = await target.handle(request)
  assert.ok(response)
  return response
}

function assertRefused(response: Response, reason: string): void {
  assert.equal(response.status, 400)
  assert.equal(response.headers.get('location'), null)
  assert.equal(events.at(-1)?.type, 'saml_logout_refused')
  assert.equal(events.at(-1)?.reason, reason)
}

/** Answered with a LogoutResponse to the IdP's SLO service (HTTP-Redirect) naming `id`. */
function assertAnswered(response: Response, id: string, relayState: string | null): void {
  assert.equal(response.status, 302)
  const location = response.headers.get('location') ?? ''
  assert.ok(location.startsWith(`${SLO_URL}?`), location)
  assert.match(redirectedXml(location, 'SAMLResponse'), new RegExp(`InResponseTo="${id}"`))
  assert.equal(new URL(location).searchParams.get('RelayState'), relayState)
}

describe('IdP-initiated Single Logout', () => {
  before(() => {
    idpKey = makeKeyPair('idp.example.org')
    rogueKey = makeKeyPair('rogue.example')
    spKey = makeKeyPair('app.example.org')
    auth = makeAuth()
    other = makeAuth()
  })
  after(async () => {
    await store.close()
  })

  it('HTTP-POST binding: a LogoutRequest signed with the IdP key ends the session and is answered', async () => {
    const cookie = await signIn('_post-1')
    const unsigned = await send(auth, postRequest({ sessionIndex: '_post-1' }, null))
    assertRefused(unsigned, 'signature')
    const rogue = await send(auth, postRequest({ sessionIndex: '_post-1' }, rogueKey))
    assertRefused(rogue, 'signature')
    assert.equal(await signedIn(cookie), true)
    const signed = await send(auth, postRequest({ sessionIndex: '_post-1', id: '_lr-post-1' }))
    assertAnswered(signed, '_lr-post-1', 'state-1')
    assert.equal(await signedIn(cookie), false)
  })

  it('HTTP-Redirect binding: a LogoutRequest with a query signature by the IdP key ends the session', async () => {
    const cookie = await signIn('_redirect-1')
    const rogue = await send(auth, redirectRequest({ sessionIndex: '_redirect-1' }, rogueKey))
    assertRefused(rogue, 'signature')
    assert.equal(await signedIn(cookie), true)
    const signed = await send(
      auth,
      redirectRequest({ sessionIndex: '_redirect-1', id: '_lr-redirect-1' }),
    )
    assertAnswered(signed, '_lr-redirect-1', null)
    assert.equal(await signedIn(cookie), false)
  })

  it('a replayed LogoutRequest is refused on either binding, at this instance and at another sharing the store', async () => {
    for (const [binding, make] of [
      ['redirect', redirectRequest],
      ['post', postRequest],
    ] as const) {
      const index = `_replay-${binding}`
      const fields = { sessionIndex: index, id: `_lr-replay-${binding}` }
      await signIn(index)
      const first = await send(auth, make(fields))
      assert.equal(first.status, 302, binding)
      // The user signs in again at once: the same IdP session, so the same SessionIndex.
      const again = await signIn(index)
      assertRefused(await send(auth, make(fields)), 'replay')
      assertRefused(await send(other, make(fields)), 'replay')
      assert.equal(await signedIn(again), true, `${binding}: the replay ended nothing`)
    }
  })

  it('a LogoutRequest issued long ago, or in the future, is refused even though it has no NotOnOrAfter', async () => {
    const cookie = await signIn('_old-1')
    const old = new Date(Date.now() - 3600_000)
    assertRefused(
      await send(auth, redirectRequest({ sessionIndex: '_old-1', issued: old })),
      'expired',
    )
    assertRefused(await send(auth, postRequest({ sessionIndex: '_old-1', issued: old })), 'expired')
    const future = new Date(Date.now() + 3600_000)
    assertRefused(
      await send(auth, postRequest({ sessionIndex: '_old-1', issued: future })),
      'expired',
    )
    assert.equal(await signedIn(cookie), true)
  })

  it('a LogoutRequest addressed to another endpoint is refused', async () => {
    const cookie = await signIn('_dest-1')
    const elsewhere = { sessionIndex: '_dest-1', destination: 'https://other.example/saml/slo' }
    assertRefused(await send(auth, redirectRequest(elsewhere)), 'destination')
    assertRefused(await send(auth, postRequest(elsewhere)), 'destination')
    assert.equal(await signedIn(cookie), true)
  })
})
