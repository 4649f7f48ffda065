export { startIdp } from './idp.js'
export type { IdpOptions, IdpRequestRecord, RunningIdp, TokenStyle } from './idp.js'
export {
  DEFAULT_IDP_CONFIG,
  IdpConfigError,
  loadIdpConfigFile,
  resolveIdpConfig,
} from './config.js'
export type {
  IdpClientAuthMethod,
  IdpClientConfig,
  IdpClientJwk,
  IdpConfig,
  IdpGrantType,
  IdpKerberosConfig,
  IdpUserConfig,
  ResolvedIdpConfig,
} from './config.js'
export { KerberosSetupError } from './kerberos.js'
export { generateSigningKey, loadOrCreateKeys, rotateKeysFile } from './keys.js'
export type { SigningJwk } from './keys.js'
export {
  approveDevice,
  CookieJar,
  LoginRejectedError,
  loginWithPassword,
  logoutAtIdp,
} from './testing.js'
export type {
  ApproveDeviceOptions,
  LoginOptions,
  LoginResult,
  LogoutOptions,
  LogoutResult,
} from './testing.js'
