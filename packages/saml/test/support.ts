/**
 * A test identity provider made of real signatures: key pairs and certificates from openssl,
 * Responses built as an IdP would and signed with xml-crypto (the key the IdP metadata lists,
 * or a rogue one), so every attack document starts from a genuinely signed Response.
 */
import { execFileSync } from 'node:child_process'
import { createSign, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { inflateRawSync } from 'node:zlib'
import { SignedXml } from 'xml-crypto'

export interface KeyPair {
  readonly key: string
  readonly cert: string
}

/** A fresh RSA key and a self-signed certificate for it. */
export function makeKeyPair(cn: string): KeyPair {
  const dir = mkdtempSync(join(tmpdir(), 'ssokit-saml-key-'))
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-sha256',
        '-days',
        '3',
        '-subj',
        `/CN=${cn}`,
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    )
    return {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export function certBody(pem: string): string {
  return pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '')
}

/** The application the tests' SP runs for, with the default prefix `/auth`. */
export const APP = 'https://app.example.org'
export const SP_ENTITY = `${APP}/sp`
export const ACS = `${APP}/auth/saml/acs`
export const SECRET = 'a-test-secret-of-at-least-32-characters!!'

export const IDP_ENTITY = 'https://idp.example.org/idp'
export const SSO_URL = 'https://idp.example.org/sso'
export const SLO_URL = 'https://idp.example.org/slo'

export function idpMetadata(cert: string, entityId = IDP_ENTITY): string {
  return `<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${entityId}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certBody(cert)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${SLO_URL}"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${SSO_URL}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`
}

export interface AssertionFields {
  readonly inResponseTo?: string | undefined
  readonly destination?: string | undefined
  readonly recipient: string
  readonly audience: string
  readonly nameId?: string
  readonly issuer?: string
  readonly notOnOrAfter?: Date
  readonly sessionIndex?: string
  readonly attributes?: Readonly<Record<string, readonly string[]>>
  readonly assertionId?: string
}

const iso = (date: Date): string => date.toISOString().replace(/\.\d{3}Z$/, 'Z')

export function assertionXml(f: AssertionFields): string {
  const now = new Date()
  const until = f.notOnOrAfter ?? new Date(now.getTime() + 5 * 60_000)
  const issuer = f.issuer ?? IDP_ENTITY
  const irt = f.inResponseTo === undefined ? '' : ` InResponseTo="${f.inResponseTo}"`
  const attributes = Object.entries(f.attributes ?? {})
    .map(
      ([name, values]) =>
        `<saml:Attribute Name="${name}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">${values
          .map((v) => `<saml:AttributeValue>${v}</saml:AttributeValue>`)
          .join('')}</saml:Attribute>`,
    )
    .join('')
  return `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${f.assertionId ?? `_${randomUUID()}`}" Version="2.0" IssueInstant="${iso(now)}"><saml:Issuer>${issuer}</saml:Issuer><saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${f.nameId ?? 'user@example.org'}</saml:NameID><saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="${iso(until)}" Recipient="${f.recipient}"${irt}/></saml:SubjectConfirmation></saml:Subject><saml:Conditions NotBefore="${iso(new Date(now.getTime() - 30_000))}" NotOnOrAfter="${iso(until)}"><saml:AudienceRestriction><saml:Audience>${f.audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions><saml:AuthnStatement AuthnInstant="${iso(now)}" SessionIndex="${f.sessionIndex ?? '_session-1'}"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement><saml:AttributeStatement>${attributes}</saml:AttributeStatement></saml:Assertion>`
}

export function responseXml(f: AssertionFields, assertion: string): string {
  const irt = f.inResponseTo === undefined ? '' : ` InResponseTo="${f.inResponseTo}"`
  const destination = f.destination === undefined ? '' : ` Destination="${f.destination}"`
  return `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_${randomUUID()}" Version="2.0" IssueInstant="${iso(new Date())}"${destination}${irt}><saml:Issuer>${f.issuer ?? IDP_ENTITY}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>${assertion}</samlp:Response>`
}

/** An enveloped RSA-SHA256 signature (exclusive c14n) over the element `xpath` selects. */
function signer(pair: KeyPair, xpath: string): SignedXml {
  const sig = new SignedXml({
    privateKey: pair.key,
    publicCert: pair.cert,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  })
  sig.addReference({
    xpath,
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
    transforms: [
      'http://www.w3.org/2000/09/xmldsig#enveloped-signature',
      'http://www.w3.org/2001/10/xml-exc-c14n#',
    ],
  })
  return sig
}

/** Signs the element `localName` (enveloped, exclusive c14n, RSA-SHA256), signature after its Issuer. */
export function sign(
  xml: string,
  localName: 'Assertion' | 'Response' | 'LogoutRequest',
  pair: KeyPair,
): string {
  const element = `/descendant-or-self::*[local-name(.)='${localName}'][1]`
  const sig = signer(pair, element)
  sig.computeSignature(xml, {
    location: { reference: `${element}/*[local-name(.)='Issuer']`, action: 'after' },
  })
  return sig.getSignedXml()
}

export function base64(xml: string): string {
  return Buffer.from(xml, 'utf8').toString('base64')
}

/** The XML inside a Redirect-binding URL's SAMLRequest or SAMLResponse. */
export function redirectedXml(location: string, param = 'SAMLRequest'): string {
  const value = new URL(location).searchParams.get(param)
  if (value === null) throw new Error(`no ${param} in ${location}`)
  return inflateRawSync(Buffer.from(value, 'base64')).toString('utf8')
}

export function requestIdOf(location: string): string {
  const id = /\bID="([^"]+)"/.exec(redirectedXml(location))?.[1]
  if (id === undefined) throw new Error('no ID in the AuthnRequest')
  return id
}

/** `name=value` pairs of the Set-Cookie headers that set (not expire) a cookie. */
export function cookiesSet(response: Response): string[] {
  return response.headers
    .getSetCookie()
    .filter((c) => !/Max-Age=0/.test(c))
    .map((c) => c.split(';')[0] ?? '')
}

/** The Redirect binding's signature over `SAMLRequest=...&SigAlg=...`. */
export function signRedirect(message: string, pair: KeyPair): string {
  const signed = `${message}&SigAlg=${encodeURIComponent('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256')}`
  const signature = createSign('RSA-SHA256').update(signed).sign(pair.key, 'base64')
  return `${signed}&Signature=${encodeURIComponent(signature)}`
}

/**
 * Metadata signed as a federation signs its aggregate: an enveloped RSA-SHA256 signature as the
 * first child of the root, over the root (which gets `ID` if it has none).
 */
export function signMetadata(xml: string, pair: KeyPair, id = `_${randomUUID()}`): string {
  const withId = /<md:Entit(y|ies)Descriptor [^>]*\bID="/.test(xml)
    ? xml
    : xml.replace(/<md:Entit(y|ies)Descriptor /, (tag) => `${tag}ID="${id}" `)
  const sig = signer(pair, '/*')
  sig.computeSignature(withId, { location: { reference: '/*', action: 'prepend' } })
  return sig.getSignedXml()
}
