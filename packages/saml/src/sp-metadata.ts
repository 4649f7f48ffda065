/**
 * The SP's metadata, served at `<prefix>/saml/metadata`: what an IdP or a federation registers.
 * Built here rather than by the library so that Single Logout is offered on both bindings the
 * SP accepts (HTTP-Redirect first, which most IdPs prefer, and HTTP-POST).
 */
import type { ResolvedSamlConfig } from './options.js'

function xmlText(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
}

function certBody(pem: string): string {
  return pem
    .replace(/-----BEGIN CERTIFICATE-----|-----END CERTIFICATE-----/g, '')
    .replace(/\s+/g, '')
}

function keyDescriptor(use: 'signing' | 'encryption', cert: string): string {
  const methods =
    use === 'encryption'
      ? [
          'http://www.w3.org/2009/xmlenc11#aes256-gcm',
          'http://www.w3.org/2009/xmlenc11#aes128-gcm',
          'http://www.w3.org/2001/04/xmlenc#aes256-cbc',
          'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p',
        ]
          .map((m) => `\n      <md:EncryptionMethod Algorithm="${m}"/>`)
          .join('')
      : ''
  return `
    <md:KeyDescriptor use="${use}">
      <ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certBody(cert)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo>${methods}
    </md:KeyDescriptor>`
}

export function spMetadata(config: ResolvedSamlConfig): string {
  const cert = config.certificate
  const keys =
    cert === undefined ? '' : keyDescriptor('signing', cert) + keyDescriptor('encryption', cert)
  const nameId =
    config.nameIdFormat === undefined
      ? ''
      : `\n    <md:NameIDFormat>${xmlText(config.nameIdFormat)}</md:NameIDFormat>`
  const slo = xmlText(config.sloUrl)
  return `<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${xmlText(config.entityId)}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" AuthnRequestsSigned="${cert !== undefined}" WantAssertionsSigned="true">${keys}
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${slo}"/>
    <md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${slo}"/>${nameId}
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="${xmlText(config.acsUrl)}" index="0" isDefault="true"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
`
}
