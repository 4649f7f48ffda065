/**
 * The session record kept in the store, serialised as JSON with a format version `v`.
 * A record written by a newer format (or one that does not parse) counts as no session.
 */
import type { SessionStore, StoredSession } from './store.js'

export const RECORD_VERSION = 1

export interface SessionRecord {
  readonly v: typeof RECORD_VERSION
  readonly iss: string
  readonly sub: string
  /** The provider's session id, for back-channel logout by `sid`. */
  readonly sid: string | undefined
  /** Audience and authorized party of the first ID token: a refresh may not change them. */
  readonly aud: string | readonly string[]
  readonly azp: string | undefined
  readonly idToken: string
  readonly accessToken: string
  readonly refreshToken: string | undefined
  /** Milliseconds since the epoch, from the server's clock. */
  readonly accessExpiresAt: number | undefined
  /** When the access token is refreshed (a margin before it expires), in ms since the epoch. */
  readonly refreshAt: number | undefined
  readonly createdAt: number
  readonly expiresAt: number
  readonly lastSeenAt: number
  /** Whether the refresh token is an offline token (`offline_access`). */
  readonly offline: boolean
}

function isString(value: unknown): value is string {
  return typeof value === 'string'
}

function isFiniteNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

/**
 * The JSON object in `data` stamped with format `version` (its `v`), or `undefined`: a record
 * that does not parse, or that a newer format wrote, is no record. For every kind of record a
 * login source keeps in the store.
 */
export function parseVersioned(
  data: string,
  version: number = RECORD_VERSION,
): Record<string, unknown> | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined
  const object = parsed as Record<string, unknown>
  return object.v === version ? object : undefined
}

export function encodeRecord(record: SessionRecord): string {
  return JSON.stringify(record)
}

/** The record, or `undefined` when the data is not one this version can read. */
export function decodeRecord(data: string): SessionRecord | undefined {
  const r = parseVersioned(data)
  if (r === undefined) return undefined
  const aud = r.aud
  const audOk = isString(aud) || (Array.isArray(aud) && aud.every(isString))
  if (
    !isString(r.iss) ||
    !isString(r.sub) ||
    !(r.sid === undefined || isString(r.sid)) ||
    !audOk ||
    !(r.azp === undefined || isString(r.azp)) ||
    !isString(r.idToken) ||
    !isString(r.accessToken) ||
    !(r.refreshToken === undefined || isString(r.refreshToken)) ||
    !(r.accessExpiresAt === undefined || isFiniteNumber(r.accessExpiresAt)) ||
    !(r.refreshAt === undefined || isFiniteNumber(r.refreshAt)) ||
    !isFiniteNumber(r.createdAt) ||
    !isFiniteNumber(r.expiresAt) ||
    !isFiniteNumber(r.lastSeenAt) ||
    typeof r.offline !== 'boolean'
  ) {
    return undefined
  }
  return r as unknown as SessionRecord
}

/**
 * The mark a back-channel logout naming only a `sub` leaves under `logoutMarkId(sub)`: every
 * session of that subject created at or before `iat` (seconds, the provider's clock) has ended.
 */
export interface LogoutMark {
  readonly v: typeof RECORD_VERSION
  readonly kind: 'logout-sub'
  readonly iat: number
}

/** A reserved store id; session ids are base64url and never contain `:`. */
export function logoutMarkId(subject: string): string {
  return `logout-sub:${subject}`
}

export function encodeLogoutMark(iat: number): string {
  const mark: LogoutMark = { v: RECORD_VERSION, kind: 'logout-sub', iat }
  return JSON.stringify(mark)
}

/** The `iat` of a logout mark, or `undefined` when the data is not one. */
export function decodeLogoutMark(data: string): number | undefined {
  const m = parseVersioned(data)
  return m !== undefined && m.kind === 'logout-sub' && isFiniteNumber(m.iat) ? m.iat : undefined
}

/** Whether a session created at `createdAt` (ms) is ended by a logout mark issued at `iat` (s). */
export function endedByMark(createdAt: number, iat: number): boolean {
  // The provider's iat has whole seconds: a session created within that second counts as before.
  return Math.floor(createdAt / 1000) <= iat
}

/**
 * Stores a session until `expiresAt` (ms since the epoch); one already past it is not written.
 * For every login source: the store's TTL is always the rest of the record's own lifetime.
 */
export async function storeUntil(
  store: SessionStore,
  sessionId: string,
  entry: StoredSession,
  expiresAt: number,
  now: number,
): Promise<void> {
  const ttl = Math.ceil((expiresAt - now) / 1000)
  if (ttl <= 0) return
  await store.set(sessionId, entry, ttl)
}

/** Writes a record for the rest of its lifetime; a record already past it is not written. */
export async function writeRecord(
  store: SessionStore,
  sessionId: string,
  record: SessionRecord,
  now: number,
): Promise<void> {
  await storeUntil(
    store,
    sessionId,
    { subject: record.sub, sid: record.sid, data: encodeRecord(record) },
    record.expiresAt,
    now,
  )
}
