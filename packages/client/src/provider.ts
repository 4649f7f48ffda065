/**
 * One provider as this client talks to it: the discovery document (fetched once, issuer checked
 * exactly), the client's authentication at the token endpoint, and the oauth4webapi options
 * every request shares.
 */
import { SsoError } from '@ssokit/core/errors'
import * as oauth from 'oauth4webapi'

import { translateProtocolError } from './protocol-errors.js'
import { checkEndpoint, isLoopback, limitedFetch } from './http.js'

export type ClientSecretMethod = 'client_secret_basic' | 'client_secret_post'

export interface ProviderSettings {
  readonly issuer: URL
  readonly clientId: string
  readonly clientSecret: string | undefined
  /** Default: `client_secret_basic` unless discovery lists only `client_secret_post`. */
  readonly tokenEndpointAuth: ClientSecretMethod | undefined
  readonly fetch: typeof fetch
}

/**
 * `client_secret_basic` as RFC 6749 §2.3.1 asks, encoded as `@ssokit/core`'s sessions encode it:
 * each part percent-encoded, then Base64, with `-`, `.`, `_`, `~` left as they are so that a
 * provider comparing the raw text still matches a client id such as `app-one`.
 */
export function basicCredentials(clientId: string, secret: string): string {
  return `Basic ${btoa(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`)}`
}

export class ProviderClient {
  readonly settings: ProviderSettings
  readonly client: oauth.Client
  #metadata: Promise<oauth.AuthorizationServer> | undefined

  constructor(settings: ProviderSettings) {
    this.settings = settings
    this.client = { client_id: settings.clientId }
  }

  /** The key this provider and client give a cache entry. */
  get issuer(): string {
    return this.settings.issuer.href.replace(/\/$/, '')
  }

  /** Options for one oauth4webapi request to `url`: our fetch, plain http only on loopback. */
  requestOptions(url: URL): {
    [oauth.customFetch]: (
      url: string,
      init: oauth.CustomFetchOptions<string, unknown>,
    ) => Promise<Response>
    // Plain http goes only to loopback (checkEndpoint refused anything else above).
    // eslint-disable-next-line @typescript-eslint/no-deprecated
    [oauth.allowInsecureRequests]: boolean
  } {
    checkEndpoint(url, 'endpoint')
    const limited = limitedFetch(this.settings.fetch)
    return {
      [oauth.customFetch]: (target, init) => limited(target, init as RequestInit),
      // eslint-disable-next-line @typescript-eslint/no-deprecated
      [oauth.allowInsecureRequests]: url.protocol === 'http:' && isLoopback(url),
    }
  }

  /** The discovery document; a failed fetch is retried on the next call, never cached. */
  metadata(): Promise<oauth.AuthorizationServer> {
    this.#metadata ??= this.#discover().catch((error: unknown) => {
      this.#metadata = undefined
      throw error
    })
    return this.#metadata
  }

  async #discover(): Promise<oauth.AuthorizationServer> {
    const { issuer } = this.settings
    try {
      const response = await oauth.discoveryRequest(issuer, {
        algorithm: 'oidc',
        ...this.requestOptions(issuer),
      })
      const metadata = await oauth.processDiscoveryResponse(issuer, response)
      for (const [name, value] of [
        ['token endpoint', metadata.token_endpoint],
        ['revocation endpoint', metadata.revocation_endpoint],
      ] as const) {
        if (value !== undefined) checkEndpoint(new URL(value), name)
      }
      return metadata
    } catch (error) {
      throw translateProtocolError(error, 'discovery')
    }
  }

  /** How the client authenticates at the token and revocation endpoints. */
  clientAuth(metadata: oauth.AuthorizationServer): oauth.ClientAuth {
    const { clientSecret: secret, tokenEndpointAuth } = this.settings
    if (secret === undefined) return oauth.None()
    const listed = metadata.token_endpoint_auth_methods_supported
    const method =
      tokenEndpointAuth ??
      (Array.isArray(listed) &&
      !listed.includes('client_secret_basic') &&
      listed.includes('client_secret_post')
        ? 'client_secret_post'
        : 'client_secret_basic')
    if (method === 'client_secret_post') return oauth.ClientSecretPost(secret)
    return (_as, client, _body, headers) => {
      headers.set('authorization', basicCredentials(client.client_id, secret))
    }
  }

  /** Metadata whose token endpoint is `tokenEndpoint` (CERN's `api-access/token`). */
  static withTokenEndpoint(
    metadata: oauth.AuthorizationServer,
    tokenEndpoint: string,
  ): oauth.AuthorizationServer {
    return { ...metadata, token_endpoint: tokenEndpoint }
  }

  /** Revokes a refresh token; a provider without a revocation endpoint makes this a no-op. */
  async revoke(refreshToken: string): Promise<boolean> {
    const metadata = await this.metadata()
    if (metadata.revocation_endpoint === undefined) return false
    try {
      const response = await oauth.revocationRequest(
        metadata,
        this.client,
        this.clientAuth(metadata),
        refreshToken,
        {
          ...this.requestOptions(new URL(metadata.revocation_endpoint)),
          additionalParameters: { token_type_hint: 'refresh_token' },
        },
      )
      await oauth.processRevocationResponse(response)
      return true
    } catch (error) {
      throw translateProtocolError(error, 'revocation')
    }
  }
}

export function requireTokenEndpoint(metadata: oauth.AuthorizationServer): URL {
  if (metadata.token_endpoint === undefined) {
    throw new SsoError(
      'provider_unavailable',
      'The identity provider publishes no token endpoint in its discovery document.',
    )
  }
  const url = new URL(metadata.token_endpoint)
  checkEndpoint(url, 'token endpoint')
  return url
}
