/**
 * A SAML session as kept in the store: who signed in (already mapped to the identity's fields),
 * what logout needs (NameID and SessionIndex) and the lifetimes. Its own `kind`, so an OIDC
 * session reader never takes it for one of its records, nor this one for theirs.
 */
import type { SessionStore } from '@ssokit/core'
import { parseVersioned, storeUntil } from '@ssokit/core/session-kit'

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
  const r = parseVersioned(data, SAML_RECORD_VERSION)
  if (r === undefined) return undefined
  const attributes = r.attributes
  if (
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
  await storeUntil(
    store,
    sessionId,
    {
      subject: record.sub,
      sid: record.sessionIndex === undefined ? undefined : sessionIndexKey(record.sessionIndex),
      data: JSON.stringify(record),
    },
    record.expiresAt,
    now,
  )
}
