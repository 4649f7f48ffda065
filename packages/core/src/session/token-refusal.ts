/**
 * A refusal of the provider's token endpoint (RFC 6749 §5.2) as ssokit reports it: its own
 * error code, the sentences of the sign-in page, and the log line an operator acts on.
 */
import type { SsoErrorCode } from '../errors.js'
import type { TokenEndpointError } from './diagnostics.js'

export interface TokenRefusal {
  readonly code: Extract<
    SsoErrorCode,
    | 'client_auth_failed'
    | 'client_unauthorized'
    | 'grant_invalid'
    | 'token_request_invalid'
    | 'scope_invalid'
    | 'token_request_refused'
  >
  /** The first sentence of the page. */
  readonly page: string
  /** What the page says next: who can fix it. */
  readonly advice: string
  /** What the operator should check, appended to the log line. */
  readonly check: string
  /** `error` for a configuration mistake, `warn` for what a new sign-in may cure. */
  readonly level: 'warn' | 'error'
}

const ADMINS =
  'This is a configuration problem of the application, for its administrators to fix; signing in again will not help.'

/** `method`: how the refused request authenticated the client, named in the operator's line. */
export function tokenRefusal(answer: TokenEndpointError, method?: string): TokenRefusal {
  switch (answer.error) {
    case 'invalid_client':
      return {
        code: 'client_auth_failed',
        page: 'The identity provider refused this application’s credentials.',
        advice: ADMINS,
        check: `The provider refused this application’s credentials${
          method === undefined ? '' : ` (sent with ${method})`
        }: check clientId and clientSecret (or clientPrivateKey), and that tokenEndpointAuth matches the client authentication method registered at the provider.`,
        level: 'error',
      }
    case 'unauthorized_client':
      return {
        code: 'client_unauthorized',
        page: 'The identity provider does not allow this application to sign users in this way.',
        advice: ADMINS,
        check:
          'The client registration at the provider does not allow this grant: enable the standard (authorization code) flow and refresh tokens for the client.',
        level: 'error',
      }
    case 'invalid_grant':
      return {
        code: 'grant_invalid',
        page: 'The identity provider refused the sign-in code: it expired, was used already, or was issued for another address.',
        advice:
          'Please sign in again. If this keeps happening, the redirect URI registered at the provider may differ from the one this application sends.',
        check:
          'The provider refused the code or refresh token: a reused or expired code, a redirect URI that differs from the registered one, or a session ended at the provider.',
        level: 'warn',
      }
    case 'invalid_request':
      return {
        code: 'token_request_invalid',
        page: 'The identity provider refused this application’s token request as malformed.',
        advice: ADMINS,
        check:
          'The provider found the token request malformed: check the client authentication method and the parameters the provider requires.',
        level: 'error',
      }
    case 'invalid_scope':
      return {
        code: 'scope_invalid',
        page: 'The identity provider refused the scopes this application asks for.',
        advice: ADMINS,
        check:
          'The provider refused the scopes asked for: check the scopes option against the client scopes allowed at the provider (offline_access for sessions longer than 12 hours).',
        level: 'error',
      }
    default:
      return {
        code: 'token_request_refused',
        page: 'The identity provider refused this application’s token request.',
        advice: ADMINS,
        check: 'The provider refused the token request: check the client registration.',
        level: 'error',
      }
  }
}
