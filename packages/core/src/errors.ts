/**
 * Every failure ssokit reports to a caller is an `SsoError` with a stable `code`.
 * Messages are fixed sentences: they never contain a token, a cookie or a secret.
 * Each code has a section in docs/errors.md.
 */

/** The closed set of error codes, with the HTTP status each one maps to. */
export const ERROR_STATUS = {
  /** No credentials in the request. 401, `WWW-Authenticate: Bearer realm=".."` without `error`. */
  token_missing: 401,
  /** Bad signature, malformed, wrong type, wrong issuer: 401 `invalid_token`. */
  token_invalid: 401,
  /** `exp` in the past (beyond the clock tolerance) or `nbf`/`iat` in the future: 401 `invalid_token`. */
  token_expired: 401,
  /** `aud` does not name this client: 401 `invalid_token`. */
  audience_mismatch: 401,
  /**
   * A token longer than `maxTokenLength` (64 KiB by default): 431, told apart from a forged
   * token so that an operator sees the limit to raise. No `WWW-Authenticate` challenge.
   */
  token_too_large: 431,
  /** Malformed credentials: two of them, broken `Authorization` syntax: 400 `invalid_request`. */
  invalid_request: 400,
  /** Authenticated, but a required role is missing: 403 `insufficient_scope`. */
  role_required: 403,
  /** Keys or metadata cannot be obtained from the provider: 503 with `Retry-After`. */
  provider_unavailable: 503,
  /** The session store cannot be reached: 503 with `Retry-After`. Never treated as logged out. */
  session_store_unavailable: 503,
  /** No valid browser session (and no bearer token): 401, or a redirect to login for navigations. */
  session_missing: 401,
  /** A login callback failed validation (state, PKCE, nonce, ID token, provider error): 400. */
  login_failed: 400,
  /** Too many failed logins from one browser in a row: 429, an error page instead of a loop. */
  login_loop: 429,
  /** A back-channel logout token failed validation: 400. */
  logout_token_invalid: 400,
  /** A request body over the route's limit (`maxBodySize`): 413, the connection closed, the rest unread. */
  body_too_large: 413,
  /** The provider refused this application's credentials at its token endpoint (`invalid_client`): 502. */
  client_auth_failed: 502,
  /** The provider does not let this client use the grant (`unauthorized_client`): 502. */
  client_unauthorized: 502,
  /** The provider refused the code or refresh token (`invalid_grant`): 400. */
  grant_invalid: 400,
  /** The provider found the token request malformed (`invalid_request`): 502. */
  token_request_invalid: 502,
  /** The provider refused the scopes asked for (`invalid_scope`): 502. */
  scope_invalid: 502,
  /** Any other refusal of the token endpoint (`unsupported_grant_type`, ...): 502. */
  token_request_refused: 502,
  /** A client (script, CLI) has no usable credential and cannot get one without a new login: 401. */
  login_required: 401,
  /** The user refused an interactive login (device flow or browser, `access_denied`): 403. */
  access_denied: 403,
  /** A device login's code expired before the user approved it (`expired_token`): 401. */
  device_code_expired: 401,
  /** An interactive login was not completed within its time limit: 401. */
  login_timeout: 401,
  /** An interactive login was cancelled by its `AbortSignal` (Ctrl-C in the CLI): 401. */
  login_cancelled: 401,
  /** Another process holds the credential's lock while its user logs in (the CLI names its pid): 409. */
  login_in_progress: 409,
  /** The token endpoint answered something that is not a usable token (no access token, wrong type, wrong audience): 502. */
  token_response_invalid: 502,
  /** A provider endpoint is plain `http` on a host other than loopback: 502, nothing is sent to it. */
  insecure_transport: 502,
  /** The credential cache on disk is a symlink, not a directory, or open to other users: 500. */
  credential_cache_unsafe: 500,
  /** Kerberos login was asked for but the optional `kerberos` module is not installed: 500. */
  kerberos_unavailable: 500,
  /** No Kerberos ticket (run `kinit`) and no keytab: 401. */
  kerberos_ticket_missing: 401,
  /** The Kerberos ticket has expired (run `kinit` again): 401. */
  kerberos_ticket_expired: 401,
  /** The provider refused the Kerberos ticket or its principal, or GSSAPI failed: 401. */
  kerberos_refused: 401,
  /** The provider asks for a one-time code and no source of one is configured: 401. */
  otp_required: 401,
  /** The provider refused the one-time codes given: 401. */
  otp_rejected: 401,
  /** A login page asked for something a script cannot answer (consent, another method): 502. */
  login_page_unexpected: 502,
} as const satisfies Record<string, number>

export type SsoErrorCode = keyof typeof ERROR_STATUS

/** The RFC 6750 `error` attribute for a code, if it has one. */
export type BearerErrorAttribute = 'invalid_token' | 'invalid_request' | 'insufficient_scope'

const BEARER_ERROR: Partial<Record<SsoErrorCode, BearerErrorAttribute>> = {
  token_invalid: 'invalid_token',
  token_expired: 'invalid_token',
  audience_mismatch: 'invalid_token',
  invalid_request: 'invalid_request',
  role_required: 'insufficient_scope',
}

export interface SsoErrorOptions {
  /** The lower-level error, kept for logs; never shown to the client. */
  cause?: unknown
  /** The claim at fault, when one is (`exp`, `aud`, `iss`, `typ`, ...). */
  claim?: string
  /** Seconds after which a retry may succeed (503 answers). */
  retryAfter?: number
  /** Roles that were required, for `role_required`. */
  requiredRoles?: readonly string[]
}

export class SsoError extends Error {
  override readonly name: string = 'SsoError'
  readonly code: SsoErrorCode
  readonly status: number
  readonly claim: string | undefined
  readonly retryAfter: number | undefined
  readonly requiredRoles: readonly string[] | undefined

  constructor(code: SsoErrorCode, message: string, options: SsoErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.status = ERROR_STATUS[code]
    this.claim = options.claim
    this.retryAfter = options.retryAfter
    this.requiredRoles = options.requiredRoles
  }

  /** The RFC 6750 `error` attribute for `WWW-Authenticate`, if this code has one. */
  get bearerError(): BearerErrorAttribute | undefined {
    return BEARER_ERROR[this.code]
  }
}

export function isSsoError(value: unknown): value is SsoError {
  return value instanceof SsoError
}

/** A caller mistake found when options are checked: thrown at construction, never on a request. */
export class SsoTypeError extends TypeError {
  override readonly name: string = 'TypeError'
  readonly code: 'ERR_INVALID_ARG_VALUE' | 'ERR_INVALID_ARG_TYPE' | 'ERR_MISSING_OPTION'

  constructor(
    message: string,
    code:
      | 'ERR_INVALID_ARG_VALUE'
      | 'ERR_INVALID_ARG_TYPE'
      | 'ERR_MISSING_OPTION' = 'ERR_INVALID_ARG_VALUE',
  ) {
    super(message)
    this.code = code
  }
}
