/**
 * When a credential must be renewed, in local time. A provider's `expires_in` is a lifetime
 * (RFC 6749 §5.1), so it is added to the local time the answer arrived, which makes the result
 * immune to a provider clock that is off; a JWT `exp` is used only without `expires_in`, and then
 * as a lifetime too (`exp - iat`) when the token has `iat`.
 */
import { numberClaim, type Claims } from './jwt.js'

/** Renew this long before expiry, at most: a token is never used in its last minute. */
export const REFRESH_MARGIN_MS = 60_000
/** Tolerated difference between our clock and the provider's, for an `exp` without `iat`. */
export const CLOCK_SKEW_MS = 30_000

/**
 * The local time (ms) after which the access token is not used: receipt + lifetime − margin,
 * with the margin at most half the lifetime so short-lived tokens are still reused.
 * `undefined` lifetime information gives `receivedAt`: the token is used once, never cached.
 */
export function renewAt(
  receivedAt: number,
  expiresIn: number | undefined,
  claims: Claims | undefined,
): number {
  const lifetime = lifetimeMs(receivedAt, expiresIn, claims)
  if (lifetime === undefined || lifetime <= 0) return receivedAt
  return receivedAt + lifetime - Math.min(REFRESH_MARGIN_MS, lifetime / 2)
}

function lifetimeMs(
  receivedAt: number,
  expiresIn: number | undefined,
  claims: Claims | undefined,
): number | undefined {
  if (expiresIn !== undefined) return expiresIn * 1000
  const exp = numberClaim(claims, 'exp')
  if (exp === undefined) return undefined
  const iat = numberClaim(claims, 'iat')
  if (iat !== undefined && iat < exp) return (exp - iat) * 1000
  return exp * 1000 - receivedAt - CLOCK_SKEW_MS
}

/**
 * Whether a credential renewed at `renewAtMs` and obtained at `obtainedAt` is still usable at
 * `now`. A clock that went back before the credential was obtained proves nothing about its
 * age, so the credential is renewed rather than trusted.
 */
export function isFresh(now: number, obtainedAt: number, renewAtMs: number): boolean {
  return now >= obtainedAt && now < renewAtMs
}
