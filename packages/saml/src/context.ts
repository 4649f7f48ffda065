/** What every SAML route shares, built once per `createSamlAuth`. */
import type { Keyring, SessionRejections } from '@ssokit/core/session-kit'
import type { IdpMetadataSourceReader } from './idp-metadata.js'
import type { ResolvedSamlConfig } from './options.js'
import type { SamlSessionReader } from './session-reader.js'

export interface SamlContext {
  readonly config: ResolvedSamlConfig
  readonly keyring: Keyring
  readonly idp: IdpMetadataSourceReader
  readonly reader: SamlSessionReader
  readonly rejections: SessionRejections
}
