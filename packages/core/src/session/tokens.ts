/** Token-endpoint steps that login and refresh share: signature checks, claims, token timing. */
import { decodeJwt } from 'jose'
import * as oauth from 'oauth4webapi'

import type { Provider } from './provider.js'
import type { SessionRecord } from './record.js'

/** Refresh at most this long before the access token expires. */
const REFRESH_MARGIN_MS = 30_000

/** The claims of a JWT without verifying it, or `undefined` when it is not one. */
export function decodeClaims(token: string): Record<string, unknown> | undefined {
  try {
    return decodeJwt(token)
  } catch {
    return undefined
  }
}

/** Verifies the ID token signature; an unknown key id refetches the provider's keys once. */
export async function checkSignature(
  provider: Provider,
  metadata: oauth.AuthorizationServer,
  response: Response,
): Promise<void> {
  try {
    await oauth.validateApplicationLevelSignature(metadata, response, provider.requestOptions())
  } catch (error) {
    if (!(error instanceof oauth.OperationProcessingError && error.code === oauth.KEY_SELECTION))
      throw error
    if (!provider.forgetKeys()) throw error
    await oauth.validateApplicationLevelSignature(
      await provider.metadata(),
      response,
      provider.requestOptions(),
    )
  }
}

export function accessTiming(
  expiresIn: number | undefined,
  now: number,
): Pick<SessionRecord, 'accessExpiresAt' | 'refreshAt'> {
  if (expiresIn === undefined || !Number.isFinite(expiresIn) || expiresIn <= 0) {
    return { accessExpiresAt: undefined, refreshAt: undefined }
  }
  const lifetime = expiresIn * 1000
  // A short-lived token is refreshed in its last third, a long-lived one 30 s before it expires.
  const margin = Math.min(REFRESH_MARGIN_MS, lifetime / 3)
  return { accessExpiresAt: now + lifetime, refreshAt: now + lifetime - margin }
}
