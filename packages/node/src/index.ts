/**
 * `node:http` support for ssokit: `withAuth` protects a request handler, and the bridge between
 * `IncomingMessage`/`ServerResponse` and web `Request`/`Response` serves the Express and Fastify
 * adapters.
 *
 * @module
 */
export {
  bodyAlreadyRead,
  sendParts,
  sendWebResponse,
  toRequestLike,
  toWebRequest,
  type WebRequestOptions,
} from './bridge.js'
export {
  authRoutes,
  isUnderPrefix,
  withAuth,
  type AuthenticatedHandler,
  type AuthRoutes,
  type RouteOptions,
  type WithAuthOptions,
} from './handler.js'
export { checkRoles, resolveAuthenticator, type BearerOptions } from './options.js'
