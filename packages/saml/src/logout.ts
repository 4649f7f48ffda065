/**
 * Single Logout. `<prefix>/logout` (SP-initiated): a `GET` only asks, a `POST` from this
 * application's own pages ends the session here and sends the browser to the IdP with a signed
 * LogoutRequest. `<prefix>/saml/slo`: the IdP's LogoutRequest (IdP-initiated: every session of
 * that SessionIndex, or of that subject, ends; the request must be signed) or its
 * LogoutResponse to ours (the session here is already gone, the browser lands on the
 * post-logout page).
 */
import type { Profile } from '@node-saml/node-saml'
import {
  bodyTooLarge,
  clearCookie,
  pageResponse,
  readBodyText,
  requestSite,
  routeHeaders,
  storeUnavailablePage,
} from '@ssokit/core/session-kit'
import type { SamlContext } from './context.js'
import { loggableMessage, reasonOf, SamlRefusal, type SamlRefusalReason } from './events.js'
import type { IdpMetadata } from './idp-metadata.js'
import { idpUnavailablePage } from './login.js'
import { decodeSamlRecord, sessionIndexKey } from './record.js'
import { takeOnce } from './replay.js'
import {
  logoutRequestUrl,
  logoutResponseUrl,
  validatePostedLogoutRequest,
  validateRedirect,
  type LogoutSubject,
} from './sp.js'
import { attribute, decodePosted, decodeRedirected, rootOf, XmlRefusal } from './xml.js'

/** Redirect-binding messages inflate to at most this many bytes. */
const MAX_REDIRECT_XML = 64 * 1024
/** How long after its IssueInstant a LogoutRequest is accepted, NotOnOrAfter or not. */
const MAX_LOGOUT_REQUEST_AGE_MS = 10 * 60_000

/**
 * What the library leaves out for a LogoutRequest whose signature it verified: that it is
 * addressed to this SLO endpoint, recent (its IssueInstant, so that a request without
 * NotOnOrAfter is not good forever) and used once: its ID goes into the replay cache in the
 * session store, so a captured request replayed here or at another instance ends nothing.
 */
async function checkLogoutRequest(
  context: SamlContext,
  xml: string,
  profile: Profile,
): Promise<void> {
  const { config } = context
  const root = rootOf(xml)
  const destination = attribute(root, 'Destination')
  if (destination !== undefined && destination !== config.sloUrl)
    throw new SamlRefusal('destination', 'the LogoutRequest is addressed to another endpoint')
  const issued = Date.parse(attribute(root, 'IssueInstant') ?? '')
  if (Number.isNaN(issued))
    throw new SamlRefusal('malformed', 'the LogoutRequest has no valid IssueInstant')
  const now = config.now()
  if (issued > now + config.clockSkewMs)
    throw new SamlRefusal('expired', 'the LogoutRequest was issued in the future')
  if (issued < now - MAX_LOGOUT_REQUEST_AGE_MS - config.clockSkewMs)
    throw new SamlRefusal('expired', 'the LogoutRequest is too old')
  const notOnOrAfter = Date.parse(attribute(root, 'NotOnOrAfter') ?? '')
  const until = Math.min(
    issued + MAX_LOGOUT_REQUEST_AGE_MS,
    Number.isNaN(notOnOrAfter) ? Infinity : notOnOrAfter,
  )
  const id = typeof profile.ID === 'string' ? profile.ID : ''
  if (!(await takeOnce(config, 'saml-logout', profile.issuer, id, until)))
    throw new SamlRefusal('replay', 'the LogoutRequest has been used before')
}

function signOutForm(context: SamlContext): {
  method: 'post'
  action: string
  button: string
} {
  const { config } = context
  return {
    method: 'post',
    action: `${config.publicUrl}${config.prefix}/logout`,
    button: 'Sign out',
  }
}

/** Ends this browser's session; resolves to what the IdP needs to end its own, if anything. */
async function endLocalSession(
  context: SamlContext,
  request: Request,
  headers: Headers,
): Promise<LogoutSubject | undefined> {
  const { config } = context
  const cookieHeader = [request.headers.get('cookie') ?? '']
  const sessionId = context.reader.sessionId(cookieHeader)
  let subject: LogoutSubject | undefined
  if (sessionId !== undefined) {
    const stored = await config.store.get(sessionId)
    const record = stored === undefined ? undefined : decodeSamlRecord(stored.data)
    if (record !== undefined) subject = record
    context.reader.forget(sessionId)
    await config.store.delete(sessionId)
  }
  if ((request.headers.get('cookie') ?? '').includes(config.sessionCookie))
    headers.append('set-cookie', clearCookie(config, config.sessionCookie, '/'))
  return subject
}

export async function logout(context: SamlContext, request: Request): Promise<Response> {
  const { config } = context
  if (request.method !== 'POST') {
    return pageResponse(200, {
      title: 'Sign out',
      paragraphs: ['Do you want to sign out? You are also signed out at the identity provider.'],
      form: signOutForm(context),
      link: { href: `${config.publicUrl}/`, text: 'Back to the application' },
    })
  }
  if (requestSite(request, config.publicUrl) === 'cross-site') {
    return pageResponse(403, {
      title: 'Sign-out refused',
      paragraphs: [
        'The sign-out request came from another site, so nothing was ended: only this application’s own pages can sign you out.',
      ],
      form: signOutForm(context),
    })
  }
  const headers = routeHeaders()
  let subject: LogoutSubject | undefined
  try {
    subject = await endLocalSession(context, request, headers)
  } catch (error) {
    return storeUnavailablePage(error, headers)
  }
  let idp: IdpMetadata | undefined
  try {
    idp = await context.idp.get()
  } catch {
    idp = undefined
  }
  headers.set(
    'location',
    idp?.sloUrl !== undefined && subject !== undefined
      ? await logoutRequestUrl(config, idp, subject)
      : config.postLogoutRedirectUri,
  )
  return new Response(null, { status: 302, headers })
}

function refusedLogout(context: SamlContext, reason: SamlRefusalReason, message: string): Response {
  context.config.onEvent({
    type: 'saml_logout_refused',
    reason,
    message: `A SAML logout message was refused (${reason}): ${message}`,
  })
  return pageResponse(400, {
    title: 'Sign-out refused',
    paragraphs: ['The logout message did not pass validation, so nothing was ended.'],
  })
}

/** The exact query parameters of a Redirect-binding message, each allowed once. */
function redirectParams(url: URL): Record<string, string> | undefined {
  const params: Record<string, string> = {}
  for (const name of ['SAMLRequest', 'SAMLResponse', 'RelayState', 'SigAlg', 'Signature']) {
    const values = url.searchParams.getAll(name)
    if (values.length > 1) return undefined
    if (values[0] !== undefined) params[name] = values[0]
  }
  if ((params.SAMLRequest === undefined) === (params.SAMLResponse === undefined)) return undefined
  return params
}

/** Ends every session the IdP's LogoutRequest names. */
async function endSessionsOf(
  context: SamlContext,
  request: Request,
  profile: Profile,
  headers: Headers,
): Promise<void> {
  const { config } = context
  const index = profile.sessionIndex
  if (typeof index === 'string' && index !== '') {
    await config.store.deleteBySid(sessionIndexKey(index))
  } else if (config.subjectAttribute === undefined && typeof profile.nameID === 'string') {
    await config.store.deleteBySubject(profile.nameID)
  }
  // The browser that carried the request is signed out here too, if its session is this user's.
  const sessionId = context.reader.sessionId([request.headers.get('cookie') ?? ''])
  if (sessionId !== undefined) {
    const stored = await config.store.get(sessionId)
    const record = stored === undefined ? undefined : decodeSamlRecord(stored.data)
    if (record === undefined || record.nameId === profile.nameID) {
      context.reader.forget(sessionId)
      if (stored !== undefined) await config.store.delete(sessionId)
      headers.append('set-cookie', clearCookie(config, config.sessionCookie, '/'))
    }
  }
}

async function answerLogoutRequest(
  context: SamlContext,
  idp: IdpMetadata,
  request: Request,
  message: { readonly xml: string; readonly profile: Profile | null },
  relayState: string,
): Promise<Response> {
  const { config } = context
  const { profile } = message
  if (profile === null) return refusedLogout(context, 'invalid', 'the LogoutRequest names no one')
  const headers = routeHeaders()
  try {
    await checkLogoutRequest(context, message.xml, profile)
    await endSessionsOf(context, request, profile, headers)
  } catch (error) {
    if (error instanceof SamlRefusal) return refusedLogout(context, error.reason, error.message)
    if (error instanceof XmlRefusal) return refusedLogout(context, 'malformed', error.message)
    return storeUnavailablePage(error, headers)
  }
  if (idp.sloUrl === undefined) {
    headers.set('location', config.postLogoutRedirectUri)
  } else {
    headers.set('location', await logoutResponseUrl(config, idp, profile, relayState, true))
  }
  return new Response(null, { status: 302, headers })
}

export async function slo(context: SamlContext, request: Request, url: URL): Promise<Response> {
  const { config } = context
  let idp: IdpMetadata
  try {
    idp = await context.idp.get()
  } catch (error) {
    return idpUnavailablePage(context, error)
  }
  if (request.method === 'GET') {
    const params = redirectParams(url)
    if (params === undefined)
      return refusedLogout(context, 'malformed', 'not a Redirect-binding message')
    let xml: string
    try {
      xml = decodeRedirected(params.SAMLRequest ?? params.SAMLResponse ?? '', MAX_REDIRECT_XML)
    } catch (error) {
      const reason =
        error instanceof XmlRefusal && /document type/.test(error.message) ? 'doctype' : 'malformed'
      return refusedLogout(context, reason, loggableMessage(error))
    }
    // Unsigned, anyone could sign anyone out: the library accepts that, this SP does not.
    if (
      params.SAMLRequest !== undefined &&
      (params.Signature === undefined || params.SigAlg === undefined)
    )
      return refusedLogout(context, 'signature', 'the LogoutRequest is not signed')
    let result
    try {
      result = await validateRedirect(config, idp, params, url.search.slice(1))
    } catch (error) {
      if (params.SAMLResponse !== undefined) {
        // Our session is already gone; the IdP's answer only decides the page.
        context.config.onEvent({
          type: 'saml_logout_refused',
          reason: reasonOf(error),
          message: `A SAML LogoutResponse was refused: ${loggableMessage(error)}`,
        })
        return redirectTo(config.postLogoutRedirectUri)
      }
      return refusedLogout(context, reasonOf(error), loggableMessage(error))
    }
    if (params.SAMLResponse !== undefined) return redirectTo(config.postLogoutRedirectUri)
    return answerLogoutRequest(
      context,
      idp,
      request,
      { xml, profile: result.profile },
      params.RelayState ?? '',
    )
  }
  if (request.method !== 'POST')
    return new Response(null, { status: 405, headers: { allow: 'GET, POST' } })
  const body = await readBodyText(request, config.maxBodySize)
  if (!body.ok)
    return body.reason === 'too_large'
      ? bodyTooLarge()
      : refusedLogout(context, 'malformed', 'the form could not be read')
  const form = new URLSearchParams(body.text)
  const requests = form.getAll('SAMLRequest')
  if (form.getAll('SAMLResponse').length === 1 && requests.length === 0)
    return redirectTo(config.postLogoutRedirectUri)
  const relays = form.getAll('RelayState')
  if (requests.length !== 1 || relays.length > 1)
    return refusedLogout(context, 'malformed', 'the form must carry exactly one SAMLRequest')
  const samlRequest = (requests[0] as string).replace(/\s+/g, '')
  let xml: string
  let result
  try {
    xml = decodePosted(samlRequest, config.maxBodySize)
    result = await validatePostedLogoutRequest(config, idp, samlRequest)
  } catch (error) {
    if (error instanceof XmlRefusal)
      return refusedLogout(
        context,
        /document type/.test(error.message) ? 'doctype' : 'malformed',
        error.message,
      )
    return refusedLogout(context, reasonOf(error), loggableMessage(error))
  }
  return answerLogoutRequest(
    context,
    idp,
    request,
    { xml, profile: result.profile },
    relays[0] ?? '',
  )
}

function redirectTo(location: string): Response {
  const headers = routeHeaders()
  headers.set('location', location)
  return new Response(null, { status: 302, headers })
}
