/**
 * Reading the claims of a JWT access token without verifying it. A client cannot verify a token
 * meant for someone else's API; it reads `exp`, `aud` and `sub` only to plan refreshes, check
 * that an exchange answered for the audience asked for, and show who a credential belongs to.
 */
export type Claims = Readonly<Record<string, unknown>>

/** The payload of a JWS compact token, or `undefined` for an opaque token. */
export function unverifiedClaims(token: string): Claims | undefined {
  const parts = token.split('.')
  if (parts.length !== 3 || parts[1] === undefined) return undefined
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'))
    return typeof payload === 'object' && payload !== null && !Array.isArray(payload)
      ? (payload as Claims)
      : undefined
  } catch {
    return undefined
  }
}

export function audiences(claims: Claims | undefined): readonly string[] {
  const aud = claims?.aud
  if (typeof aud === 'string') return [aud]
  return Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : []
}

export function stringClaim(claims: Claims | undefined, name: string): string | undefined {
  const value = claims?.[name]
  return typeof value === 'string' ? value : undefined
}

export function numberClaim(claims: Claims | undefined, name: string): number | undefined {
  const value = claims?.[name]
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined
}
