/**
 * Identities built from session records, kept per session id. An entry is served only for a
 * record just read from the store whose tokens are the ones it was built from, so it never
 * outlives or outranks the record. Decoded records are kept the same way: served only for the
 * exact stored text they were decoded from, so the store is still read on every request and
 * only the parse of unchanged text is skipped.
 */
import { attachAccessToken } from '../access-token.js'
import type { Identity } from '../identity.js'
import { RoleSet, type RoleReader } from '../verify/claims.js'
import { decodeRecord, type SessionRecord } from './record.js'
import { decodeClaims } from './tokens.js'

/** Identities kept built per process; a miss costs two JWT decodes and a deep freeze. */
const MAX_CACHED_IDENTITIES = 1000

/** A decoded record and the exact stored text it was decoded from. */
interface CachedRecord {
  readonly data: string
  readonly record: SessionRecord
}

/** A built identity and the exact record fields it was built from. */
interface CachedIdentity {
  readonly iss: string
  readonly sub: string
  readonly idToken: string
  readonly accessToken: string
  readonly identity: Identity
}

/** How an identity is read from a session's tokens. */
export interface IdentityMapping {
  readonly roles: RoleReader
  readonly username: (claims: Readonly<Record<string, unknown>>) => string
  /** Called when neither token carries the configured role claims. */
  readonly rolesMissing: (claims: Readonly<Record<string, unknown>>) => void
}

export class IdentityCache {
  readonly #mapping: IdentityMapping
  readonly #entries = new Map<string, CachedIdentity>()
  readonly #records = new Map<string, CachedRecord>()

  constructor(mapping: IdentityMapping) {
    this.#mapping = mapping
  }

  /** The subject last seen for a session id: a session never changes subject. */
  subjectOf(sessionId: string): string | undefined {
    return this.#entries.get(sessionId)?.sub
  }

  forget(sessionId: string): void {
    this.#entries.delete(sessionId)
    this.#records.delete(sessionId)
  }

  /**
   * The record stored as `data` for a session, decoded once per distinct text: a record is a few
   * kilobytes of JSON, and comparing it with the text seen last is far cheaper than parsing it.
   */
  recordOf(sessionId: string, data: string): SessionRecord | undefined {
    const records = this.#records
    const cached = records.get(sessionId)
    if (cached !== undefined && cached.data === data) return cached.record
    const record = decodeRecord(data)
    if (cached !== undefined) records.delete(sessionId)
    if (record === undefined) return undefined
    evictOldest(records)
    // Shared between requests from now on: frozen so that no caller can change it for the next.
    deepFreeze(record)
    records.set(sessionId, { data, record })
    return record
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
    const identity = buildIdentity(record, this.#mapping)
    attachAccessToken(identity, record.accessToken)
    if (cached !== undefined) cache.delete(sessionId)
    else evictOldest(cache)
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

/** Makes room for one more entry; maps keep insertion order, so the first key is the oldest. */
function evictOldest(cache: Map<string, unknown>): void {
  if (cache.size < MAX_CACHED_IDENTITIES) return
  const oldest = cache.keys().next()
  if (oldest.done !== true) cache.delete(oldest.value)
}

function buildIdentity(record: SessionRecord, mapping: IdentityMapping): Identity {
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
  // Roles come from the access token, where the provider puts them for this client; a provider
  // that puts them only in the ID token (or issues opaque access tokens) is read there.
  let roles = mapping.roles(accessClaims) ?? mapping.roles(idClaims)
  if (roles === undefined) {
    roles = []
    mapping.rolesMissing(claims)
  }
  return Object.freeze({
    subject: record.sub,
    username: mapping.username(claims),
    email: str('email'),
    name: str('name'),
    roles: new RoleSet(roles),
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
