export { createSamlAuth, type SamlAuth } from './saml-auth.js'
export type { SamlAttributeOptions, SamlAuthOptions, SamlExpertOptions } from './options.js'
export type { SamlEvent, SamlEventHandler, SamlRefusalReason } from './events.js'
export {
  IdpMetadataError,
  parseIdpMetadata,
  type IdpMetadata,
  type IdpMetadataSource,
} from './idp-metadata.js'
export { KNOWN_ATTRIBUTES } from './attributes.js'
