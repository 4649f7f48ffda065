/**
 * The replay cache: a message id (an assertion's, a LogoutRequest's) is taken once, with the
 * session store's `lock`, for as long as the message could still be accepted. Because it lives
 * in the store, a message used at one instance is refused at every other one sharing it.
 */
import { createHash } from 'node:crypto'
import { asStoreError } from '@ssokit/core/session-kit'
import type { ResolvedSamlConfig } from './options.js'

/** The longest an id is kept, whatever the message's own validity says. */
export const MAX_REPLAY_WINDOW_S = 24 * 3600

export type ReplayKind = 'saml-assertion' | 'saml-logout'

/**
 * Takes `id` of `issuer` until `until` (ms, the end of the message's validity; clock skew added);
 * resolves `false` when it was taken before. A store that cannot answer rejects with
 * `session_store_unavailable`.
 */
export async function takeOnce(
  config: Pick<ResolvedSamlConfig, 'store' | 'now' | 'clockSkewMs'>,
  kind: ReplayKind,
  issuer: string,
  id: string,
  until: number,
): Promise<boolean> {
  const ttl = Math.min(
    MAX_REPLAY_WINDOW_S,
    Math.max(60, Math.ceil((until + config.clockSkewMs - config.now()) / 1000)),
  )
  const key = createHash('sha256').update(`${issuer}\n${id}`).digest('base64url')
  try {
    return (await config.store.lock(`${kind}:${key}`, ttl)) !== undefined
  } catch (error) {
    throw asStoreError(error)
  }
}
