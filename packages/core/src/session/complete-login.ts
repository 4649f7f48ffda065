/**
 * The end of a sign-in: exchange the validated code, check the ID token, and create the session
 * under a new id. Only a response that passed `validateAuthResponse` reaches the exchange, and
 * only a verified ID token creates a session.
 */
import * as oauth from 'oauth4webapi'

import { ERROR_STATUS, isSsoError } from '../errors.js'
import { loggable, loggableUrl } from '../verify/events.js'
import type { CookieJar } from './cookies.js'
import { providerText, tokenEndpointError, type TokenEndpointError } from './diagnostics.js'
import { SESSION_PURPOSE, setCookie, tokenParams, type SessionContext } from './context.js'
import { LoginFailure } from './login-failure.js'
import { loginCompletedCookie } from './login-loop.js'
import { isTransient, PROVIDER_RETRY_AFTER_S, unavailable } from './provider.js'
import { encodeRecord, RECORD_VERSION, type SessionRecord } from './record.js'
import { randomId } from './seal.js'
import { asStoreError } from './store-errors.js'
import { tokenRefusal } from './token-refusal.js'
import { accessTiming, checkSignature, decodeClaims } from './tokens.js'
import type { Transaction } from './transaction.js'

/** ID tokens at login must be fresh: issued within this many seconds of now. */
const MAX_ID_TOKEN_AGE_S = 3600

function providerDown(message: string, cause: unknown): LoginFailure {
  return new LoginFailure(503, message, ['Please try again in a moment.'], {
    cause,
    retryAfter: PROVIDER_RETRY_AFTER_S,
  })
}

/** The page and the log line of a code exchange the token endpoint refused. */
function refusedLogin(
  context: SessionContext,
  metadata: oauth.AuthorizationServer,
  answer: TokenEndpointError,
  cause: unknown,
): LoginFailure {
  const { config, clientAuth } = context
  const refusal = tokenRefusal(answer, clientAuth.method(metadata))
  const said = providerText(answer.description, clientAuth.secrets(config.secrets))
  const given = `${answer.error}${said === undefined ? '' : ` (${said})`}`
  const url =
    metadata.token_endpoint === undefined ? undefined : loggableUrl(metadata.token_endpoint)
  return new LoginFailure(
    ERROR_STATUS[refusal.code],
    refusal.page,
    [refusal.advice, `Reason given by the provider: ${given}`],
    {
      cause,
      code: refusal.code,
      log: {
        level: refusal.level,
        reason: answer.error,
        url,
        message: `The token endpoint${url === undefined ? '' : ` ${url}`} refused the code exchange with ${given}. ${refusal.check}`,
      },
    },
  )
}

/** The configured client authentication cannot work with this provider (checked before any request). */
function unusableClientAuth(cause: unknown): LoginFailure {
  const message =
    cause instanceof Error ? cause.message : 'The client authentication method cannot be used.'
  return new LoginFailure(
    ERROR_STATUS.client_auth_failed,
    'This application cannot authenticate itself to the identity provider.',
    [
      'This is a configuration problem of the application, for its administrators to fix; signing in again will not help.',
    ],
    {
      cause,
      code: 'client_auth_failed',
      log: { level: 'error', reason: 'client_auth_unsupported', message },
    },
  )
}

export async function completeLogin(
  context: SessionContext,
  transaction: Transaction,
  params: URLSearchParams,
  headers: Headers,
  cookies: CookieJar,
): Promise<Response> {
  const { config, provider, client, clientAuth } = context
  let metadata: oauth.AuthorizationServer
  try {
    metadata = await provider.metadata()
  } catch (error) {
    throw providerDown('The identity provider cannot be reached.', error)
  }

  let validated: URLSearchParams
  try {
    // Checks state and the RFC 9207 `iss` parameter (mix-up defence), refuses implicit responses.
    validated = oauth.validateAuthResponse(metadata, client, params, transaction.state)
  } catch (error) {
    throw new LoginFailure(400, 'The sign-in response did not pass validation.', [], {
      cause: error,
    })
  }

  let authentication: oauth.ClientAuth
  try {
    authentication = await clientAuth.forProvider(metadata)
  } catch (error) {
    throw unusableClientAuth(error)
  }

  let tokens: oauth.TokenEndpointResponse
  let claims: oauth.IDToken
  try {
    const response = await oauth.authorizationCodeGrantRequest(
      metadata,
      client,
      authentication,
      validated,
      config.redirectUri,
      transaction.verifier,
      { ...provider.requestOptions(), additionalParameters: tokenParams(config) },
    )
    if (response.status >= 500)
      throw unavailable(new Error(`token endpoint answered ${response.status}`))
    tokens = await oauth.processAuthorizationCodeResponse(metadata, client, response, {
      expectedNonce: transaction.nonce,
      requireIdToken: true,
    })
    await checkSignature(provider, metadata, response)
    const idClaims = oauth.getValidatedIdTokenClaims(tokens)
    if (idClaims === undefined) throw new Error('no ID token')
    claims = idClaims
  } catch (error) {
    if ((isSsoError(error) && error.code === 'provider_unavailable') || isTransient(error)) {
      throw providerDown('The identity provider did not answer in time.', error)
    }
    const answer = tokenEndpointError(error)
    if (answer !== undefined) throw refusedLogin(context, metadata, answer, error)
    throw new LoginFailure(400, 'The identity provider’s answer did not pass validation.', [], {
      cause: error,
      log: {
        level: 'warn',
        reason: error instanceof oauth.OperationProcessingError ? error.code : 'validation',
        message: `The identity provider’s answer to the code exchange did not pass validation: ${
          (error instanceof Error ? loggable(error.message, 200) : undefined) ?? 'unknown reason'
        }.`,
      },
    })
  }
  // No other audience is trusted alongside this client (OIDC Core §3.1.3.7 step 3).
  const audiences = typeof claims.aud === 'string' ? [claims.aud] : claims.aud
  if (
    audiences.some((aud) => aud !== config.clientId) ||
    (claims.azp !== undefined && claims.azp !== config.clientId)
  ) {
    throw new LoginFailure(
      400,
      'The identity provider’s answer was meant for another application too.',
    )
  }
  // An ID token issued long ago (or in the future) is a replay or a broken clock.
  if (Math.abs(Math.floor(Date.now() / 1000) - claims.iat) > MAX_ID_TOKEN_AGE_S) {
    throw new LoginFailure(400, 'The identity provider’s answer is too old, or a clock is wrong.')
  }
  if (typeof claims.sub !== 'string' || claims.sub === '') {
    throw new LoginFailure(400, 'The identity provider’s answer did not name a user.')
  }
  const accessClaims = decodeClaims(tokens.access_token)
  if (accessClaims?.sub !== undefined && accessClaims.sub !== claims.sub) {
    throw new LoginFailure(400, 'The identity provider’s tokens name different users.')
  }

  const now = config.now()
  const record: SessionRecord = {
    v: RECORD_VERSION,
    iss: claims.iss,
    sub: claims.sub,
    sid: typeof claims.sid === 'string' ? claims.sid : undefined,
    aud: claims.aud,
    azp: claims.azp,
    idToken: tokens.id_token as string,
    accessToken: tokens.access_token,
    refreshToken: tokens.refresh_token,
    ...accessTiming(tokens.expires_in, now),
    createdAt: now,
    expiresAt: now + config.sessionLifetimeS * 1000,
    lastSeenAt: now,
    offline: config.offline && tokens.refresh_token !== undefined,
  }
  // Always a new id from the CSPRNG: an id the browser sent is never adopted (fixation).
  const sessionId = randomId(32)
  try {
    await config.store.set(
      sessionId,
      { subject: record.sub, sid: record.sid, data: encodeRecord(record) },
      config.sessionLifetimeS,
    )
  } catch (error) {
    throw asStoreError(error)
  }
  context.events.emit({
    type: 'login_completed',
    level: 'info',
    message: 'A sign-in completed.',
    iss: record.iss,
  })
  const signed = context.keyring.sign(sessionId, SESSION_PURPOSE)
  headers.append('set-cookie', loginCompletedCookie(context, cookies))
  headers.append(
    'set-cookie',
    setCookie(config, config.sessionCookie, signed, config.sessionLifetimeS, '/'),
  )
  headers.set('location', `${config.publicUrl}${transaction.returnTo}`)
  return new Response(null, { status: 302, headers })
}
