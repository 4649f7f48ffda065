/**
 * The SAML service provider against the classic attacks, each from a genuinely signed Response
 * (the key the IdP metadata lists, or a rogue one), plus the ordinary flow they are measured
 * against: login, session, XHR rejection, metadata, encrypted assertions and Single Logout.
 */
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { deflateRawSync } from 'node:zlib'
import { fromRequest, MemorySessionStore } from '@ssokit/core'
import { encrypt } from 'xml-encryption'
import {
  createSamlAuth,
  type SamlAuth,
  type SamlAuthOptions,
  type SamlEvent,
} from '../src/index.js'
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
  SSO_URL,
  type AssertionFields,
  SECRET,
  SP_ENTITY,
  type KeyPair,
} from './support.js'

let idpKey: KeyPair
let rogueKey: KeyPair
let spKey: KeyPair
const events: SamlEvent[] = []
const store = new MemorySessionStore()

function makeAuth(extra: Partial<SamlAuthOptions> = {}): SamlAuth {
  return createSamlAuth({
    publicUrl: APP,
    secret: SECRET,
    entityId: SP_ENTITY,
    idp: { xml: idpMetadata(idpKey.cert) },
    certificate: spKey.cert,
    privateKey: spKey.key,
    store,
    onEvent: (event) => events.push(event),
    ...extra,
  })
}

interface Flow {
  readonly requestId: string
  readonly cookie: string
}

async function startLogin(auth: SamlAuth, returnTo = '/app'): Promise<Flow> {
  const response = await auth.handle(
    new Request(`${APP}/auth/login?returnTo=${encodeURIComponent(returnTo)}`),
  )
  assert.ok(response)
  assert.equal(response.status, 302)
  const location = response.headers.get('location') ?? ''
  assert.ok(location.startsWith(`${SSO_URL}?`))
  return { requestId: requestIdOf(location), cookie: cookiesSet(response).join('; ') }
}

function fields(flow: Flow | undefined, extra: Partial<AssertionFields> = {}): AssertionFields {
  return {
    inResponseTo: flow?.requestId,
    destination: ACS,
    recipient: ACS,
    audience: SP_ENTITY,
    attributes: {
      'urn:oid:1.3.6.1.4.1.5923.1.1.1.6': ['jdoe@example.org'],
      'urn:oid:0.9.2342.19200300.100.1.3': ['jane.doe@example.org'],
      'urn:oid:2.16.840.1.113730.3.1.241': ['Jane Doe'],
      'urn:oid:1.3.6.1.4.1.5923.1.5.1.1': ['staff', 'admins'],
    },
    ...extra,
  }
}

/** A Response whose assertion is signed with the IdP key (or `by`). */
function signedResponse(f: AssertionFields, by: KeyPair = idpKey): string {
  return responseXml(f, sign(assertionXml(f), 'Assertion', by))
}

async function post(
  auth: SamlAuth,
  xmlOrBase64: string,
  cookie: string,
  extra: Record<string, string> = {},
): Promise<Response> {
  const value = xmlOrBase64.startsWith('<') ? base64(xmlOrBase64) : xmlOrBase64
  const response = await auth.handle(
    new Request(`${APP}/auth/saml/acs`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({ SAMLResponse: value, ...extra }),
    }),
  )
  assert.ok(response)
  return response
}

function sessionCookie(response: Response): string {
  const cookie = cookiesSet(response).find((c) => c.startsWith('__Host-ssokit-session='))
  assert.ok(cookie, 'a session cookie is set')
  return cookie
}

async function whoIs(auth: SamlAuth, cookie: string) {
  return auth.authenticate(fromRequest(new Request(`${APP}/app`, { headers: { cookie } })))
}

/** Asserts a refused sign-in: 400, no session cookie, and the reason reported. */
function assertRefused(response: Response, reason: string): void {
  assert.equal(response.status, 400)
  assert.ok(!cookiesSet(response).some((c) => c.startsWith('__Host-ssokit-session=')))
  assert.equal(events.at(-1)?.type, 'saml_login_refused')
  assert.equal(events.at(-1)?.reason, reason)
}

describe('SAML service provider', () => {
  let auth: SamlAuth

  before(() => {
    idpKey = makeKeyPair('idp.example.org')
    rogueKey = makeKeyPair('rogue.example')
    spKey = makeKeyPair('app.example.org')
    auth = makeAuth()
  })

  it('a signed assertion in answer to this browser’s request creates a session with the mapped identity', async () => {
    const flow = await startLogin(auth)
    const response = await post(auth, signedResponse(fields(flow)), flow.cookie)
    assert.equal(response.status, 303, JSON.stringify(events.at(-1)))
    assert.equal(response.headers.get('location'), `${APP}/app`)
    const identity = await whoIs(auth, sessionCookie(response))
    assert.equal(identity.subject, 'user@example.org')
    assert.equal(identity.username, 'jdoe@example.org')
    assert.equal(identity.email, 'jane.doe@example.org')
    assert.equal(identity.name, 'Jane Doe')
    assert.deepEqual([...identity.roles].sort(), ['admins', 'staff'])
    assert.equal(identity.via, 'session')
    assert.equal(identity.claims.iss, IDP_ENTITY)
    const attributes = identity.claims.attributes as Record<string, string[]>
    assert.deepEqual(attributes.eppn, ['jdoe@example.org'])
  })

  it('the AuthnRequest is signed, names this ACS and entity, and its transaction cookie is SameSite=None', async () => {
    const response = await auth.handle(new Request(`${APP}/auth/login`))
    const location = new URL(response?.headers.get('location') ?? '')
    assert.ok(location.searchParams.get('Signature'))
    assert.match(location.searchParams.get('SigAlg') ?? '', /rsa-sha256/)
    const xml = redirectedXml(location.href)
    assert.match(xml, new RegExp(`AssertionConsumerServiceURL="${ACS}"`))
    assert.match(xml, new RegExp(`<saml:Issuer[^>]*>${SP_ENTITY}</saml:Issuer>`))
    const tx = response?.headers.getSetCookie().find((c) => c.includes('ssokit-tx-saml-')) ?? ''
    assert.match(tx, /SameSite=None/)
    assert.match(tx, /Secure/)
  })

  it('XML signature wrapping: the signed assertion moved aside, an unsigned one in its place, is refused', async () => {
    const flow = await startLogin(auth)
    const genuine = sign(assertionXml(fields(flow)), 'Assertion', idpKey)
    const evil = assertionXml(fields(flow, { nameId: 'admin@example.org' }))
    const wrapped = responseXml(
      fields(flow),
      `<samlp:Extensions>${genuine}</samlp:Extensions>${evil}`,
    )
    assertRefused(await post(auth, wrapped, flow.cookie), 'signature')
  })

  it('XML signature wrapping: a second, unsigned assertion next to the signed one is refused', async () => {
    const flow = await startLogin(auth)
    const genuine = sign(assertionXml(fields(flow)), 'Assertion', idpKey)
    const evil = assertionXml(fields(flow, { nameId: 'admin@example.org' }))
    assertRefused(
      await post(auth, responseXml(fields(flow), evil + genuine), flow.cookie),
      'signature',
    )
    const flow2 = await startLogin(auth)
    const genuine2 = sign(assertionXml(fields(flow2)), 'Assertion', idpKey)
    const evil2 = assertionXml(fields(flow2, { nameId: 'admin@example.org' }))
    assertRefused(
      await post(auth, responseXml(fields(flow2), genuine2 + evil2), flow2.cookie),
      'signature',
    )
  })

  it('comment injection in NameID: user@example.org<!---->.evil is read as the whole signed value', async () => {
    const flow = await startLogin(auth)
    const signed = signedResponse(fields(flow, { nameId: 'user@example.org.evil' }))
    const injected = signed.replace('user@example.org.evil', 'user@example.org<!---->.evil')
    assert.notEqual(injected, signed)
    const response = await post(auth, injected, flow.cookie)
    assert.equal(response.status, 303)
    const identity = await whoIs(auth, sessionCookie(response))
    assert.equal(identity.subject, 'user@example.org.evil')
  })

  it('an unsigned assertion inside a signed Response is refused', async () => {
    const flow = await startLogin(auth)
    const f = fields(flow)
    const response = sign(responseXml(f, assertionXml(f)), 'Response', idpKey)
    assertRefused(await post(auth, response, flow.cookie), 'signature')
  })

  it('a signed assertion in an unsigned Response is refused when requireSignedResponse is set, accepted with both signed', async () => {
    const strict = makeAuth({ requireSignedResponse: true })
    const flow = await startLogin(strict)
    assertRefused(await post(strict, signedResponse(fields(flow)), flow.cookie), 'signature')
    const flow2 = await startLogin(strict)
    const both = sign(signedResponse(fields(flow2)), 'Response', idpKey)
    assert.equal((await post(strict, both, flow2.cookie)).status, 303)
  })

  it('a signature by a key the IdP metadata does not list is refused', async () => {
    const flow = await startLogin(auth)
    assertRefused(
      await post(auth, signedResponse(fields(flow), rogueKey), flow.cookie),
      'signature',
    )
  })

  it('a replayed assertion is refused, by a second instance sharing the store too', async () => {
    const flow = await startLogin(auth)
    const response = signedResponse(fields(flow))
    assert.equal((await post(auth, response, flow.cookie)).status, 303)
    assertRefused(await post(auth, response, flow.cookie), 'replay')
    const other = makeAuth()
    const flow2 = await startLogin(other)
    const f = fields(flow2, { assertionId: '_fixed-assertion-id' })
    assert.equal((await post(other, signedResponse(f), flow2.cookie)).status, 303)
    const flow3 = await startLogin(auth)
    const replay = signedResponse(fields(flow3, { assertionId: '_fixed-assertion-id' }))
    assertRefused(await post(auth, replay, flow3.cookie), 'replay')
  })

  it('a wrong Audience is refused', async () => {
    const flow = await startLogin(auth)
    const f = fields(flow, { audience: 'https://other.example.org/sp' })
    assertRefused(await post(auth, signedResponse(f), flow.cookie), 'audience')
  })

  it('a wrong Destination is refused', async () => {
    const flow = await startLogin(auth)
    const f = fields(flow, { destination: 'https://other.example.org/acs' })
    assertRefused(await post(auth, signedResponse(f), flow.cookie), 'destination')
  })

  it('a wrong Recipient is refused', async () => {
    const flow = await startLogin(auth)
    const f = fields(flow, { recipient: 'https://other.example.org/acs' })
    assertRefused(await post(auth, signedResponse(f), flow.cookie), 'recipient')
  })

  it('an expired NotOnOrAfter is refused', async () => {
    const flow = await startLogin(auth)
    const f = fields(flow, { notOnOrAfter: new Date(Date.now() - 10 * 60_000) })
    assertRefused(await post(auth, signedResponse(f), flow.cookie), 'expired')
  })

  it('a Response to another browser’s request is refused (login CSRF)', async () => {
    const attacker = await startLogin(auth)
    const victim = await startLogin(auth)
    const response = signedResponse(fields(attacker, { nameId: 'attacker@example.org' }))
    assertRefused(await post(auth, response, victim.cookie), 'in_response_to')
    assertRefused(await post(auth, signedResponse(fields(attacker)), ''), 'in_response_to')
  })

  it('an unsolicited Response is refused unless allowUnsolicited is set', async () => {
    assertRefused(await post(auth, signedResponse(fields(undefined)), ''), 'unsolicited')
    const open = makeAuth({ allowUnsolicited: true })
    const response = await post(open, signedResponse(fields(undefined)), '', {
      RelayState: '/reports',
    })
    assert.equal(response.status, 303)
    assert.equal(response.headers.get('location'), `${APP}/reports`)
  })

  it('RelayState cannot redirect to another site', async () => {
    const open = makeAuth({ allowUnsolicited: true })
    for (const relay of [
      'https://evil.example/',
      '//evil.example/x',
      '/\\evil.example',
      'javascript:alert(1)',
    ]) {
      const response = await post(open, signedResponse(fields(undefined)), '', {
        RelayState: relay,
      })
      assert.equal(response.status, 303)
      assert.equal(response.headers.get('location'), `${APP}/`, relay)
    }
    const response = await post(open, signedResponse(fields(undefined)), '', {
      RelayState: `${APP}/deep/link?x=1`,
    })
    assert.equal(response.headers.get('location'), `${APP}/deep/link?x=1`)
  })

  it('XXE and entity expansion: a Response with a DTD is refused before parsing', async () => {
    const flow = await startLogin(auth)
    const signed = signedResponse(fields(flow))
    const xxe = `<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>${signed.replace('Jane Doe', '&x;')}`
    assertRefused(await post(auth, xxe, flow.cookie), 'doctype')
    const lol = `<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>${signed.replace('Jane Doe', '&b;')}`
    assertRefused(await post(auth, lol, flow.cookie), 'doctype')
  })

  it('an oversized SAMLResponse is answered 413 without being read whole', async () => {
    const flow = await startLogin(auth)
    const huge = base64(`<samlp:Response>${'x'.repeat(300 * 1024)}</samlp:Response>`)
    const response = await post(auth, huge, flow.cookie)
    assert.equal(response.status, 413)
    assert.equal(events.at(-1)?.reason, 'body_too_large')
  })

  it('an encrypted assertion is decrypted with the SP key and signed inside', async () => {
    const flow = await startLogin(auth)
    const f = fields(flow)
    const signedAssertion = sign(assertionXml(f), 'Assertion', idpKey)
    const encrypted = await new Promise<string>((resolve, reject) => {
      encrypt(
        signedAssertion,
        {
          rsa_pub: spKey.cert,
          pem: spKey.cert,
          encryptionAlgorithm: 'http://www.w3.org/2009/xmlenc11#aes256-gcm',
          keyEncryptionAlgorithm: 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
        },
        (error, result) => {
          if (typeof result === 'string') resolve(result)
          else reject(error)
        },
      )
    })
    const response = await post(
      auth,
      responseXml(f, `<saml:EncryptedAssertion>${encrypted}</saml:EncryptedAssertion>`),
      flow.cookie,
    )
    assert.equal(response.status, 303)
    assert.equal((await whoIs(auth, sessionCookie(response))).subject, 'user@example.org')
  })

  it('without a session, an XHR gets 401 JSON with the login URL and a navigation is redirected', async () => {
    const xhr = fromRequest(
      new Request(`${APP}/api/data`, { headers: { accept: 'application/json' } }),
    )
    const error = await auth.authenticate(xhr).catch((e: unknown) => e)
    const parts = auth.reject(error, xhr)
    assert.equal(parts.status, 401)
    assert.equal(
      (JSON.parse(parts.body) as { login_url?: string }).login_url,
      `${APP}/auth/login?returnTo=%2Fapi%2Fdata`,
    )
    const page = fromRequest(
      new Request(`${APP}/page?x=1`, {
        headers: { accept: 'text/html', 'sec-fetch-mode': 'navigate' },
      }),
    )
    const redirect = auth.reject(await auth.authenticate(page).catch((e: unknown) => e), page)
    assert.equal(redirect.status, 302)
    assert.equal(redirect.headers.location, `${APP}/auth/login?returnTo=%2Fpage%3Fx%3D1`)
  })

  it('serves SP metadata with the entity id, ACS, SLO and the signing and encryption certificate', async () => {
    const response = await auth.handle(new Request(`${APP}/auth/saml/metadata`))
    assert.equal(response?.status, 200)
    assert.match(response.headers.get('content-type') ?? '', /samlmetadata\+xml/)
    const xml = await response.text()
    assert.match(xml, new RegExp(`entityID="${SP_ENTITY}"`))
    assert.match(
      xml,
      new RegExp(
        `AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${ACS}"`,
      ),
    )
    assert.match(
      xml,
      /SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"/,
    )
    assert.match(xml, /KeyDescriptor use="signing"/)
    assert.match(xml, /KeyDescriptor use="encryption"/)
  })

  it('SP-initiated logout: a same-origin POST ends the session and sends a signed LogoutRequest to the IdP', async () => {
    const flow = await startLogin(auth)
    const cookie = sessionCookie(
      await post(auth, signedResponse(fields(flow, { sessionIndex: '_sp-logout' })), flow.cookie),
    )
    const response = await auth.handle(
      new Request(`${APP}/auth/logout`, {
        method: 'POST',
        headers: { cookie, 'sec-fetch-site': 'same-origin' },
      }),
    )
    assert.equal(response?.status, 302)
    const location = response.headers.get('location') ?? ''
    assert.ok(location.startsWith(`${SLO_URL}?`))
    assert.ok(new URL(location).searchParams.get('Signature'))
    assert.match(redirectedXml(location), /SessionIndex[^>]*>_sp-logout</)
    await assert.rejects(whoIs(auth, cookie), { code: 'session_missing' })
    const crossSite = await auth.handle(
      new Request(`${APP}/auth/logout`, {
        method: 'POST',
        headers: { 'sec-fetch-site': 'cross-site' },
      }),
    )
    assert.equal(crossSite?.status, 403)
  })

  it('IdP-initiated logout: a signed LogoutRequest ends every session of its SessionIndex; an unsigned one ends nothing', async () => {
    const flow = await startLogin(auth)
    const cookie = sessionCookie(
      await post(auth, signedResponse(fields(flow, { sessionIndex: '_idp-logout' })), flow.cookie),
    )
    const request = `<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_lr1" Version="2.0" IssueInstant="${new Date().toISOString()}" Destination="${APP}/auth/saml/slo"><saml:Issuer>${IDP_ENTITY}</saml:Issuer><saml:NameID>user@example.org</saml:NameID><samlp:SessionIndex>_idp-logout</samlp:SessionIndex></samlp:LogoutRequest>`
    const message = `SAMLRequest=${encodeURIComponent(deflateRawSync(request).toString('base64'))}`
    const unsigned = await auth.handle(new Request(`${APP}/auth/saml/slo?${message}`))
    assert.equal(unsigned?.status, 400)
    assert.equal(events.at(-1)?.reason, 'signature')
    assert.equal((await whoIs(auth, cookie)).subject, 'user@example.org')
    const rogue = await auth.handle(
      new Request(`${APP}/auth/saml/slo?${signRedirect(message, rogueKey)}`),
    )
    assert.equal(rogue?.status, 400)
    assert.equal((await whoIs(auth, cookie)).subject, 'user@example.org')
    const signed = await auth.handle(
      new Request(`${APP}/auth/saml/slo?${signRedirect(message, idpKey)}`),
    )
    assert.equal(signed?.status, 302)
    const location = signed.headers.get('location') ?? ''
    assert.ok(location.startsWith(`${SLO_URL}?`))
    assert.match(redirectedXml(location, 'SAMLResponse'), /InResponseTo="_lr1"/)
    await assert.rejects(whoIs(auth, cookie), { code: 'session_missing' })
  })
})
