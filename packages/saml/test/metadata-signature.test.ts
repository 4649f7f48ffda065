/**
 * Federation metadata read from a URL (a real HTTP server on 127.0.0.1) and checked against the
 * configured `metadataCert`: signed metadata is used, unsigned, wrongly signed, altered, wrapped
 * or expired metadata is refused with a sentence saying why, at start-up (`ready()`) and at a
 * refresh, where the last good copy stays in use. Every document is signed at test time.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { MemorySessionStore } from '@ssokit/core'
import { createSamlAuth, type SamlAuth, type SamlEvent } from '../src/index.js'
import {
  APP,
  idpMetadata,
  makeKeyPair,
  SECRET,
  signMetadata,
  SP_ENTITY,
  SSO_URL,
  type KeyPair,
} from './support.js'

let federation: KeyPair
let rogue: KeyPair
let idpKey: KeyPair
let server: Server
let url: string
/** What the metadata server answers with. */
let served = ''
let clock = Date.now()
const events: SamlEvent[] = []
const store = new MemorySessionStore()

function makeAuth(metadataCert: string = federation.cert): SamlAuth {
  return createSamlAuth({
    publicUrl: APP,
    secret: SECRET,
    entityId: SP_ENTITY,
    idp: { url, metadataCert, refreshSeconds: 60 },
    store,
    onEvent: (event) => events.push(event),
    expert: { now: () => clock },
  })
}

/** `ready()`'s refusal message for the metadata served now. */
async function refusal(xml: string): Promise<string> {
  served = xml
  const auth = makeAuth()
  const error = await auth.ready().then(
    () => undefined,
    (e: unknown) => e as { code?: string; message?: string },
  )
  assert.ok(error, 'the metadata was accepted')
  assert.equal(error.code, 'provider_unavailable')
  // Sign-in cannot start either: 503, never a redirect to an IdP nobody vouched for.
  const login = await auth.handle(new Request(`${APP}/auth/login`))
  assert.equal(login?.status, 503)
  assert.equal(login.headers.get('location'), null)
  await auth.close()
  return error.message ?? ''
}

async function loginTarget(auth: SamlAuth): Promise<string> {
  const login = await auth.handle(new Request(`${APP}/auth/login`))
  assert.equal(login?.status, 302)
  const location = new URL(login.headers.get('location') ?? '')
  return `${location.origin}${location.pathname}`
}

describe('IdP metadata signed by a federation (metadataCert)', () => {
  before(async () => {
    federation = makeKeyPair('metadata.federation.example')
    rogue = makeKeyPair('rogue.example')
    idpKey = makeKeyPair('idp.example.org')
    server = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/samlmetadata+xml' })
      response.end(served)
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/federation.xml`
  })
  after(async () => {
    server.close()
    await once(server, 'close')
    await store.close()
  })

  it('metadata signed with the federation key is used; a certificate file holding several certificates (rollover) works', async () => {
    served = signMetadata(idpMetadata(idpKey.cert), federation)
    const auth = makeAuth()
    await auth.ready()
    assert.equal(await loginTarget(auth), SSO_URL)
    await auth.close()
    const bundle = makeAuth(`${rogue.cert}${federation.cert}`)
    await bundle.ready()
    await bundle.close()
  })

  it('unsigned metadata is refused', async () => {
    assert.match(await refusal(idpMetadata(idpKey.cert)), /not signed/)
  })

  it('metadata signed by another key (its certificate in the KeyInfo is not trusted) is refused', async () => {
    const signed = signMetadata(idpMetadata(idpKey.cert), rogue)
    assert.match(signed, /<X509Certificate>/)
    assert.match(await refusal(signed), /does not verify/)
  })

  it('metadata altered after signing (another SSO URL) is refused', async () => {
    const signed = signMetadata(idpMetadata(idpKey.cert), federation)
    const altered = signed.replace(SSO_URL, 'https://evil.example/sso')
    assert.notEqual(altered, signed)
    assert.match(await refusal(altered), /does not verify/)
  })

  it('signature wrapping: the signed entity inside an unsigned aggregate next to another entity is refused', async () => {
    const signed = signMetadata(idpMetadata(idpKey.cert), federation).replace(
      /^<\?xml[^>]*>\s*/,
      '',
    )
    const evil = idpMetadata(rogue.cert, 'https://evil.example/idp').replace(/^<\?xml[^>]*>\s*/, '')
    const wrapped = `<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" ID="_aggregate">${evil}${signed}</md:EntitiesDescriptor>`
    assert.match(await refusal(wrapped), /not signed/)
  })

  it('signed metadata past its validUntil is refused', async () => {
    const expired = idpMetadata(idpKey.cert).replace(
      '<md:EntityDescriptor ',
      `<md:EntityDescriptor validUntil="${new Date(clock - 60_000).toISOString()}" `,
    )
    assert.match(await refusal(signMetadata(expired, federation)), /expired/)
  })

  it('a refresh that brings wrongly signed metadata is reported, and the last good copy stays in use', async () => {
    served = signMetadata(idpMetadata(idpKey.cert), federation)
    const auth = makeAuth()
    await auth.ready()
    const seen = events.length
    served = signMetadata(
      idpMetadata(rogue.cert).replace(SSO_URL, 'https://evil.example/sso'),
      rogue,
    )
    clock += 61_000
    // The first request after the interval starts the refresh and is served from the good copy.
    assert.equal(await loginTarget(auth), SSO_URL)
    for (let i = 0; i < 3000 && !events.slice(seen).some(isRefreshFailure); i++)
      await new Promise((resolve) => setTimeout(resolve, 10))
    const reported = events.slice(seen).find(isRefreshFailure)
    assert.ok(reported, 'the failed refresh was reported')
    assert.match(reported.message, /does not verify/)
    assert.equal(await loginTarget(auth), SSO_URL)
    await auth.close()
  })

  it('a metadataCert that is not a PEM certificate is refused when the SP is created', () => {
    assert.throws(() => makeAuth('not a certificate'), {
      name: 'TypeError',
      message: /metadataCert must be PEM/,
    })
  })
})

function isRefreshFailure(event: SamlEvent): boolean {
  return event.type === 'idp_metadata_unavailable' && /refresh/.test(event.message)
}
