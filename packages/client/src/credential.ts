/**
 * A credential as the client keeps it, in memory and in the cache file: the access token, when
 * to renew it, and the refresh token when the provider issued one. Built only from a token
 * response that passed `acceptTokenResponse`.
 */
import { SsoError } from '@ssokit/core/errors'
import type * as oauth from 'oauth4webapi'

import { renewAt } from './expiry.js'
import { audiences, stringClaim, unverifiedClaims } from './jwt.js'

export const CREDENTIAL_VERSION = 1

export type CredentialGrant = 'client_credentials' | 'token_exchange' | 'login'

/** What a cached credential is for (RFC 9700 §2.3: a token is reused only for the same). */
export interface CredentialKey {
  readonly issuer: string
  readonly clientId: string
  /** `login`: a user's credential from an interactive login (device, browser, Kerberos). */
  readonly grant: CredentialGrant
  readonly audience: string | undefined
  /** Sorted, space-separated. */
  readonly scope: string | undefined
  /** For an exchange: the key of the subject's credential, or the subject's `iss` and `sub`. */
  readonly subject: string | undefined
}

export interface Credential {
  readonly version: typeof CREDENTIAL_VERSION
  readonly key: CredentialKey
  readonly accessToken: string
  /** Local ms time the token response arrived. */
  readonly obtainedAt: number
  /** Local ms time after which the access token is not used any more. */
  readonly renewAt: number
  /** Local ms time the access token expires (`expires_in` or `exp`), for display. */
  readonly expiresAt: number | undefined
  readonly refreshToken: string | undefined
  readonly refreshExpiresAt: number | undefined
  /** The token's `sub` and `preferred_username`, read without verification, for display. */
  readonly subjectName: string | undefined
  readonly username: string | undefined
}

export interface AcceptOptions {
  readonly key: CredentialKey
  readonly now: number
  /** The raw JSON of the answer, before oauth4webapi normalised it. */
  readonly raw: Readonly<Record<string, unknown>>
  /** The previous credential, whose refresh token is kept when the answer has none (RFC 6749 §6). */
  readonly previous?: Credential | undefined
}

function invalid(message: string, claim?: string): SsoError {
  return new SsoError('token_response_invalid', message, claim === undefined ? {} : { claim })
}

/**
 * Turns a token response oauth4webapi accepted into a credential, with the checks it leaves to
 * the caller: `expires_in` a JSON number, the access token not an ID token (RFC 8725 §3.12).
 */
export function acceptTokenResponse(
  response: oauth.TokenEndpointResponse,
  options: AcceptOptions,
): Credential {
  const { raw, now, key, previous } = options
  if (raw.expires_in !== undefined && typeof raw.expires_in !== 'number') {
    throw invalid('The token response has an expires_in that is not a number.')
  }
  const accessToken = response.access_token
  const claims = unverifiedClaims(accessToken)
  if (accessToken === response.id_token || stringClaim(claims, 'typ')?.toLowerCase() === 'id') {
    throw invalid('The token response has an ID token where the access token belongs.', 'typ')
  }
  const refreshExpires =
    typeof raw.refresh_expires_in === 'number' && raw.refresh_expires_in > 0
      ? now + raw.refresh_expires_in * 1000
      : undefined
  const expiresIn = response.expires_in
  const exp = claims?.exp
  const refreshToken = response.refresh_token ?? previous?.refreshToken
  return Object.freeze({
    version: CREDENTIAL_VERSION,
    key,
    accessToken,
    obtainedAt: now,
    renewAt: renewAt(now, expiresIn, claims),
    expiresAt:
      expiresIn !== undefined
        ? now + expiresIn * 1000
        : typeof exp === 'number'
          ? exp * 1000
          : undefined,
    refreshToken,
    refreshExpiresAt:
      response.refresh_token !== undefined ? refreshExpires : previous?.refreshExpiresAt,
    subjectName: stringClaim(claims, 'sub'),
    username: stringClaim(claims, 'preferred_username'),
  })
}

/** RFC 8693 §2.2.1 and the audience asked for (D11): refuses what must not be cached or sent. */
export function checkExchangeResponse(
  raw: Readonly<Record<string, unknown>>,
  audience: string,
): void {
  const issued = raw.issued_token_type
  if (typeof issued !== 'string') {
    throw invalid('The token exchange response has no issued_token_type.')
  }
  if (
    issued !== 'urn:ietf:params:oauth:token-type:access_token' &&
    issued !== 'urn:ietf:params:oauth:token-type:refresh_token' &&
    issued !== 'urn:ietf:params:oauth:token-type:jwt'
  ) {
    throw invalid(
      'The token exchange issued a token type this client cannot use as a bearer token.',
    )
  }
  const token = raw.access_token
  const claims = typeof token === 'string' ? unverifiedClaims(token) : undefined
  if (claims !== undefined && !audiences(claims).includes(audience)) {
    throw invalid('The exchanged token is not for the audience asked for.', 'aud')
  }
}

/** A credential's audience check on refresh, so a refreshed exchange still fits its key. */
export function checkAudience(credential: Credential): void {
  const { audience } = credential.key
  if (audience === undefined) return
  const claims = unverifiedClaims(credential.accessToken)
  if (claims !== undefined && !audiences(claims).includes(audience)) {
    throw invalid('The refreshed token is not for the audience asked for.', 'aud')
  }
}
