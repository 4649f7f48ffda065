/**
 * The access token each identity was proven with, for code that passes it on (a proxy sending
 * it upstream). Kept beside the identity, not on it, so that logging or serialising an identity
 * never shows a token.
 */
import type { Identity } from './identity.js'

const tokens = new WeakMap<Identity, string>()

/** Records the access token `identity` was proven with (inside the core only). */
export function attachAccessToken(identity: Identity, token: string): void {
  tokens.set(identity, token)
}

/**
 * The bearer token an identity was verified from, or its session's current access token (the
 * refreshed one after a refresh); `undefined` for an identity that has none, such as a SAML
 * session's.
 */
export function accessTokenOf(identity: Identity): string | undefined {
  return tokens.get(identity)
}
