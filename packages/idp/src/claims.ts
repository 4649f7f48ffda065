import type { ResolvedClient, ResolvedUser } from './config.js'

export const SERVICE_ACCOUNT_PREFIX = 'service-account-'

/** Roles in `client` from a role map keyed by client id, where `"*"` means every client. */
export function rolesIn(
  roles: Readonly<Record<string, readonly string[]>>,
  client: string,
): string[] {
  return [...new Set([...(roles['*'] ?? []), ...(roles[client] ?? [])])]
}

/** The profile claims a user carries (and a service account never does). */
export function userClaims(user: ResolvedUser): Record<string, unknown> {
  const claims: Record<string, unknown> = {
    preferred_username: user.username,
    cern_upn: user.username,
  }
  if (user.name !== undefined) claims.name = user.name
  if (user.given_name !== undefined) claims.given_name = user.given_name
  if (user.family_name !== undefined) claims.family_name = user.family_name
  if (user.email !== undefined) {
    claims.email = user.email
    claims.email_verified = true
  }
  if (user.cern_person_id !== undefined) claims.cern_person_id = user.cern_person_id
  return claims
}

/** The role claims for a token whose audience is `audience`, Keycloak and CERN style. */
export function roleClaims(
  subjectRoles: Readonly<Record<string, readonly string[]>>,
  realmRoles: readonly string[],
  audience: string,
): Record<string, unknown> {
  const roles = rolesIn(subjectRoles, audience)
  return {
    cern_roles: roles,
    ...(roles.length > 0 ? { resource_access: { [audience]: { roles } } } : {}),
    realm_access: { roles: [...realmRoles] },
  }
}

export interface Directory {
  user(username: string): ResolvedUser | undefined
  client(clientId: string): ResolvedClient | undefined
}
