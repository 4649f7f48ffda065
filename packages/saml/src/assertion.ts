/**
 * Reads the assertion that the library has verified: never the posted document, whose unsigned
 * parts an attacker controls. Only what is inside the signature reaches a session.
 */
import { attribute, child, children, rootOf, SAML_ASSERTION, textOf, XmlRefusal } from './xml.js'

const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer'

export interface SamlAttribute {
  readonly name: string
  readonly friendlyName: string | undefined
  readonly values: readonly string[]
}

export interface VerifiedAssertion {
  readonly id: string
  readonly issuer: string
  readonly nameId: string
  readonly nameIdFormat: string | undefined
  readonly nameQualifier: string | undefined
  readonly spNameQualifier: string | undefined
  readonly sessionIndex: string | undefined
  /** `SessionNotOnOrAfter` of the authentication statement, in ms since the epoch. */
  readonly sessionNotOnOrAfter: number | undefined
  /** The latest `NotOnOrAfter` the assertion carries, in ms since the epoch. */
  readonly notOnOrAfter: number | undefined
  /** `Recipient` of each bearer subject confirmation. */
  readonly recipients: readonly string[]
  readonly attributes: readonly SamlAttribute[]
}

function time(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const ms = Date.parse(value)
  return Number.isFinite(ms) ? ms : undefined
}

function latest(...values: (number | undefined)[]): number | undefined {
  const known = values.filter((v): v is number => v !== undefined)
  return known.length === 0 ? undefined : Math.max(...known)
}

function attributesOf(assertion: Element): SamlAttribute[] {
  const result: SamlAttribute[] = []
  for (const statement of children(assertion, SAML_ASSERTION, 'AttributeStatement')) {
    for (const element of children(statement, SAML_ASSERTION, 'Attribute')) {
      const name = attribute(element, 'Name')
      if (name === undefined || name === '') continue
      const values = children(element, SAML_ASSERTION, 'AttributeValue').map((value) => {
        // eduPersonTargetedID and similar carry a NameID inside the value.
        const nested = child(value, SAML_ASSERTION, 'NameID')
        return textOf(nested ?? value)
      })
      result.push({ name, friendlyName: attribute(element, 'FriendlyName'), values })
    }
  }
  return result
}

export function readAssertion(xml: string): VerifiedAssertion {
  const root = rootOf(xml)
  if (root.namespaceURI !== SAML_ASSERTION || root.localName !== 'Assertion')
    throw new XmlRefusal('the verified content is not an assertion')
  const id = attribute(root, 'ID')
  const issuerElement = child(root, SAML_ASSERTION, 'Issuer')
  const subject = child(root, SAML_ASSERTION, 'Subject')
  const nameIdElement = subject === undefined ? undefined : child(subject, SAML_ASSERTION, 'NameID')
  if (id === undefined || issuerElement === undefined || nameIdElement === undefined)
    throw new XmlRefusal('the assertion has no ID, Issuer or NameID')
  const recipients: string[] = []
  const confirmationEnds: (number | undefined)[] = []
  for (const confirmation of children(subject as Element, SAML_ASSERTION, 'SubjectConfirmation')) {
    if (attribute(confirmation, 'Method') !== BEARER) continue
    const data = child(confirmation, SAML_ASSERTION, 'SubjectConfirmationData')
    if (data === undefined) continue
    recipients.push(attribute(data, 'Recipient') ?? '')
    confirmationEnds.push(time(attribute(data, 'NotOnOrAfter')))
  }
  const conditions = child(root, SAML_ASSERTION, 'Conditions')
  const authn = child(root, SAML_ASSERTION, 'AuthnStatement')
  return {
    id,
    issuer: textOf(issuerElement),
    nameId: textOf(nameIdElement),
    nameIdFormat: attribute(nameIdElement, 'Format'),
    nameQualifier: attribute(nameIdElement, 'NameQualifier'),
    spNameQualifier: attribute(nameIdElement, 'SPNameQualifier'),
    sessionIndex: authn === undefined ? undefined : attribute(authn, 'SessionIndex'),
    sessionNotOnOrAfter:
      authn === undefined ? undefined : time(attribute(authn, 'SessionNotOnOrAfter')),
    notOnOrAfter: latest(
      conditions === undefined ? undefined : time(attribute(conditions, 'NotOnOrAfter')),
      ...confirmationEnds,
    ),
    recipients,
    attributes: attributesOf(root),
  }
}
