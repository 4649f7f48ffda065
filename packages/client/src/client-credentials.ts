/**
 * A service's own token: the client credentials grant (RFC 6749 §4.4), at CERN through the
 * `api-access/token` endpoint that honours `audience` (tsgauth's `ClientAuth`). Providers issue
 * no refresh token for it, so a token near expiry is replaced by running the grant again.
 */
import * as oauth from 'oauth4webapi'

import { acceptTokenResponse, checkAudience, type CredentialKey } from './credential.js'
import {
  type ClientExpertOptions,
  type CommonClientOptions,
  fail,
  nonEmptyString,
  optionalString,
  providerOf,
  runtimeOf,
  scopeOption,
} from './options.js'
import { requireTokenEndpoint, ProviderClient } from './provider.js'
import { translateProtocolError } from './protocol-errors.js'
import { ManagedSource, type Grant, type TokenSource } from './token-source.js'
import { checkEndpoint } from './http.js'

export interface ClientCredentialsOptions extends CommonClientOptions {
  readonly clientSecret: string
  /** The client whose API the token is for (CERN's `audience`). Default: the client itself. */
  readonly audience?: string
  /**
   * Use CERN's `<issuer>/api-access/token` instead of the discovered token endpoint. Default:
   * `true` with `cern: true`, else `false`.
   */
  readonly apiAccess?: boolean
}

const CALLER = 'clientCredentials'

/**
 * @example
 * const source = clientCredentials({ cern: true, clientId: 'my-app', clientSecret, audience: 'other-api' })
 * const response = await authFetch(source)('https://other-api.cern.ch/items')
 */
export function clientCredentials(
  options: ClientCredentialsOptions,
  expert: ClientExpertOptions = {},
): TokenSource {
  nonEmptyString(CALLER, 'clientSecret', options.clientSecret)
  const audience = optionalString(CALLER, 'audience', options.audience)
  const scope = scopeOption(CALLER, options.scope)
  if (options.apiAccess !== undefined && typeof options.apiAccess !== 'boolean') {
    fail(CALLER, 'apiAccess must be a boolean', 'ERR_INVALID_ARG_TYPE')
  }
  const apiAccess = options.apiAccess ?? options.cern === true
  const provider = providerOf(CALLER, options, expert)
  const runtime = runtimeOf(CALLER, options, expert)
  const key: CredentialKey = Object.freeze({
    issuer: provider.issuer,
    clientId: provider.settings.clientId,
    grant: 'client_credentials',
    audience,
    scope,
    subject: undefined,
  })
  const grant: Grant = {
    provider,
    key: () => Promise.resolve(key),
    obtain: (k, now) => requestToken(provider, k, apiAccess, now),
  }
  return new ManagedSource(grant, runtime)
}

async function requestToken(
  provider: ProviderClient,
  key: CredentialKey,
  apiAccess: boolean,
  now: number,
) {
  const discovered = await provider.metadata()
  const endpoint = apiAccess
    ? new URL(`${provider.issuer}/api-access/token`)
    : requireTokenEndpoint(discovered)
  checkEndpoint(endpoint, 'token endpoint')
  const metadata = ProviderClient.withTokenEndpoint(discovered, endpoint.href)
  const parameters = new URLSearchParams()
  if (key.audience !== undefined) parameters.set('audience', key.audience)
  if (key.scope !== undefined) parameters.set('scope', key.scope)
  try {
    const response = await oauth.clientCredentialsGrantRequest(
      metadata,
      provider.client,
      provider.clientAuth(metadata),
      parameters,
      provider.requestOptions(endpoint),
    )
    const raw = await rawJson(response)
    const body = await oauth.processClientCredentialsResponse(metadata, provider.client, response)
    const credential = acceptTokenResponse(body, { key, now, raw })
    checkAudience(credential)
    return credential
  } catch (error) {
    throw translateProtocolError(error, 'token')
  }
}

/** The answer's JSON as sent, for the checks oauth4webapi's normalisation would hide. */
export async function rawJson(response: Response): Promise<Readonly<Record<string, unknown>>> {
  try {
    const value: unknown = await response.clone().json()
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {}
  } catch {
    return {}
  }
}
