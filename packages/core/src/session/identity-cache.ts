/**
 * Identities built from session records, kept per session id. An entry is served only for a
 * record just read from the store whose tokens are the ones it was built from, so it never
 * outlives or outranks the record.
 */
import type { Identity } from '../identity.js'
import { RoleSet } from '../verify/claims.js'
import type { SessionRecord } from './record.js'
import { decodeClaims } from './tokens.js'

/** Identities kept built per process; a miss costs two JWT decodes and a deep freeze. */
const MAX_CACHED_IDENTITIES = 1000

/** A built identity and the exact record fields it was built from. */
interface CachedIdentity {
  readonly iss: string
  readonly sub: string
  readonly idToken: string
  readonly accessToken: string
  readonly identity: Identity
}

export type RoleReader = (claims: Readonly<Record<string, unknown>>) => Iterable<string>

export class IdentityCache {
  readonly #roles: RoleReader
  readonly #entries = new Map<string, CachedIdentity>()

  constructor(roles: RoleReader) {
    this.#roles = roles
  }

  /** The subject last seen for a session id: a session never changes subject. */
  subjectOf(sessionId: string): string | undefined {
    return this.#entries.get(sessionId)?.sub
  }

  forget(sessionId: string): void {
    this.#entries.delete(sessionId)
  }

  /** The identity of a record just read from the store, built once per set of tokens. */
  identityOf(sessionId: string, record: SessionRecord): Identity {
    const cache = this.#entries
    const cached = cache.get(sessionId)
    if (
      cached !== undefined &&
      cached.accessToken === record.accessToken &&
      cached.idToken === record.idToken &&
      cached.sub === record.sub &&
      cached.iss === record.iss
    ) {
      return cached.identity
    }
    const identity = buildIdentity(record, this.#roles)
    if (cached !== undefined) cache.delete(sessionId)
    else if (cache.size >= MAX_CACHED_IDENTITIES) {
      const oldest = cache.keys().next()
      if (oldest.done !== true) cache.delete(oldest.value)
    }
    cache.set(sessionId, {
      iss: record.iss,
      sub: record.sub,
      idToken: record.idToken,
      accessToken: record.accessToken,
      identity,
    })
    return identity
  }
}

function buildIdentity(record: SessionRecord, roles: RoleReader): Identity {
  const idClaims = decodeClaims(record.idToken) ?? {}
  const accessClaims = decodeClaims(record.accessToken) ?? {}
  const claims: Record<string, unknown> = {
    ...accessClaims,
    ...idClaims,
    iss: record.iss,
    sub: record.sub,
  }
  deepFreeze(claims)
  const str = (name: string): string | undefined => {
    const value = claims[name]
    return typeof value === 'string' ? value : undefined
  }
  return Object.freeze({
    subject: record.sub,
    username: str('preferred_username') ?? str('cern_upn'),
    email: str('email'),
    name: str('name'),
    // Roles come from the access token, where the provider puts them for this client.
    roles: new RoleSet(roles(accessClaims)),
    kind: 'user',
    via: 'session',
    claims,
  })
}

function deepFreeze(value: unknown): void {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return
  Object.freeze(value)
  for (const child of Object.values(value)) deepFreeze(child)
}
