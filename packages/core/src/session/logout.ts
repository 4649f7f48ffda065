/**
 * `POST <prefix>/logout`: ends the session here, then sends the browser to the provider's
 * end-session endpoint (with the ID token as a hint) or straight to the post-logout page.
 * A `GET` only asks (a link or an image on any site must not sign anyone out), and a `POST`
 * that another site sent is refused.
 */
import {
  clearCookie,
  requestCookies,
  routeHeaders,
  sessionIdFrom,
  type SessionContext,
} from './context.js'
import type { IdentityCache } from './identity-cache.js'
import { pageResponse, type PageForm } from './pages.js'
import { decodeRecord } from './record.js'
import { requestSite } from './request-site.js'
import { storeUnavailablePage } from './unavailable-pages.js'

/**
 * The longest end-session URL sent with the ID token as a hint. Servers refuse longer request
 * lines (Keycloak 4 kB, nginx 8 kB, Node 16 kB of headers) with 414 or 431, and the provider
 * session would survive; without the hint the provider asks the user to confirm instead.
 */
const MAX_LOGOUT_URL_LENGTH = 3500

function signOutForm(context: SessionContext): PageForm {
  const { config } = context
  return {
    method: 'post',
    action: `${config.publicUrl}${config.prefix}/logout`,
    button: 'Sign out',
  }
}

/** `GET`: a page whose button posts the sign-out from this origin. */
function confirmationPage(context: SessionContext): Response {
  return pageResponse(200, {
    title: 'Sign out',
    paragraphs: ['Do you want to sign out? You are also signed out at the identity provider.'],
    form: signOutForm(context),
    link: { href: `${context.config.publicUrl}/`, text: 'Back to the application' },
  })
}

/** A sign-out that another site posted: nothing ends, the user may still confirm it here. */
function crossSitePage(context: SessionContext): Response {
  return pageResponse(403, {
    title: 'Sign-out refused',
    paragraphs: [
      'The sign-out request came from another site, so nothing was ended: only this application’s own pages can sign you out.',
      'If you do want to sign out, use the button below.',
    ],
    form: signOutForm(context),
    link: { href: `${context.config.publicUrl}/`, text: 'Back to the application' },
  })
}

export async function logout(
  context: SessionContext,
  identities: IdentityCache,
  request: Request,
): Promise<Response> {
  if (request.method !== 'POST') return confirmationPage(context)
  if (requestSite(request, context.config.publicUrl) === 'cross-site') return crossSitePage(context)
  const { config, provider } = context
  const cookies = requestCookies(request)
  const headers = routeHeaders()
  const sessionId = sessionIdFrom(context, cookies)
  let idToken: string | undefined
  if (sessionId !== undefined) {
    try {
      const stored = await config.store.get(sessionId)
      if (stored !== undefined) idToken = decodeRecord(stored.data)?.idToken
      identities.forget(sessionId)
      await config.store.delete(sessionId)
    } catch (error) {
      // The cookie stays so that logging out again, once the store is back, still ends the session.
      return storeUnavailablePage(error, headers)
    }
  }
  if (cookies.has(config.sessionCookie))
    headers.append('set-cookie', clearCookie(config, config.sessionCookie, '/'))
  let endSession: string | undefined
  try {
    endSession = (await provider.metadata()).end_session_endpoint
  } catch {
    endSession = undefined
  }
  if (endSession === undefined) {
    headers.set('location', config.postLogoutRedirectUri)
  } else {
    const target = new URL(endSession)
    target.searchParams.set('client_id', config.clientId)
    target.searchParams.set('post_logout_redirect_uri', config.postLogoutRedirectUri)
    if (idToken !== undefined) {
      const hinted = new URL(target)
      hinted.searchParams.set('id_token_hint', idToken)
      if (hinted.href.length <= MAX_LOGOUT_URL_LENGTH) target.search = hinted.search
    }
    headers.set('location', target.href)
  }
  return new Response(null, { status: 302, headers })
}
