/**
 * A SAML session as kept in the store: who signed in (already mapped to the identity's fields),
 * what logout needs (NameID and SessionIndex) and the lifetimes. Its own `kind`, so an OIDC
 * session reader never takes it for one of its records, nor this one for theirs.
 */
import type { SessionStore } from '@ssokit/core'

export const SAML_RECORD_VERSION = 1

export interface SamlSessionRecord {
  readonly v: typeof SAML_RECORD_VERSION
  readonly kind: 'saml'
  readonly issuer: string
  readonly sub: string
  readonly nameId: string
  readonly nameIdFormat: string | undefined
  readonly nameQualifier: string | undefined
  readonly spNameQualifier: string | undefined
  readonly sessionIndex: string | undefined
  readonly username: string
  readonly email: string | undefined
  readonly name: string | undefined
  readonly roles: readonly string[]
  readonly attributes: Readonly<Record<string, readonly string[]>>
  readonly createdAt: number
  readonly expiresAt: number
  readonly lastSeenAt: number
}

/** The store's `sid` index for a SAML session: the IdP's SessionIndex, apart from OIDC sids. */
export function sessionIndexKey(sessionIndex: string): string {
  return `saml:${sessionIndex}`
}

const optionalString = (v: unknown): boolean => v === undefined || typeof v === 'string'
const stringList = (v: unknown): boolean =>
  Array.isArray(v) && v.every((s) => typeof s === 'string')

export function decodeSamlRecord(data: string): SamlSessionRecord | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    return undefined
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined
  const r = parsed as Record<string, unknown>
  const attributes = r.attributes
  if (
    r.v !== SAML_RECORD_VERSION ||
    r.kind !== 'saml' ||
    typeof r.issuer !== 'string' ||
    typeof r.sub !== 'string' ||
    typeof r.nameId !== 'string' ||
    !optionalString(r.nameIdFormat) ||
    !optionalString(r.nameQualifier) ||
    !optionalString(r.spNameQualifier) ||
    !optionalString(r.sessionIndex) ||
    typeof r.username !== 'string' ||
    !optionalString(r.email) ||
    !optionalString(r.name) ||
    !stringList(r.roles) ||
    typeof attributes !== 'object' ||
    attributes === null ||
    !Object.values(attributes).every(stringList) ||
    typeof r.createdAt !== 'number' ||
    typeof r.expiresAt !== 'number' ||
    typeof r.lastSeenAt !== 'number'
  )
    return undefined
  return r as unknown as SamlSessionRecord
}

export async function writeSamlRecord(
  store: SessionStore,
  sessionId: string,
  record: SamlSessionRecord,
  now: number,
): Promise<void> {
  const ttl = Math.ceil((record.expiresAt - now) / 1000)
  if (ttl <= 0) return
  await store.set(
    sessionId,
    {
      subject: record.sub,
      sid: record.sessionIndex === undefined ? undefined : sessionIndexKey(record.sessionIndex),
      data: JSON.stringify(record),
    },
    ttl,
  )
}
