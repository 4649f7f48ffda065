/**
 * Attribute names: the OIDs federations send (`urn:oid:...`), with the short ids that
 * Shibboleth's attribute-map.xml gives them, so a configuration or an application written for
 * mod_shib can name `eppn` or `mail` whatever form the identity provider uses.
 */
import type { SamlAttribute } from './assertion.js'

/** OID names (urn:oid, the SAML 2.0 form) and their attribute-map ids. */
export const KNOWN_ATTRIBUTES: Readonly<Record<string, string>> = Object.freeze({
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.6': 'eppn',
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.9': 'affiliation',
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.1': 'unscoped-affiliation',
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.7': 'entitlement',
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.10': 'persistent-id',
  'urn:oid:1.3.6.1.4.1.5923.1.1.1.13': 'eduPersonUniqueId',
  'urn:oid:1.3.6.1.4.1.5923.1.5.1.1': 'isMemberOf',
  'urn:oasis:names:tc:SAML:attribute:subject-id': 'subject-id',
  'urn:oasis:names:tc:SAML:attribute:pairwise-id': 'pairwise-id',
  'urn:oid:0.9.2342.19200300.100.1.1': 'uid',
  'urn:oid:0.9.2342.19200300.100.1.3': 'mail',
  'urn:oid:2.16.840.1.113730.3.1.241': 'displayName',
  'urn:oid:2.5.4.3': 'cn',
  'urn:oid:2.5.4.4': 'sn',
  'urn:oid:2.5.4.42': 'givenName',
  'urn:oid:2.5.4.10': 'o',
  'urn:oid:2.5.4.11': 'ou',
  'urn:oid:2.5.4.12': 'title',
  'urn:oid:1.3.6.1.4.1.25178.1.2.9': 'schacHomeOrganization',
})

/** The id an attribute is known by: its attribute-map id, else its FriendlyName, else its Name. */
export function attributeId(attribute: SamlAttribute): string {
  return KNOWN_ATTRIBUTES[attribute.name] ?? attribute.friendlyName ?? attribute.name
}

/** Whether a configured name (an OID, a Name, a FriendlyName or an attribute-map id) is this one. */
export function attributeMatches(attribute: SamlAttribute, wanted: string): boolean {
  return (
    attribute.name === wanted ||
    attribute.friendlyName === wanted ||
    KNOWN_ATTRIBUTES[attribute.name] === wanted
  )
}

/** The values of the first configured name the assertion carries with a non-empty value. */
export function valuesOf(
  attributes: readonly SamlAttribute[],
  wanted: readonly string[],
): readonly string[] | undefined {
  for (const name of wanted) {
    const values = attributes
      .filter((a) => attributeMatches(a, name))
      .flatMap((a) => a.values)
      .filter((v) => v !== '')
    if (values.length > 0) return values
  }
  return undefined
}

/** Every attribute under its id, values merged, for `identity.claims.attributes`. */
export function attributesById(
  attributes: readonly SamlAttribute[],
): Record<string, readonly string[]> {
  // No prototype: an attribute named `__proto__` is just a name.
  const byId = Object.create(null) as Record<string, string[]>
  for (const attribute of attributes) {
    const id = attributeId(attribute)
    if (!Object.hasOwn(byId, id)) byId[id] = []
    byId[id]?.push(...attribute.values)
  }
  return byId
}
