/**
 * oauth4webapi's errors and fetch failures as `SsoError` codes. The provider's own `error`
 * value decides (RFC 6749 §5.2); its `error_description` is not copied into the message, since a
 * provider may repeat what it was sent.
 */
import { SsoError, type SsoErrorCode } from '@ssokit/core/errors'
import * as oauth from 'oauth4webapi'

const REFUSALS: Readonly<Record<string, SsoErrorCode>> = {
  invalid_client: 'client_auth_failed',
  unauthorized_client: 'client_unauthorized',
  invalid_grant: 'grant_invalid',
  invalid_request: 'token_request_invalid',
  invalid_scope: 'scope_invalid',
  access_denied: 'token_request_refused',
}

const MESSAGES: Partial<Record<SsoErrorCode, string>> = {
  client_auth_failed: 'The identity provider refused the client credentials (invalid_client).',
  client_unauthorized:
    'The identity provider does not allow this client this grant (unauthorized_client).',
  grant_invalid:
    'The identity provider refused the refresh token or subject token (invalid_grant).',
  token_request_invalid: 'The identity provider found the token request malformed.',
  scope_invalid: 'The identity provider refused the scopes asked for (invalid_scope).',
  token_request_refused: 'The identity provider refused the token request.',
}

export type ProtocolStep = 'discovery' | 'token' | 'revocation' | 'device'

const STEP_NAMES: Record<ProtocolStep, string> = {
  discovery: 'discovery document',
  device: 'device authorization endpoint',
  token: 'token endpoint',
  revocation: 'revocation endpoint',
}

function unavailable(step: ProtocolStep, cause: unknown, status?: number): SsoError {
  return new SsoError(
    'provider_unavailable',
    `The identity provider's ${STEP_NAMES[step]} cannot be reached or failed${status === undefined ? '' : ` (HTTP ${status})`}.`,
    { cause, retryAfter: 30 },
  )
}

/** The provider's `error` value of a refused request, if it gave one. */
export function providerError(error: unknown): string | undefined {
  if (error instanceof oauth.ResponseBodyError) return error.error
  if (error instanceof SsoError && error.cause instanceof oauth.ResponseBodyError) {
    return error.cause.error
  }
  return undefined
}

export function translateProtocolError(error: unknown, step: ProtocolStep): SsoError {
  if (error instanceof SsoError) return error
  if (error instanceof oauth.ResponseBodyError) {
    if (error.status >= 500 || error.status === 429) return unavailable(step, error, error.status)
    const code = REFUSALS[error.error] ?? 'token_request_refused'
    return new SsoError(code, MESSAGES[code] ?? 'The identity provider refused the request.', {
      cause: error,
    })
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    // A 401 with a challenge: the client's authentication was refused.
    const named = error.cause.map((c) => c.parameters.error).find((e) => typeof e === 'string')
    const code = (named === undefined ? undefined : REFUSALS[named]) ?? 'client_auth_failed'
    return new SsoError(code, MESSAGES[code] ?? 'The identity provider refused the request.', {
      cause: error,
    })
  }
  if (error instanceof oauth.OperationProcessingError) {
    const status = (error.cause as { status?: unknown } | undefined)?.status
    if (typeof status === 'number' && (status >= 500 || status === 429)) {
      return unavailable(step, error, status)
    }
    if (error.code === oauth.HTTP_REQUEST_FORBIDDEN) {
      return new SsoError(
        'insecure_transport',
        `The identity provider's ${STEP_NAMES[step]} is not https; nothing was sent to it.`,
        { cause: error },
      )
    }
    if (step === 'discovery' && error.code === oauth.JSON_ATTRIBUTE_COMPARISON) {
      return new SsoError(
        'token_response_invalid',
        'The discovery document names another issuer than the one configured.',
        { cause: error },
      )
    }
    return new SsoError(
      step === 'discovery' ? 'provider_unavailable' : 'token_response_invalid',
      `The identity provider's ${STEP_NAMES[step]} answered something that is not a valid response${typeof status === 'number' ? ` (HTTP ${status})` : ''}.`,
      { cause: error },
    )
  }
  if (error instanceof oauth.UnsupportedOperationError) {
    return new SsoError(
      'token_response_invalid',
      `The identity provider's ${STEP_NAMES[step]} answered with a token this client cannot use.`,
      { cause: error },
    )
  }
  // fetch failures (connection refused, DNS, reset) are TypeErrors with a cause.
  return unavailable(step, error)
}
