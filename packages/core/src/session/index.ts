export { createSessionAuth, type SessionAuth, type SessionAuthOptions } from './session-auth.js'
export type { SessionBearerOptions } from './bearer.js'
export type { SessionCookieOptions, SessionExpertOptions } from './options.js'
export type {
  ClientKeyAlgorithm,
  ClientPrivateKey,
  TokenEndpointAuthMethod,
} from './client-auth.js'
export type { SessionPage, SessionPageOptions } from './pages.js'
export {
  loadSessionConfig,
  type SessionEnvAuth,
  type SessionEnvCommon,
  type SessionEnvConfig,
} from './config.js'
export { safeReturnTo } from './return-to.js'
export { MemorySessionStore, type MemorySessionStoreOptions } from './memory-store.js'
export type { ReleaseLock, SessionStore, StoredSession } from './store.js'
