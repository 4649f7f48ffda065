/**
 * The identity headers of one request. Values are short, single-line printable ASCII: a value
 * with a control character is dropped (it could split the header), other characters beyond
 * ASCII are percent-encoded as UTF-8, and every value has a length cap, so an upstream with a
 * small header buffer (uWSGI's 4 KiB) still takes the request of a user with hundreds of groups.
 */
import type { Identity } from '@ssokit/core'
import type { HeaderPreset, IdentityField } from './headers.js'

/** Characters of a scalar value; above it the value is left out. */
export const MAX_VALUE_CHARS = 256
/** Characters of the groups header; entries past it are left out, whole. */
export const MAX_GROUPS_CHARS = 1024

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/
const NON_ASCII = /[^\u0020-\u007e]/

/** The header form of one value, or `undefined` when it must not be sent. */
export function headerValue(value: string, maxChars = MAX_VALUE_CHARS): string | undefined {
  if (value === '' || CONTROL.test(value)) return undefined
  const safe = NON_ASCII.test(value)
    ? value.replace(/[^\u0020-\u007e]+/g, (run) => encodeURIComponent(run))
    : value
  return safe.length > maxChars ? undefined : safe
}

/**
 * Group entries joined by `separator`, each sent only if it could not be read as two entries
 * (no separator, no comma) and only while the total stays under the cap.
 */
export function groupsValue(
  groups: Iterable<string>,
  separator: string,
  maxChars = MAX_GROUPS_CHARS,
): string | undefined {
  let out = ''
  for (const group of [...groups].sort()) {
    if (group.includes(separator) || group.includes(',')) continue
    const value = headerValue(group)
    if (value === undefined) continue
    const next = out === '' ? value : `${out}${separator}${value}`
    if (next.length > maxChars) break
    out = next
  }
  return out === '' ? undefined : out
}

function fieldValue(
  identity: Identity,
  field: Exclude<IdentityField, 'groups'>,
): string | undefined {
  switch (field) {
    case 'user':
      return identity.subject
    case 'username':
      return identity.username
    case 'email':
      return identity.email
    case 'name':
      return identity.name
  }
}

/** A SAML identity's attributes by id (`identity.claims.attributes`), when it has them. */
function attributesOf(identity: Identity): Readonly<Record<string, unknown>> | undefined {
  const attributes = identity.claims.attributes
  return typeof attributes === 'object' && attributes !== null
    ? (attributes as Readonly<Record<string, unknown>>)
    : undefined
}

/** mod_shib's form of a multi-valued attribute: values joined by `;`, a `;` in one escaped. */
export function shibbolethValue(values: unknown): string | undefined {
  if (!Array.isArray(values)) return undefined
  const parts = values.filter((v): v is string => typeof v === 'string' && v !== '')
  if (parts.length === 0) return undefined
  return headerValue(parts.map((v) => v.replaceAll(';', '\\;')).join(';'), MAX_GROUPS_CHARS)
}

function attributeHeaders(identity: Identity, ids: readonly string[]): [string, string][] {
  const out: [string, string][] = []
  const attributes = attributesOf(identity)
  for (const id of ids) {
    const value =
      attributes !== undefined && Object.hasOwn(attributes, id)
        ? shibbolethValue(attributes[id])
        : undefined
    if (value !== undefined) out.push([id.toLowerCase(), value])
  }
  const { iss, session_index: sessionIndex } = identity.claims
  if (typeof iss === 'string') {
    const value = headerValue(iss)
    if (value !== undefined) out.push(['shib-identity-provider', value])
  }
  if (typeof sessionIndex === 'string') {
    const value = headerValue(sessionIndex)
    if (value !== undefined) out.push(['shib-session-index', value])
  }
  return out
}

/** `[name, value]` for every configured identity header this identity has a value for. */
export function identityHeaders(identity: Identity, preset: HeaderPreset): [string, string][] {
  const out: [string, string][] = []
  for (const [field, name] of Object.entries(preset.names) as [IdentityField, string][]) {
    const value =
      field === 'groups'
        ? groupsValue(identity.roles, preset.separator)
        : (() => {
            const raw = fieldValue(identity, field)
            return raw === undefined ? undefined : headerValue(raw)
          })()
    if (value !== undefined) out.push([name.toLowerCase(), value])
  }
  if (preset.attributes !== undefined) out.push(...attributeHeaders(identity, preset.attributes))
  return out
}
