/**
 * `GET <prefix>/login?returnTo=<path>`: sends the browser to the IdP with an AuthnRequest on
 * the HTTP-Redirect binding, its ID sealed in a transaction cookie. A current session is not
 * ended here (a link on another site may start a sign-in, never end one): the ACS replaces it
 * once the new sign-in has succeeded.
 */
import {
  expireCookie,
  guardLoginStart,
  pageResponse,
  parseCookies,
  randomId,
  routeHeaders,
  safeReturnTo,
  storeUnavailablePage,
} from '@ssokit/core/session-kit'
import type { SamlContext } from './context.js'
import type { IdpMetadata } from './idp-metadata.js'
import { authnRequestUrl } from './sp.js'
import {
  openTransactions,
  SAML_TX_TTL_S,
  sealTransaction,
  transactionCookie,
  transactionCookieName,
  transactionsToEvict,
} from './transaction.js'

/** Answered when the IdP metadata cannot be read: sign-in cannot start. */
export function idpUnavailablePage(context: SamlContext, error: unknown): Response {
  context.config.onEvent({
    type: 'idp_metadata_unavailable',
    reason: 'metadata',
    message: error instanceof Error ? error.message : 'The IdP metadata cannot be read.',
  })
  return pageResponse(
    503,
    {
      title: 'Temporarily unavailable',
      paragraphs: ['The identity provider cannot be reached. Please try again in a moment.'],
    },
    new Headers({ 'retry-after': '30' }),
  )
}

export async function login(context: SamlContext, request: Request, url: URL): Promise<Response> {
  const { config } = context
  const returnValues = url.searchParams.getAll('returnTo')
  const returnTo = returnValues.length === 1 ? safeReturnTo(returnValues[0]) : '/'
  const cookies = parseCookies([request.headers.get('cookie') ?? ''])
  const headers = routeHeaders()
  // The same guard as OpenID Connect: a browser the application keeps sending back is stopped.
  const stopped = guardLoginStart(context, cookies, headers)
  if (stopped !== undefined) return stopped
  let idp: IdpMetadata
  try {
    idp = await context.idp.get()
  } catch (error) {
    return idpUnavailablePage(context, error)
  }
  try {
    // One read proves the store answers before the user is sent away for nothing.
    await config.store.get('login-probe')
  } catch (error) {
    return storeUnavailablePage(error)
  }
  // An NCName: SAML IDs may not start with a digit.
  const requestId = `_${randomId(24)}`
  const location = await authnRequestUrl(config, idp, requestId)
  const open = await openTransactions(context, cookies)
  for (const name of transactionsToEvict(context, cookies, open))
    headers.append('set-cookie', expireCookie(name, { path: '/', secure: config.secure }))
  headers.append(
    'set-cookie',
    transactionCookie(
      context,
      transactionCookieName(context, requestId),
      await sealTransaction(context, requestId, returnTo),
      SAML_TX_TTL_S,
    ),
  )
  headers.set('location', location)
  return new Response(null, { status: 302, headers })
}
