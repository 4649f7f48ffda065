/**
 * The headers a request carries upstream. Everything a client could use to pass itself off as
 * someone (identity headers of every known proxy, under any spelling a CGI/WSGI server would
 * fold to the same variable), every hop-by-hop header and the proxy's own cookies are removed
 * first, on every path; only then are the proxy's own values added.
 */
import type { IncomingHttpHeaders } from 'node:http'

/** Which identity field a header carries. */
export type IdentityField = 'user' | 'email' | 'username' | 'name' | 'groups'

export interface HeaderPreset {
  readonly names: Readonly<Partial<Record<IdentityField, string>>>
  /** Between the entries of `groups`; an entry containing it is left out. */
  readonly separator: string
  /**
   * SAML attributes sent as mod_shib's `ShibUseHeaders On` sends them: one header per
   * attribute-map id, values joined by `;` (a `;` inside a value escaped as `\;`), together
   * with `Shib-Identity-Provider` and `Shib-Session-Index`.
   */
  readonly attributes?: readonly string[]
}

/** The attribute-map ids of Shibboleth's default attribute-map.xml, sent by the `shibboleth` preset. */
export const SHIBBOLETH_ATTRIBUTES: readonly string[] = Object.freeze([
  'eppn',
  'affiliation',
  'unscoped-affiliation',
  'entitlement',
  'persistent-id',
  'subject-id',
  'pairwise-id',
  'eduPersonUniqueId',
  'uid',
  'mail',
  'displayName',
  'cn',
  'sn',
  'givenName',
  'isMemberOf',
  'o',
  'ou',
  'schacHomeOrganization',
])

/** What mod_shib adds about the session besides the attributes. */
export const SHIBBOLETH_SESSION_HEADERS: readonly string[] = Object.freeze([
  'Shib-Identity-Provider',
  'Shib-Session-Index',
])

/** Every header name a preset's attributes may set: each one is stripped from requests first. */
export function attributeHeaderNames(attributes: readonly string[] | undefined): string[] {
  return attributes === undefined ? [] : [...attributes, ...SHIBBOLETH_SESSION_HEADERS]
}

export const HEADER_PRESETS = Object.freeze({
  'oauth2-proxy': Object.freeze({
    names: Object.freeze({
      user: 'X-Forwarded-User',
      email: 'X-Forwarded-Email',
      username: 'X-Forwarded-Preferred-Username',
      groups: 'X-Forwarded-Groups',
    }),
    separator: ',',
  }),
  // CERN's Shibboleth/ADFS attribute names; legacy apps read them as HTTP_ADFS_*.
  'shibboleth-adfs': Object.freeze({
    names: Object.freeze({
      username: 'ADFS-LOGIN',
      email: 'ADFS-EMAIL',
      name: 'ADFS-FULLNAME',
      groups: 'ADFS-GROUP',
    }),
    separator: ';',
  }),
  // For applications written for mod_shib: the user as REMOTE_USER (HTTP_REMOTE_USER in CGI and
  // WSGI, since a proxy can only send headers) and every attribute under its attribute-map id.
  shibboleth: Object.freeze({
    names: Object.freeze({ username: 'Remote-User' }),
    separator: ';',
    attributes: SHIBBOLETH_ATTRIBUTES,
  }),
  none: Object.freeze({ names: Object.freeze({}), separator: ',' }),
}) satisfies Readonly<Record<string, HeaderPreset>>

export type HeaderPresetName = keyof typeof HEADER_PRESETS

/** How CGI, WSGI and PHP see a header name: case and `_`/`-` do not matter. */
export function foldName(name: string): string {
  return name.toLowerCase().replaceAll('_', '-')
}

/** Names (folded) removed from every request, whatever the configuration. */
const ALWAYS_STRIPPED = [
  'x-forwarded-user',
  'x-forwarded-email',
  'x-forwarded-groups',
  'x-forwarded-preferred-username',
  'x-forwarded-access-token',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-forwarded-uri',
  'x-forwarded-method',
  'x-forwarded-server',
  'x-real-ip',
  'forwarded',
  'x-original-uri',
  'x-original-url',
  'x-original-method',
  'x-rewrite-url',
  'remote-user',
  'x-remote-user',
  'authorization',
  'proxy-authorization',
]
/** Name prefixes (folded) of identity headers of well-known proxies and of this one. */
const STRIPPED_PREFIXES = [
  'x-auth-request-',
  'adfs-',
  'oidc-claim-',
  'oidc-access-token',
  'shib-',
  'x-pomerium-',
  'x-vouch-',
  'x-ssokit-',
]
/** Hop-by-hop headers (RFC 9110 §7.6.1), and those Node or undici manage themselves. */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'expect',
]

export interface HeaderPolicy {
  /** Folded names never passed upstream. */
  readonly stripped: ReadonlySet<string>
  readonly prefixes: readonly string[]
  /** Cookie name prefixes of the proxy's own cookies. */
  readonly cookiePrefixes: readonly string[]
}

export function headerPolicy(
  injected: readonly string[],
  cookiePrefixes: readonly string[],
): HeaderPolicy {
  return {
    stripped: new Set([...ALWAYS_STRIPPED, ...HOP_BY_HOP, ...injected.map(foldName)]),
    prefixes: STRIPPED_PREFIXES,
    cookiePrefixes,
  }
}

function isStripped(policy: HeaderPolicy, folded: string, nominated: ReadonlySet<string>): boolean {
  return (
    policy.stripped.has(folded) ||
    nominated.has(folded) ||
    policy.prefixes.some((prefix) => folded.startsWith(prefix))
  )
}

/** The `Cookie` header without the proxy's own cookies, or `undefined` when none is left. */
export function withoutOwnCookies(
  values: readonly string[],
  prefixes: readonly string[],
): string | undefined {
  const kept: string[] = []
  for (const value of values) {
    for (const pair of value.split(';')) {
      const trimmed = pair.trim()
      if (trimmed === '') continue
      const name = trimmed.slice(0, Math.max(0, trimmed.indexOf('='))).trim()
      if (prefixes.some((prefix) => name.startsWith(prefix))) continue
      kept.push(trimmed)
    }
  }
  return kept.length === 0 ? undefined : kept.join('; ')
}

/**
 * The client's headers that may go upstream, from `rawHeaders` (every occurrence, original
 * spelling). Names listed in `Connection` are hop-by-hop too: they are dropped, never used to
 * drop a header the proxy sets.
 */
export function forwardableHeaders(
  rawHeaders: readonly string[],
  policy: HeaderPolicy,
): [string, string][] {
  const nominated = new Set<string>()
  const cookies: string[] = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (foldName(rawHeaders[i] ?? '') !== 'connection') continue
    for (const token of (rawHeaders[i + 1] ?? '').split(',')) {
      const name = token.trim()
      if (name !== '') nominated.add(foldName(name))
    }
  }
  const out: [string, string][] = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] ?? ''
    const value = rawHeaders[i + 1] ?? ''
    const folded = foldName(name)
    if (folded === 'cookie') {
      cookies.push(value)
      continue
    }
    if (isStripped(policy, folded, nominated)) continue
    out.push([name.toLowerCase(), value])
  }
  const cookie = withoutOwnCookies(cookies, policy.cookiePrefixes)
  if (cookie !== undefined) out.push(['cookie', cookie])
  return out
}

/** Types a request header may have when merged into the object undici sends. */
export type OutgoingHeaders = Record<string, string | string[]>

export function toOutgoing(pairs: readonly (readonly [string, string])[]): OutgoingHeaders {
  const out: OutgoingHeaders = {}
  for (const [name, value] of pairs) {
    const existing = out[name]
    if (existing === undefined) out[name] = value
    else if (Array.isArray(existing)) existing.push(value)
    else out[name] = [existing, value]
  }
  return out
}

/** Response headers that never go back to the client as they came (hop-by-hop). */
const RESPONSE_HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'te',
])

export function responseHeaders(
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>,
): [string, string | string[]][] {
  const connection = headers.connection
  const nominated = new Set(
    (Array.isArray(connection) ? connection.join(',') : (connection ?? ''))
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== ''),
  )
  const out: [string, string | string[]][] = []
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue
    const lower = name.toLowerCase()
    if (RESPONSE_HOP_BY_HOP.has(lower) || nominated.has(lower)) continue
    out.push([lower, value])
  }
  return out
}
