export * from './errors.js'
export * from './http.js'
export type * from './identity.js'
export * from './authenticator.js'
export { accessTokenOf } from './access-token.js'
export { createVerifier } from './verify/verifier.js'
export type {
  JwksOptions,
  Verifier,
  VerifierExpertOptions,
  VerifierOptions,
} from './verify/verifier.js'
export type { RoleSource, TokenTypePolicy } from './verify/claims.js'
export { claimPathProblem, claimPathReader } from './verify/claims.js'
export type {
  SsoEvent,
  SsoEventHandler,
  VerifierEvent,
  VerifierEventHandler,
} from './verify/events.js'
export { logLine, stderrLogger } from './verify/events.js'
export { environmentWarnings } from './verify/env.js'
export { SIGNING_ALGORITHMS, type SigningAlgorithm } from './verify/algorithms.js'
export {
  bearerRejection,
  createBearerAuthenticator,
  readBearerToken,
  requireRoles,
  type BearerAuthenticator,
  type BearerAuthenticatorOptions,
} from './verify/bearer.js'
export {
  CERN_ISSUER,
  cernPreset,
  keycloakPreset,
  loadConfig,
  presets,
  type Environment,
  type LoadConfigOptions,
  type ProviderPreset,
} from './verify/config.js'
export * from './session/index.js'
