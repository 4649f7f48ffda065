/**
 * The signature of a federation's metadata, checked with xml-crypto against the certificate
 * the operator configured (`metadataCert`), never against one the document carries. The way
 * `@node-saml/node-saml` checks a Response is followed: exactly one enveloped signature, a
 * direct child of the root that references the root and nothing else, at most two transforms,
 * and afterwards only the bytes the signature covered are read (xml-crypto's signed
 * references), so nothing outside what was signed can be slipped in beside it.
 */
import { SignedXml } from 'xml-crypto'
import { attribute, children, parseXml } from './xml.js'

const DS = 'http://www.w3.org/2000/09/xmldsig#'

/** Why signed metadata was refused; its message names the reason, never the XML. */
export class MetadataSignatureError extends Error {
  override readonly name = 'MetadataSignatureError'
}

/** The PEM certificates in `pem` (one or several, for a signing key rollover). */
export function pemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/g) ?? []
}

function countById(root: Element, id: string): number {
  let count = 0
  const all = root.ownerDocument.getElementsByTagName('*')
  for (let i = 0; i < all.length; i++) {
    const element = all.item(i)
    if (element !== null && (attribute(element, 'ID') === id || attribute(element, 'Id') === id))
      count++
  }
  return count
}

/**
 * The metadata as its signature covers it (the root element, signature removed), when it is
 * signed by one of `certificates`; otherwise a `MetadataSignatureError`.
 */
export function verifiedMetadataXml(xml: string, certificates: readonly string[]): string {
  const normalized = xml.replace(/\r\n?/g, '\n')
  const root = parseXml(normalized).documentElement
  const signatures = children(root, DS, 'Signature')
  if (signatures.length === 0)
    throw new MetadataSignatureError(
      'The IdP metadata is not signed, and a certificate to check its signature is configured.',
    )
  if (signatures.length > 1)
    throw new MetadataSignatureError('The IdP metadata carries more than one signature.')
  const signature = signatures[0] as Element
  const id = attribute(root, 'ID')
  if (id === undefined || id === '' || countById(root, id) !== 1)
    throw new MetadataSignatureError('The IdP metadata signature does not cover its root element.')
  if (signature.getElementsByTagNameNS(DS, 'Transform').length > 2)
    throw new MetadataSignatureError('The IdP metadata signature has too many transforms.')
  for (const certificate of certificates) {
    // The key is the configured certificate alone: a certificate in the KeyInfo is not trusted.
    const check = new SignedXml({ publicCert: certificate, getCertFromKeyInfo: () => null })
    check.loadSignature(signature)
    const references = check.getReferences()
    if (references.length !== 1 || references[0]?.uri !== `#${id}`)
      throw new MetadataSignatureError(
        'The IdP metadata signature does not cover its root element.',
      )
    let valid = false
    try {
      valid = check.checkSignature(normalized)
    } catch {
      valid = false
    }
    const signed = check.getSignedReferences()
    if (valid && signed.length === 1 && signed[0] !== undefined) return signed[0]
  }
  throw new MetadataSignatureError(
    'The IdP metadata signature does not verify with the configured metadata certificate.',
  )
}
