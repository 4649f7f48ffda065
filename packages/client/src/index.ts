export { authFetch, type Fetch } from './auth-fetch.js'
export { clientCredentials, type ClientCredentialsOptions } from './client-credentials.js'
export { exchange, type ExchangeOptions } from './exchange.js'
export { deviceLogin, type DeviceLoginOptions, type DevicePrompt } from './device-login.js'
export { formatDevicePrompt, terminalQrCode } from './device-prompt.js'
export { browserLogin, openSystemBrowser, type BrowserLoginOptions } from './browser-login.js'
export { DEFAULT_LOGIN_SCOPE, type LoginOptions } from './login.js'
export { CERN_ISSUER, type ClientExpertOptions, type CommonClientOptions } from './options.js'
export type { ClientSecretMethod } from './provider.js'
export type { TokenIdentity, TokenSource } from './token-source.js'
export { cacheDirectory } from './cache/location.js'
export { listCredentials, removeCredential, type CachedCredential } from './cache/inspect.js'
export { DEFAULT_REDIRECT_URI, kerberosLogin, type KerberosLoginOptions } from './kerberos/login.js'
export { kerberos, type KerberosAuth, type KerberosOptions } from './kerberos/auth.js'
export { cookieSession, type CookieSession, type CookieSessionOptions } from './cookies/session.js'
export {
  readCookieFile,
  writeCookieFile,
  type CookieFile,
  type WriteCookieFileOptions,
} from './cookies/netscape.js'
