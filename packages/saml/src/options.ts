/**
 * Options of `createSamlAuth`: checked, copied and frozen once. The session part (origin,
 * secrets, store, prefix, lifetimes, cookies, pages) is the same frame `createSessionAuth`
 * resolves, so both protocols make the same cookies.
 */
import { SsoTypeError, type SessionPageOptions, type SessionStore } from '@ssokit/core'
import { resolveSessionFrame, type SessionFrame } from '@ssokit/core/session-kit'
import { defaultEventHandler, type SamlEventHandler } from './events.js'
import type { IdpMetadataSource } from './idp-metadata.js'
import { pemCertificates } from './metadata-signature.js'

const CALLER = 'createSamlAuth'

/** Which attributes fill the identity; each name may be an OID, a Name, a FriendlyName or an attribute-map id. */
export interface SamlAttributeOptions {
  /** The attribute that is `identity.subject`. Default: the NameID. */
  readonly subject?: string
  /** Default `eppn`, `uid`, `mail`, then the subject. */
  readonly username?: string | readonly string[]
  /** Default `mail`, `email`. */
  readonly email?: string | readonly string[]
  /** Default `displayName`, `cn`. */
  readonly name?: string | readonly string[]
  /** Default `isMemberOf`, `memberOf`, `groups`, `Role` and the ADFS role claim. */
  readonly roles?: string | readonly string[]
}

export interface SamlExpertOptions {
  /** The fetch for IdP metadata. Default: the global `fetch`. */
  readonly fetch?: typeof fetch
  /** The clock for sessions and the IdP metadata refresh, in ms since the epoch. */
  readonly now?: () => number
}

export interface SamlAuthOptions {
  /** The application's external origin, e.g. `https://app.example.org`. */
  readonly publicUrl: string
  /** At least 32 characters; the first signs the session cookie, all of them check it (rotation). */
  readonly secret: string | readonly string[]
  /** The SP's entity id, e.g. `https://app.example.org/shibboleth`. */
  readonly entityId: string
  /** The identity provider's metadata: a file, a URL (both refreshed) or the XML itself. */
  readonly idp: IdpMetadataSource
  /** PEM certificate of the SP (in the SP metadata, for signing and encryption). */
  readonly certificate?: string
  /** PEM private key of that certificate: signs AuthnRequests and logout messages, decrypts assertions. */
  readonly privateKey?: string
  /** Require the whole Response to be signed too. Default `false` (the assertion is always required signed). */
  readonly requireSignedResponse?: boolean
  /** Accept IdP-initiated (unsolicited) responses. Default `false`. */
  readonly allowUnsolicited?: boolean
  /** The NameID format to ask for. Default: none (the IdP chooses). */
  readonly nameIdFormat?: string
  readonly attributes?: SamlAttributeOptions
  /** Where sessions live, and the assertion replay cache. Default: in memory (one process). */
  readonly store?: SessionStore
  /** Path prefix of the routes. Default `/auth`. */
  readonly prefix?: string
  /** Absolute session lifetime in seconds, shortened by the IdP's SessionNotOnOrAfter. Default 28 800. */
  readonly sessionLifetime?: number
  readonly idleTimeout?: number
  /** Bytes of a posted SAML message read at most; a bigger one is answered 413. Default 262 144. */
  readonly maxBodySize?: number
  /**
   * Sign-ins one browser may be sent to, within two minutes, by the application refusing the
   * session the previous one created, before a loop is declared (`429 login_loop`). Default 5.
   */
  readonly maxLoginAttempts?: number
  /** Clock skew accepted on NotBefore/NotOnOrAfter, in seconds. Default 60. */
  readonly clockSkew?: number
  /** Where the browser lands after logout. Default `/`. */
  readonly postLogoutRedirectPath?: string
  /** The realm in `WWW-Authenticate`. Default: the entity id. */
  readonly realm?: string
  readonly cookies?: { readonly insecureHttpForLocalhost?: boolean }
  readonly pages?: SessionPageOptions
  /** Receives refused sign-ins and logouts (with a reason code) and metadata problems. Default: stderr. */
  readonly onEvent?: SamlEventHandler
  readonly expert?: SamlExpertOptions
}

export interface ResolvedSamlConfig extends SessionFrame {
  readonly entityId: string
  readonly idp: IdpMetadataSource
  readonly certificate: string | undefined
  readonly privateKey: string | undefined
  readonly requireSignedResponse: boolean
  readonly allowUnsolicited: boolean
  readonly nameIdFormat: string | undefined
  readonly subjectAttribute: string | undefined
  readonly usernameAttributes: readonly string[]
  readonly emailAttributes: readonly string[]
  readonly nameAttributes: readonly string[]
  readonly roleAttributes: readonly string[]
  readonly clockSkewMs: number
  readonly postLogoutRedirectUri: string
  readonly realm: string
  readonly acsUrl: string
  readonly sloUrl: string
  readonly metadataUrl: string
  readonly onEvent: SamlEventHandler
  readonly fetch: typeof fetch
  readonly now: () => number
}

function fail(message: string, code?: SsoTypeError['code']): never {
  throw new SsoTypeError(`${CALLER}: ${message}`, code)
}

function names(value: unknown, option: string, fallback: readonly string[]): readonly string[] {
  if (value === undefined) return fallback
  const list: unknown[] | undefined =
    typeof value === 'string'
      ? [value]
      : Array.isArray(value)
        ? [...(value as readonly unknown[])]
        : undefined
  if (
    list === undefined ||
    list.length === 0 ||
    !list.every((n) => typeof n === 'string' && n !== '')
  )
    fail(`attributes.${option} must be an attribute name or a list of them`, 'ERR_INVALID_ARG_TYPE')
  return Object.freeze(list as string[])
}

function pemOption(value: unknown, option: string, label: RegExp): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !label.test(value))
    fail(`${option} must be PEM text (-----BEGIN ...-----)`, 'ERR_INVALID_ARG_VALUE')
  return value
}

export function resolveSamlOptions(options: SamlAuthOptions): ResolvedSamlConfig {
  if (typeof options !== 'object' || (options as unknown) === null)
    fail('options must be an object', 'ERR_INVALID_ARG_TYPE')
  const frame = resolveSessionFrame(
    { ...options, maxBodySize: options.maxBodySize ?? 256 * 1024 },
    CALLER,
  )
  if (typeof options.entityId !== 'string' || options.entityId === '')
    fail('option entityId is required (the SP entity id, a URI)', 'ERR_MISSING_OPTION')
  const idp = options.idp as IdpMetadataSource | null | undefined
  if (typeof idp !== 'object' || idp === null)
    fail('option idp is required ({ file }, { url } or { xml })', 'ERR_MISSING_OPTION')
  const sources = [idp.file, idp.url, idp.xml].filter((s) => s !== undefined)
  if (sources.length !== 1 || !sources.every((s) => typeof s === 'string' && s !== ''))
    fail('idp must have exactly one of file, url or xml', 'ERR_INVALID_ARG_VALUE')
  if (idp.url !== undefined) {
    let url: URL
    try {
      url = new URL(idp.url)
    } catch {
      return fail('idp.url must be an absolute URL')
    }
    const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback))
      fail('idp.url must use https (http is allowed only on localhost)')
  }
  if (
    idp.metadataCert !== undefined &&
    (typeof idp.metadataCert !== 'string' || pemCertificates(idp.metadataCert).length === 0)
  )
    fail(
      'idp.metadataCert must be PEM text of one or more certificates (-----BEGIN CERTIFICATE-----)',
      'ERR_INVALID_ARG_VALUE',
    )
  const refresh = idp.refreshSeconds ?? 3600
  if (!Number.isSafeInteger(refresh) || refresh < 1)
    fail('idp.refreshSeconds must be a positive whole number of seconds')
  const certificate = pemOption(options.certificate, 'certificate', /-----BEGIN CERTIFICATE-----/)
  const privateKey = pemOption(
    options.privateKey,
    'privateKey',
    /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
  )
  if ((certificate === undefined) !== (privateKey === undefined))
    fail('certificate and privateKey go together', 'ERR_INVALID_ARG_VALUE')
  for (const flag of ['requireSignedResponse', 'allowUnsolicited'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean')
      fail(`${flag} must be a boolean`, 'ERR_INVALID_ARG_TYPE')
  }
  const attributes = options.attributes ?? {}
  if (
    attributes.subject !== undefined &&
    (typeof attributes.subject !== 'string' || attributes.subject === '')
  )
    fail('attributes.subject must be an attribute name', 'ERR_INVALID_ARG_TYPE')
  const skew = options.clockSkew ?? 60
  if (!Number.isSafeInteger(skew) || skew < 0 || skew > 600)
    fail('clockSkew must be a whole number of seconds from 0 to 600')
  const postLogoutPath = options.postLogoutRedirectPath ?? '/'
  if (
    typeof postLogoutPath !== 'string' ||
    !postLogoutPath.startsWith('/') ||
    postLogoutPath.startsWith('//') ||
    /[\s\\]/.test(postLogoutPath)
  )
    fail('postLogoutRedirectPath must be a path on this application, such as /')
  const realm = options.realm ?? options.entityId
  // eslint-disable-next-line no-control-regex
  if (typeof realm !== 'string' || /["\\\x00-\x1f]/.test(realm))
    fail('realm must be a plain string')
  if (options.onEvent !== undefined && typeof options.onEvent !== 'function')
    fail('onEvent must be a function', 'ERR_INVALID_ARG_TYPE')
  const expert = options.expert ?? {}
  const base = `${frame.publicUrl}${frame.prefix}`
  return Object.freeze({
    ...frame,
    entityId: options.entityId,
    idp: Object.freeze({ ...idp, refreshSeconds: refresh }),
    certificate,
    privateKey,
    requireSignedResponse: options.requireSignedResponse ?? false,
    allowUnsolicited: options.allowUnsolicited ?? false,
    nameIdFormat: options.nameIdFormat,
    subjectAttribute: attributes.subject,
    usernameAttributes: names(attributes.username, 'username', ['eppn', 'uid', 'mail']),
    emailAttributes: names(attributes.email, 'email', ['mail', 'email']),
    nameAttributes: names(attributes.name, 'name', ['displayName', 'cn']),
    roleAttributes: names(attributes.roles, 'roles', [
      'isMemberOf',
      'memberOf',
      'groups',
      'Role',
      'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
    ]),
    clockSkewMs: skew * 1000,
    postLogoutRedirectUri: `${frame.publicUrl}${postLogoutPath}`,
    realm,
    acsUrl: `${base}/saml/acs`,
    sloUrl: `${base}/saml/slo`,
    metadataUrl: `${base}/saml/metadata`,
    onEvent: options.onEvent ?? defaultEventHandler,
    fetch: expert.fetch ?? fetch,
    now: expert.now ?? Date.now,
  })
}
