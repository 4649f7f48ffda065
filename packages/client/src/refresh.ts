/**
 * The refresh token grant (RFC 6749 §6), shared by every source that holds a refresh token: a
 * token exchange asked to be refreshable, and the logins. The stored refresh token is kept when
 * the answer brings none (RFC 6749 §6, D04).
 */
import * as oauth from 'oauth4webapi'

import { rawJson } from './client-credentials.js'
import {
  acceptTokenResponse,
  checkAudience,
  type Credential,
  type CredentialKey,
} from './credential.js'
import { requireTokenEndpoint, type ProviderClient } from './provider.js'
import { translateProtocolError } from './protocol-errors.js'

export async function refreshCredential(
  provider: ProviderClient,
  key: CredentialKey,
  previous: Credential,
  now: number,
): Promise<Credential> {
  const metadata = await provider.metadata()
  const endpoint = requireTokenEndpoint(metadata)
  try {
    const response = await oauth.refreshTokenGrantRequest(
      metadata,
      provider.client,
      provider.clientAuth(metadata),
      previous.refreshToken as string,
      provider.requestOptions(endpoint),
    )
    const raw = await rawJson(response)
    const body = await oauth.processRefreshTokenResponse(metadata, provider.client, response)
    const credential = acceptTokenResponse(body, { key, now, raw, previous })
    checkAudience(credential)
    return credential
  } catch (error) {
    throw translateProtocolError(error, 'token')
  }
}
