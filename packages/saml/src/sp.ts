/**
 * The SAML protocol steps, through `@node-saml/node-saml` (which checks XML signatures with
 * xml-crypto): the AuthnRequest and logout messages on the HTTP-Redirect binding, the Response
 * at the ACS. One library instance per message, so each one sees only the request ids of the
 * browser that sent it: a response to another browser's AuthnRequest is refused (login CSRF).
 */
import { SAML, ValidateInResponseTo, type CacheProvider, type Profile } from '@node-saml/node-saml'
import type { IdpMetadata } from './idp-metadata.js'
import type { ResolvedSamlConfig } from './options.js'

/** The AuthnRequest ids this browser's transaction cookies name, as the library's cache. */
export class BrowserRequests implements CacheProvider {
  /** Request id -> when it was sent (ms), which the library reads as the entry's value. */
  readonly #ids: ReadonlyMap<string, number>
  /** The id a response was found to answer. */
  matched: string | undefined

  constructor(ids: Iterable<readonly [id: string, sentAt: number]>) {
    this.#ids = new Map(ids)
  }

  saveAsync(key: string, value: string): Promise<{ value: string; createdAt: number }> {
    return Promise.resolve({ value, createdAt: Date.now() })
  }

  getAsync(key: string): Promise<string | null> {
    const sentAt = this.#ids.get(key)
    if (sentAt === undefined) return Promise.resolve(null)
    this.matched = key
    return Promise.resolve(new Date(sentAt).toISOString())
  }

  removeAsync(key: string | null): Promise<string | null> {
    return Promise.resolve(key)
  }
}

function library(
  config: ResolvedSamlConfig,
  idp: IdpMetadata,
  cache: CacheProvider,
  options: { readonly id?: string; readonly inResponseTo?: ValidateInResponseTo } = {},
): SAML {
  const signing =
    config.privateKey === undefined
      ? {}
      : {
          privateKey: config.privateKey,
          decryptionPvk: config.privateKey,
          ...(config.certificate === undefined ? {} : { publicCert: config.certificate }),
        }
  const id = options.id
  return new SAML({
    issuer: config.entityId,
    callbackUrl: config.acsUrl,
    entryPoint: idp.ssoUrl,
    logoutUrl: idp.sloUrl ?? idp.ssoUrl,
    logoutCallbackUrl: config.sloUrl,
    idpCert: [...idp.signingCerts],
    idpIssuer: idp.entityId,
    audience: config.entityId,
    wantAssertionsSigned: true,
    wantAuthnResponseSigned: config.requireSignedResponse,
    signatureAlgorithm: 'sha256',
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
    identifierFormat: config.nameIdFormat ?? null,
    disableRequestedAuthnContext: true,
    acceptedClockSkewMs: config.clockSkewMs,
    validateInResponseTo: options.inResponseTo ?? ValidateInResponseTo.never,
    cacheProvider: cache,
    ...(id === undefined ? {} : { generateUniqueId: () => id }),
    ...signing,
  })
}

/** The IdP's SSO URL with a (signed, when the SP has a key) AuthnRequest whose ID is `requestId`. */
export function authnRequestUrl(
  config: ResolvedSamlConfig,
  idp: IdpMetadata,
  requestId: string,
): Promise<string> {
  return library(config, idp, new BrowserRequests([]), { id: requestId }).getAuthorizeUrlAsync(
    '',
    undefined,
    {},
  )
}

/**
 * Checks a posted Response: signatures against the IdP metadata's certificates, issuer,
 * audience, time conditions, and `InResponseTo` against this browser's requests (required
 * unless unsolicited responses are allowed). Resolves to the profile, or rejects.
 */
export async function validateResponse(
  config: ResolvedSamlConfig,
  idp: IdpMetadata,
  samlResponse: string,
  requests: BrowserRequests,
): Promise<Profile | null> {
  const inResponseTo = config.allowUnsolicited
    ? ValidateInResponseTo.ifPresent
    : ValidateInResponseTo.always
  const { profile } = await library(config, idp, requests, {
    inResponseTo,
  }).validatePostResponseAsync({ SAMLResponse: samlResponse })
  return profile
}

export interface LogoutSubject {
  readonly nameId: string
  readonly nameIdFormat: string | undefined
  readonly nameQualifier: string | undefined
  readonly spNameQualifier: string | undefined
  readonly sessionIndex: string | undefined
}

/** The IdP's SLO URL with a LogoutRequest for this session. */
export function logoutRequestUrl(
  config: ResolvedSamlConfig,
  idp: IdpMetadata,
  subject: LogoutSubject,
): Promise<string> {
  const profile: Profile = {
    issuer: idp.entityId,
    nameID: subject.nameId,
    nameIDFormat: subject.nameIdFormat ?? 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
    ...(subject.nameQualifier === undefined ? {} : { nameQualifier: subject.nameQualifier }),
    ...(subject.spNameQualifier === undefined ? {} : { spNameQualifier: subject.spNameQualifier }),
    ...(subject.sessionIndex === undefined ? {} : { sessionIndex: subject.sessionIndex }),
  }
  return library(config, idp, new BrowserRequests([])).getLogoutUrlAsync(profile, '', {})
}

/** Checks a LogoutRequest or LogoutResponse on the HTTP-Redirect binding (signature, issuer, times). */
export async function validateRedirect(
  config: ResolvedSamlConfig,
  idp: IdpMetadata,
  query: Record<string, string>,
  rawQuery: string,
): Promise<{ readonly profile: Profile | null; readonly loggedOut: boolean }> {
  return library(config, idp, new BrowserRequests([])).validateRedirectAsync(query, rawQuery)
}

/** Checks a LogoutRequest on the HTTP-POST binding (XML signature required). */
export async function validatePostedLogoutRequest(
  config: ResolvedSamlConfig,
  idp: IdpMetadata,
  samlRequest: string,
): Promise<{ readonly profile: Profile | null; readonly loggedOut: boolean }> {
  return library(config, idp, new BrowserRequests([])).validatePostRequestAsync({
    SAMLRequest: samlRequest,
  })
}

/** The IdP's SLO URL with a LogoutResponse to `request`. */
export function logoutResponseUrl(
  config: ResolvedSamlConfig,
  idp: IdpMetadata,
  request: Profile,
  relayState: string,
  success: boolean,
): Promise<string> {
  return library(config, idp, new BrowserRequests([])).getLogoutResponseUrlAsync(
    request,
    relayState,
    {},
    success,
  )
}
