/**
 * What went wrong with the provider, in words an operator can act on: the failures of
 * discovery and of the token endpoint, classified from oauth4webapi's errors.
 */
import * as oauth from 'oauth4webapi'

import { issuerMismatchMessage, networkCause } from '../verify/jwks.js'
import { loggable, loggableUrl } from '../verify/events.js'

export interface ProviderProblem {
  /** `discovery_unreachable`, `discovery_http_404`, `discovery_issuer_mismatch`, ... */
  readonly reason: string
  readonly message: string
  readonly url: string
  /** `error` for a configuration mistake that will not heal by itself; `warn` for an outage. */
  readonly level: 'warn' | 'error'
}

/** Where oauth4webapi looks for the discovery document of an issuer (OIDC Discovery §4). */
export function discoveryUrl(issuer: string): string {
  const url = new URL(issuer)
  url.pathname = `${url.pathname}/.well-known/openid-configuration`.replace('//', '/')
  return url.href
}

function responseOf(error: unknown): Response | undefined {
  const cause: unknown = error instanceof Error ? error.cause : undefined
  return cause instanceof Response ? cause : undefined
}

function isIssuerMismatch(error: unknown): error is Error & { readonly discovered: string } {
  return (
    error instanceof Error &&
    error.name === 'IssuerMismatchError' &&
    typeof (error as { discovered?: unknown }).discovered === 'string'
  )
}

/** Why discovery failed. */
export function discoveryProblem(error: unknown, issuer: string): ProviderProblem {
  const url = discoveryUrl(issuer)
  const shown = loggableUrl(url)
  const label = `The discovery document ${shown}`
  if (isIssuerMismatch(error)) {
    return {
      reason: 'discovery_issuer_mismatch',
      message: issuerMismatchMessage(url, error.discovered, issuer),
      url: shown,
      level: 'error',
    }
  }
  if (error instanceof oauth.OperationProcessingError) {
    const response = responseOf(error)
    if (response !== undefined && response.status !== 200) {
      const hint =
        response.status === 404
          ? ': is the issuer right (the realm name, the /auth prefix of older Keycloak)?'
          : ''
      return {
        reason: `discovery_http_${response.status}`,
        message: `${label} answered HTTP ${response.status}${hint}`,
        url: shown,
        level: response.status >= 500 ? 'warn' : 'error',
      }
    }
    if (error.code === oauth.JSON_ATTRIBUTE_COMPARISON) {
      const body = (error.cause as { body?: { issuer?: unknown } } | undefined)?.body
      return {
        reason: 'discovery_issuer_mismatch',
        message: issuerMismatchMessage(url, body?.issuer, issuer),
        url: shown,
        level: 'error',
      }
    }
    return {
      reason: 'discovery_malformed',
      message: `${label} cannot be used: ${loggable(error.message, 200) ?? 'it is malformed'}.`,
      url: shown,
      level: 'error',
    }
  }
  return {
    reason: 'discovery_unreachable',
    message: `${label} cannot be fetched (${networkCause(error)}): is the provider reachable from here?`,
    url: shown,
    level: 'warn',
  }
}

/** An OAuth error answer of the token endpoint (RFC 6749 §5.2). */
export interface TokenEndpointError {
  /** `invalid_client`, `invalid_grant`, ... (only the RFC 6749 character set, shortened). */
  readonly error: string
  readonly description: string | undefined
  readonly status: number
}

function oauthErrorCode(value: unknown): string | undefined {
  return typeof value === 'string' && /^[\x20-\x21\x23-\x5b\x5d-\x7e]{1,64}$/.test(value)
    ? value
    : undefined
}

/**
 * The provider's error answer inside an oauth4webapi failure: a JSON error body, or a
 * `WWW-Authenticate` challenge with an `error` parameter (a failed client authentication).
 */
export function tokenEndpointError(error: unknown): TokenEndpointError | undefined {
  if (error instanceof oauth.ResponseBodyError) {
    const code = oauthErrorCode(error.error)
    if (code === undefined) return undefined
    return {
      error: code,
      description:
        typeof error.error_description === 'string' ? error.error_description : undefined,
      status: error.status,
    }
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    for (const challenge of error.cause) {
      const code = oauthErrorCode(challenge.parameters.error)
      if (code === undefined) continue
      return {
        error: code,
        description: challenge.parameters.error_description,
        status: error.status,
      }
    }
  }
  return undefined
}

/**
 * The provider's own words, fit for a page and a log line: control characters stripped,
 * shortened, and any secret this application sent replaced (a provider may echo a request).
 */
export function providerText(
  text: string | undefined,
  secrets: readonly string[],
): string | undefined {
  if (text === undefined) return undefined
  let clean = text
  for (const secret of secrets) if (secret.length >= 4) clean = clean.split(secret).join('***')
  return loggable(clean, 200)
}
