/**
 * `POST <prefix>/saml/acs`: the HTTP-POST binding. The body is bounded; the Response must be
 * base64 XML without a DTD; the library checks the signatures (assertion always, the Response
 * too when configured) against the IdP metadata's certificates, the issuer, audience and times,
 * and that it answers one of this browser's AuthnRequests. Then, on what was verified only:
 * Destination and Recipient must be this ACS, the assertion must not have been used before
 * (the replay cache lives in the session store, so it holds across every instance), and the
 * session is created under a new id.
 */
import {
  bodyTooLarge,
  expireCookie,
  loginCompletedCookie,
  pageResponse,
  parseCookies,
  randomId,
  readBodyText,
  routeHeaders,
  safeReturnTo,
  SESSION_PURPOSE,
  setCookie,
  storeUnavailablePage,
} from '@ssokit/core/session-kit'
import { isSsoError } from '@ssokit/core'
import { readAssertion, type VerifiedAssertion } from './assertion.js'
import { attributesById, valuesOf } from './attributes.js'
import type { SamlContext } from './context.js'
import { loggableMessage, reasonOf, SamlRefusal, type SamlRefusalReason } from './events.js'
import type { IdpMetadata } from './idp-metadata.js'
import { idpUnavailablePage } from './login.js'
import { SAML_RECORD_VERSION, writeSamlRecord, type SamlSessionRecord } from './record.js'
import { MAX_REPLAY_WINDOW_S, takeOnce } from './replay.js'
import { BrowserRequests, validateResponse } from './sp.js'
import { openTransactions, type SamlTransaction } from './transaction.js'
import { attribute, decodePosted, rootOf, SAML_PROTOCOL, XmlRefusal } from './xml.js'

function refused(context: SamlContext, reason: SamlRefusalReason, message: string): Response {
  context.config.onEvent({
    type: 'saml_login_refused',
    reason,
    message: `A SAML sign-in was refused (${reason}): ${message}`,
  })
  return pageResponse(
    400,
    {
      title: 'Sign-in refused',
      paragraphs: [
        'The answer of the identity provider did not pass validation, so no session was created.',
        'Please go back to the application and sign in again.',
      ],
    },
    routeHeaders(),
  )
}

/** Where an unsolicited response's RelayState may send the browser: a path here, or this origin's URL. */
function relayReturnTo(context: SamlContext, relayState: string | undefined): string {
  if (relayState === undefined) return '/'
  const origin = context.config.publicUrl
  const path = relayState.startsWith(`${origin}/`) ? relayState.slice(origin.length) : relayState
  return safeReturnTo(path)
}

/** The Destination of the posted Response, read before any signature (it is checked again below). */
function checkEnvelope(context: SamlContext, xml: string): void {
  const root = rootOf(xml)
  if (root.namespaceURI !== SAML_PROTOCOL || root.localName !== 'Response')
    throw new SamlRefusal('malformed', 'the message is not a SAML Response')
  const destination = attribute(root, 'Destination')
  if (destination !== undefined && destination !== context.config.acsUrl)
    throw new SamlRefusal('destination', 'the Response is addressed to another endpoint')
}

function checkAssertion(
  context: SamlContext,
  idp: IdpMetadata,
  assertion: VerifiedAssertion,
): void {
  if (assertion.issuer !== idp.entityId)
    throw new SamlRefusal('issuer', 'the assertion was issued by another entity')
  if (!assertion.recipients.includes(context.config.acsUrl))
    throw new SamlRefusal('recipient', 'no bearer confirmation names this ACS as its Recipient')
  if (assertion.nameId === '' && context.config.subjectAttribute === undefined)
    throw new SamlRefusal('no_subject', 'the assertion has an empty NameID')
}

/** Takes the assertion's id in the replay cache; a second use anywhere is refused. */
async function consume(context: SamlContext, assertion: VerifiedAssertion): Promise<void> {
  const { config } = context
  const until = assertion.notOnOrAfter ?? config.now() + MAX_REPLAY_WINDOW_S * 1000
  if (!(await takeOnce(config, 'saml-assertion', assertion.issuer, assertion.id, until)))
    throw new SamlRefusal('replay', 'the assertion has been used before')
}

function recordOf(context: SamlContext, assertion: VerifiedAssertion): SamlSessionRecord {
  const { config } = context
  const attributes = assertion.attributes
  const subject =
    config.subjectAttribute === undefined
      ? assertion.nameId
      : valuesOf(attributes, [config.subjectAttribute])?.[0]
  if (subject === undefined || subject === '')
    throw new SamlRefusal(
      'no_subject',
      'the assertion lacks the attribute configured as the subject',
    )
  const now = config.now()
  const lifetimeEnd = now + config.sessionLifetimeS * 1000
  return {
    v: SAML_RECORD_VERSION,
    kind: 'saml',
    issuer: assertion.issuer,
    sub: subject,
    nameId: assertion.nameId,
    nameIdFormat: assertion.nameIdFormat,
    nameQualifier: assertion.nameQualifier,
    spNameQualifier: assertion.spNameQualifier,
    sessionIndex: assertion.sessionIndex,
    username: valuesOf(attributes, config.usernameAttributes)?.[0] ?? subject,
    email: valuesOf(attributes, config.emailAttributes)?.[0],
    name: valuesOf(attributes, config.nameAttributes)?.[0],
    roles: [...new Set(valuesOf(attributes, config.roleAttributes) ?? [])],
    attributes: attributesById(attributes),
    createdAt: now,
    // The IdP may end the session sooner (SessionNotOnOrAfter); never later than configured.
    expiresAt: Math.min(lifetimeEnd, assertion.sessionNotOnOrAfter ?? lifetimeEnd),
    lastSeenAt: now,
  }
}

export async function acs(context: SamlContext, request: Request): Promise<Response> {
  const { config } = context
  const body = await readBodyText(request, config.maxBodySize)
  if (!body.ok) {
    if (body.reason === 'too_large') {
      config.onEvent({
        type: 'saml_login_refused',
        reason: 'body_too_large',
        message:
          'A SAML sign-in was refused (body_too_large): the posted form is over maxBodySize.',
      })
      return bodyTooLarge()
    }
    return refused(context, 'malformed', 'the form could not be read')
  }
  const type = request.headers.get('content-type') ?? ''
  if (!/^application\/x-www-form-urlencoded\s*(;|$)/i.test(type))
    return refused(context, 'malformed', 'the ACS takes an HTML form post')
  const form = new URLSearchParams(body.text)
  const responses = form.getAll('SAMLResponse')
  const relays = form.getAll('RelayState')
  if (responses.length !== 1 || relays.length > 1)
    return refused(context, 'malformed', 'the form must carry exactly one SAMLResponse')
  const samlResponse = (responses[0] as string).replace(/\s+/g, '')

  let idp: IdpMetadata
  try {
    idp = await context.idp.get()
  } catch (error) {
    return idpUnavailablePage(context, error)
  }
  const cookies = parseCookies([request.headers.get('cookie') ?? ''])
  const open = await openTransactions(context, cookies)
  const requests = new BrowserRequests(open.map((t) => [t.requestId, t.startedAt] as const))

  let assertion: VerifiedAssertion
  try {
    const xml = decodePosted(samlResponse, config.maxBodySize)
    checkEnvelope(context, xml)
    let profile
    try {
      profile = await validateResponse(config, idp, samlResponse, requests)
    } catch (error) {
      throw new SamlRefusal(reasonOf(error), loggableMessage(error))
    }
    const verified = profile?.getAssertionXml?.()
    if (verified === undefined)
      throw new SamlRefusal('invalid', 'the Response carries no assertion')
    assertion = readAssertion(verified)
    checkAssertion(context, idp, assertion)
    if (requests.matched === undefined && !config.allowUnsolicited)
      throw new SamlRefusal('unsolicited', 'the Response answers no request of this browser')
    await consume(context, assertion)
  } catch (error) {
    if (error instanceof SamlRefusal) return refused(context, error.reason, error.message)
    if (error instanceof XmlRefusal) {
      const reason = /document type/.test(error.message) ? 'doctype' : 'malformed'
      return refused(context, reason, error.message)
    }
    if (isSsoError(error) && error.code === 'session_store_unavailable')
      return storeUnavailablePage(error)
    return refused(context, 'invalid', loggableMessage(error))
  }

  let record: SamlSessionRecord
  try {
    record = recordOf(context, assertion)
  } catch (error) {
    if (error instanceof SamlRefusal) return refused(context, error.reason, error.message)
    throw error
  }
  const transaction: SamlTransaction | undefined = open.find(
    (t) => t.requestId === requests.matched,
  )
  const returnTo =
    transaction === undefined
      ? relayReturnTo(context, relays[0])
      : safeReturnTo(transaction.returnTo)

  const headers = routeHeaders()
  // Always a new id from the CSPRNG: an id the browser sent is never adopted (fixation).
  const sessionId = randomId(32)
  const previous = context.reader.sessionId([request.headers.get('cookie') ?? ''])
  try {
    await writeSamlRecord(config.store, sessionId, record, config.now())
    if (previous !== undefined) {
      context.reader.forget(previous)
      await config.store.delete(previous)
    }
  } catch (error) {
    return storeUnavailablePage(error)
  }
  if (transaction !== undefined)
    headers.append(
      'set-cookie',
      expireCookie(transaction.cookie, { path: '/', secure: config.secure }),
    )
  headers.append('set-cookie', loginCompletedCookie(context, cookies))
  const lifetime = Math.max(1, Math.floor((record.expiresAt - config.now()) / 1000))
  headers.append(
    'set-cookie',
    setCookie(
      config,
      config.sessionCookie,
      context.keyring.sign(sessionId, SESSION_PURPOSE),
      lifetime,
      '/',
    ),
  )
  // A 303 turns the IdP's POST into a GET of the page the user asked for.
  headers.set('location', `${config.publicUrl}${returnTo}`)
  return new Response(null, { status: 303, headers })
}
