/**
 * `POST <prefix>/backchannel-logout`: the provider names, in a verified logout token, the
 * sessions it ended; they end here too, by `sid`, or by subject through a logout mark.
 */
import { isSsoError } from '../errors.js'
import type { EventSink } from '../verify/events.js'
import type { LogoutTokenVerifier } from './backchannel.js'
import type { SessionConfig } from './context.js'
import { bodyTooLarge, readBodyText } from './body.js'
import { decodeLogoutMark, encodeLogoutMark, logoutMarkId } from './record.js'
import { retryAfterOf, STORE_RETRY_AFTER_S } from './store-errors.js'

export async function backchannelLogout(
  config: SessionConfig,
  logoutTokens: LogoutTokenVerifier,
  request: Request,
  events: EventSink,
): Promise<Response> {
  const headers = { 'cache-control': 'no-store', 'content-type': 'application/json' }
  const answer = (status: number, body: unknown, extra: Record<string, string> = {}): Response =>
    new Response(body === undefined ? null : JSON.stringify(body), {
      status,
      headers: { ...headers, ...extra },
    })
  const bad = (): Response => answer(400, { error: 'logout_token_invalid' })
  const type = request.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/x-www-form-urlencoded') return bad()
  const body = await readBodyText(request, config.maxBodySize)
  if (!body.ok) return body.reason === 'too_large' ? bodyTooLarge() : bad()
  const tokens = new URLSearchParams(body.text).getAll('logout_token')
  if (tokens.length !== 1 || tokens[0] === undefined || tokens[0] === '') return bad()
  try {
    const target = await logoutTokens.verify(tokens[0])
    if (target.sid !== undefined) await config.store.deleteBySid(target.sid)
    else if (target.sub !== undefined) await markLoggedOut(config, target.sub, target.iat)
    return answer(200, undefined)
  } catch (error) {
    if (isSsoError(error) && error.code === 'logout_token_invalid') {
      // A provider whose logout tokens are all refused leaves sessions alive after logout.
      events.warnOnce(`logout-token:${error.message}`, {
        type: 'logout_token_rejected',
        level: 'warn',
        message: `A back-channel logout token was refused: ${error.message}`,
        reason: error.claim,
        code: error.code,
      })
      return bad()
    }
    const retryAfter = retryAfterOf(error, STORE_RETRY_AFTER_S)
    const code =
      isSsoError(error) && error.code === 'provider_unavailable'
        ? 'provider_unavailable'
        : 'session_store_unavailable'
    return answer(503, { error: code }, { 'retry-after': String(retryAfter) })
  }
}

/**
 * Ends, on every replica, the sessions of `subject` created up to `iat`, and none created
 * after: the store cannot list a subject's sessions, so a mark in the store is checked by
 * every request instead. The mark lives as long as the longest session it can end.
 */
async function markLoggedOut(config: SessionConfig, subject: string, iat: number): Promise<void> {
  const store = config.store
  const id = logoutMarkId(subject)
  const previous = await store.get(id)
  const previousIat = previous === undefined ? undefined : decodeLogoutMark(previous.data)
  // A delayed token never moves the mark back in time.
  if (previousIat !== undefined && previousIat >= iat) return
  await store.set(
    id,
    { subject: id, sid: undefined, data: encodeLogoutMark(iat) },
    config.sessionLifetimeS,
  )
}
