/**
 * `GET <prefix>/callback`: refuses malformed or unsolicited responses, finds the browser's own
 * transaction, and hands a matching response to the code exchange.
 */
import { isSsoError, type SsoErrorCode } from '../errors.js'
import { loggable } from '../verify/events.js'
import { completeLogin } from './complete-login.js'
import {
  clearCookie,
  requestCookies,
  routeHeaders,
  sessionIdFrom,
  type SessionContext,
} from './context.js'
import { LoginFailure } from './login-failure.js'
import { pageResponse } from './pages.js'
import { openTransaction, transactionCookie, TRANSACTION_PATH } from './transaction.js'
import { storeUnavailablePage } from './unavailable-pages.js'

const UNEXPECTED_CALLBACK_PARAMS = [
  'id_token',
  'access_token',
  'token_type',
  'refresh_token',
  'response',
]
/** Authorization errors (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6) that come from the user's side. */
const USER_ERRORS = new Set([
  'access_denied',
  'login_required',
  'consent_required',
  'interaction_required',
  'account_selection_required',
  'temporarily_unavailable',
])
const STATE_SHAPE = /^[A-Za-z0-9_-]{32,128}$/

const TOKEN_REFUSALS: ReadonlySet<SsoErrorCode> = new Set([
  'client_auth_failed',
  'client_unauthorized',
  'grant_invalid',
  'token_request_invalid',
  'scope_invalid',
  'token_request_refused',
])

function reportFailure(context: SessionContext, failure: LoginFailure): void {
  const { log } = failure
  context.events.emit({
    type: TOKEN_REFUSALS.has(failure.code) ? 'token_request_failed' : 'login_failed',
    level: log.level,
    message: log.message ?? `A sign-in failed: ${failure.message}`,
    reason: log.reason,
    code: failure.code,
    url: log.url,
  })
}

export async function callback(
  context: SessionContext,
  request: Request,
  url: URL,
): Promise<Response> {
  const config = context.config
  const cookies = requestCookies(request)
  const headers = routeHeaders()
  const params = url.searchParams
  const states = params.getAll('state')
  const state =
    states.length === 1 && STATE_SHAPE.test(states[0] ?? '') ? (states[0] as string) : undefined
  if (state !== undefined && cookies.has(transactionCookie(config, state))) {
    headers.append(
      'set-cookie',
      clearCookie(config, transactionCookie(config, state), TRANSACTION_PATH),
    )
  }
  try {
    const names = [...params.keys()]
    if (new Set(names).size !== names.length) {
      throw new LoginFailure(400, 'The sign-in response repeats a parameter, so it was refused.')
    }
    // A code-flow response never carries tokens or a JARM response; their presence is an attack.
    if (UNEXPECTED_CALLBACK_PARAMS.some((name) => params.has(name))) {
      throw new LoginFailure(400, 'The sign-in response carries parameters a code flow never has.')
    }
    const transaction =
      state === undefined ? undefined : await openTransaction(context, cookies, state)
    const providerError = params.get('error')
    // The provider's words are shown only for this browser's own sign-in: a response it never
    // started is anyone's link, and its text is the sender's, not the provider's.
    if (providerError !== null && transaction !== undefined) {
      const description = params.get('error_description')
      const given = `${providerError}${description === null ? '' : ` (${description})`}`
      throw new LoginFailure(
        400,
        'The identity provider did not sign you in.',
        [`Reason given by the provider: ${given}`],
        {
          log: {
            // The user's own choices (cancelled, no account) are not the application's mistakes.
            level: USER_ERRORS.has(providerError) ? 'info' : 'warn',
            reason: loggable(providerError),
            message: `The identity provider sent the browser back with an error: ${
              loggable(given, 200) ?? ''
            }.`,
          },
        },
      )
    }
    if (transaction === undefined) {
      // A reload of a finished callback, or a response this browser never asked for.
      const sessionId = sessionIdFrom(context, cookies)
      if (sessionId !== undefined) {
        let stored
        try {
          stored = await config.store.get(sessionId)
        } catch (error) {
          return storeUnavailablePage(error, headers)
        }
        if (stored !== undefined) {
          headers.set('location', `${config.publicUrl}/`)
          return new Response(null, { status: 302, headers })
        }
      }
      throw new LoginFailure(
        400,
        'This sign-in was not started in this browser, or it took too long.',
        ['Please start again from the application.'],
      )
    }
    return await completeLogin(context, transaction, params, headers, cookies)
  } catch (error) {
    if (error instanceof LoginFailure) {
      reportFailure(context, error)
      if (error.retryAfter !== undefined) headers.set('retry-after', String(error.retryAfter))
      return pageResponse(
        error.status,
        {
          title: error.status === 400 ? 'Sign-in failed' : 'Sign-in is unavailable',
          paragraphs: [error.message, ...error.detail],
          link: { href: `${config.publicUrl}${config.prefix}/login`, text: 'Sign in again' },
        },
        headers,
      )
    }
    if (isSsoError(error) && error.code === 'session_store_unavailable')
      return storeUnavailablePage(error, headers)
    throw error
  }
}
