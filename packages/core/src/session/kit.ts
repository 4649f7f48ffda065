/**
 * `@ssokit/core/session-kit`: the building blocks of `createSessionAuth` that do not depend on
 * OpenID Connect, for another login source (the SAML service provider of `@ssokit/saml`). A
 * source built from them signs the same session cookie with the same secrets, keeps its sessions
 * in the same store, honours the same `returnTo` rule and body bound, and refuses requests the
 * same way (a redirect for a navigation, 401 JSON for an XHR), so an application cannot tell
 * how its user signed in.
 */
export { resolveSessionFrame, type SessionFrame, type SessionFrameOptions } from './frame.js'
export { Keyring, randomId, safeEqual } from './seal.js'
export {
  cookieValue,
  expireCookie,
  parseCookies,
  serializeCookie,
  type CookieAttributes,
  type CookieJar,
} from './cookies.js'
export { clearCookie, loginUrl, routeHeaders, SESSION_PURPOSE, setCookie } from './context.js'
export { safeReturnTo } from './return-to.js'
export { bodyTooLarge, readBodyText, type BodyText } from './body.js'
export { applyPages, pageResponse, type PageContent } from './pages.js'
export {
  carriesBearer,
  rejectSession,
  SessionRejections,
  type RejectionConfig,
} from './challenge.js'
export { requestSite } from './request-site.js'
export {
  guardLoginStart,
  loginCompletedCookie,
  withRefusalMark,
  type LoopGuardContext,
} from './login-loop.js'
export { storeUnavailablePage } from './unavailable-pages.js'
export { asStoreError } from './store-errors.js'
export { parseVersioned, storeUntil } from './record.js'
export { RoleSet } from '../verify/claims.js'
