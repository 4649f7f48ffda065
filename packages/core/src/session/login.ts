/**
 * `GET <prefix>/login`: ends any session the browser holds, stops login loops, and sends the
 * browser to the provider with a new sealed transaction (state, nonce, PKCE). A session is
 * ended only on a request from this application's own pages (or one confirmed on them): a
 * link on another site may start a sign-in, never end the user's current session.
 */
import * as oauth from 'oauth4webapi'

import { isSsoError } from '../errors.js'
import type { Identity } from '../identity.js'
import {
  clearCookie,
  requestCookies,
  routeHeaders,
  sessionIdFrom,
  setCookie,
  type SessionContext,
} from './context.js'
import type { IdentityCache } from './identity-cache.js'
import { guardLoginStart } from './login-loop.js'
import { pageResponse } from './pages.js'
import { requestSite } from './request-site.js'
import { safeReturnTo } from './return-to.js'
import { safeEqual } from './seal.js'
import {
  sealTransaction,
  transactionCookie,
  transactionsToEvict,
  TRANSACTION_PATH,
  TRANSACTION_TTL_S,
} from './transaction.js'
import { providerUnavailablePage, storeUnavailablePage } from './unavailable-pages.js'

/** The store id `/login` reads to learn whether the store answers before sending anyone away. */
const LOGIN_PROBE_ID = 'login-probe'
/** The keyring purpose of the `confirm` parameter that lets a page of ours end a session. */
const SWITCH_PURPOSE = 'ssokit:login-switch'

/** A value only this application can make for this session: the MAC of its id. */
function switchToken(context: SessionContext, sessionId: string): string {
  return context.keyring.sign(sessionId, SWITCH_PURPOSE).slice(sessionId.length + 1)
}

function confirmsSwitch(context: SessionContext, url: URL, sessionId: string): boolean {
  const given = url.searchParams.getAll('confirm')
  return given.length === 1 && safeEqual(given[0] ?? '', switchToken(context, sessionId))
}

/** Asked from another site (or by a client that does not say) while a session is live. */
function signedInPage(
  context: SessionContext,
  url: URL,
  identity: Identity,
  sessionId: string,
  returnTo: string,
): Response {
  const { config } = context
  const fields: Record<string, string> = { returnTo }
  for (const name of config.loginParams) {
    const values = url.searchParams.getAll(name)
    if (values.length === 1 && values[0] !== undefined && values[0].length <= 512)
      fields[name] = values[0]
  }
  fields.confirm = switchToken(context, sessionId)
  return pageResponse(200, {
    title: 'You are already signed in',
    paragraphs: [
      `You are signed in as ${identity.username}.`,
      'To sign in again, for example as someone else, use the button below; this ends the current session.',
    ],
    form: {
      method: 'get',
      action: `${config.publicUrl}${config.prefix}/login`,
      button: 'Sign in again',
      fields,
    },
    link: { href: `${config.publicUrl}${returnTo}`, text: 'Continue to the application' },
  })
}

/** Resolves who the browser's session belongs to, or rejects as `authenticate` does. */
export type CurrentSession = (request: Request) => Promise<Identity>

export async function login(
  context: SessionContext,
  identities: IdentityCache,
  current: CurrentSession,
  request: Request,
  url: URL,
): Promise<Response> {
  const { config, provider } = context
  const cookies = requestCookies(request)
  const headers = routeHeaders()
  const returnValues = url.searchParams.getAll('returnTo')
  const returnTo = returnValues.length === 1 ? safeReturnTo(returnValues[0]) : '/'

  // Third-party-initiated login (OIDC Core §4) is accepted only from our own provider.
  const issuers = url.searchParams.getAll('iss')
  if (issuers.length > 1 || (issuers.length === 1 && issuers[0] !== config.issuer)) {
    return pageResponse(
      400,
      {
        title: 'Sign-in refused',
        paragraphs: [
          'The sign-in was started for an identity provider this application does not use.',
        ],
      },
      headers,
    )
  }

  // A session is ended below only when this application's own pages asked for the sign-in:
  // from anywhere else, a live session is shown, not ended.
  const existing = sessionIdFrom(context, cookies)
  if (
    existing !== undefined &&
    requestSite(request, config.publicUrl) !== 'same-origin' &&
    !confirmsSwitch(context, url, existing)
  ) {
    let identity: Identity | undefined
    try {
      identity = await current(request)
    } catch (error) {
      if (isSsoError(error) && error.code === 'session_store_unavailable')
        return storeUnavailablePage(error)
      if (!isSsoError(error) || error.code !== 'session_missing')
        return providerUnavailablePage(error)
    }
    if (identity !== undefined) return signedInPage(context, url, identity, existing, returnTo)
  }

  const stopped = guardLoginStart(context, cookies, headers)
  if (stopped !== undefined) return stopped

  // Signing in ends any session this browser still holds (no half-logged-in state).
  if (cookies.has(config.sessionCookie))
    headers.append('set-cookie', clearCookie(config, config.sessionCookie, '/'))
  try {
    // Without a session to end, one read still proves the store answers: a store outage is
    // told now, not after a round trip through the provider that could only end in a 503.
    if (existing === undefined) await config.store.get(LOGIN_PROBE_ID)
    else {
      identities.forget(existing)
      await config.store.delete(existing)
    }
  } catch (error) {
    return storeUnavailablePage(error)
  }

  let metadata: oauth.AuthorizationServer
  try {
    metadata = await provider.metadata()
  } catch (error) {
    return providerUnavailablePage(error)
  }
  if (metadata.authorization_endpoint === undefined) return providerUnavailablePage(undefined)

  const state = oauth.generateRandomState()
  const nonce = oauth.generateRandomNonce()
  const verifier = oauth.generateRandomCodeVerifier()
  const challenge = await oauth.calculatePKCECodeChallenge(verifier)
  const sealed = await sealTransaction(context, { state, nonce, verifier, returnTo })
  for (const name of await transactionsToEvict(context, cookies))
    headers.append('set-cookie', clearCookie(config, name, TRANSACTION_PATH))
  headers.append(
    'set-cookie',
    setCookie(
      config,
      transactionCookie(config, state),
      sealed,
      TRANSACTION_TTL_S,
      TRANSACTION_PATH,
    ),
  )

  const target = new URL(metadata.authorization_endpoint)
  for (const name of config.loginParams) {
    const values = url.searchParams.getAll(name)
    if (values.length === 1 && values[0] !== undefined && values[0].length <= 512)
      target.searchParams.set(name, values[0])
  }
  target.searchParams.set('client_id', config.clientId)
  target.searchParams.set('redirect_uri', config.redirectUri)
  target.searchParams.set('response_type', 'code')
  target.searchParams.set('scope', config.scope)
  target.searchParams.set('state', state)
  target.searchParams.set('nonce', nonce)
  target.searchParams.set('code_challenge', challenge)
  target.searchParams.set('code_challenge_method', 'S256')
  for (const [name, value] of config.tokenParams) target.searchParams.append(name, value)
  if (config.offline) target.searchParams.set('prompt', 'consent')
  headers.set('location', target.href)
  return new Response(null, { status: 302, headers })
}
