/**
 * Loop protection. In a login loop the application keeps refusing sessions that sign-in just
 * created (the cookie is dropped, or the session is lost between servers) and sends the browser
 * to sign in again. Only that is counted: a signed cookie holds the time of this browser's last
 * completed sign-in, how many sign-ins it started since, and whether the application refused its
 * session since then. A sign-in counts only when it follows such a refusal, so sign-ins that
 * another site starts, or that the user starts again and again, never lock anyone out; sign-ins
 * with no recent completed one (ten tabs restored at once) do not count either.
 */
import { isSsoError } from '../errors.js'
import type { RequestLike, ResponseParts } from '../http.js'
import { parseCookies, type CookieJar } from './cookies.js'
import { nowS, setCookie, type SessionContext } from './context.js'

/** Login starts are counted over this window for loop protection. */
export const LOOP_WINDOW_S = 120
const LOOP_PURPOSE = 'ssokit:login-attempts'
const REFUSED = '-r'

export interface LoginAttempts {
  /** Sign-ins started after the application refused the session, since the window began. */
  readonly count: number
  readonly lastSuccess: number | undefined
  /** Whether the application refused this browser's session since its last completed sign-in. */
  readonly refused: boolean
}

const NONE: LoginAttempts = { count: 0, lastSuccess: undefined, refused: false }

export function loginAttempts(context: SessionContext, cookies: CookieJar): LoginAttempts {
  const { config, keyring } = context
  const now = nowS(config)
  const raw = cookies.get(config.loopCookie)?.[0]
  const value = raw === undefined ? undefined : keyring.verify(raw, LOOP_PURPOSE)
  const match = value === undefined ? null : /^(\d{1,4})-(\d{1,12})(-r)?$/.exec(value)
  if (!match) return NONE
  const count = Number(match[1])
  const lastSuccess = Number(match[2])
  if (lastSuccess > now || now - lastSuccess >= LOOP_WINDOW_S) return NONE
  return { count, lastSuccess, refused: match[3] !== undefined }
}

export function loopCookie(
  context: SessionContext,
  count: number,
  lastSuccess: number,
  refused = false,
): string {
  const { config, keyring } = context
  const value = keyring.sign(`${count}-${lastSuccess}${refused ? REFUSED : ''}`, LOOP_PURPOSE)
  const maxAge = Math.max(1, lastSuccess + LOOP_WINDOW_S - nowS(config))
  return setCookie(config, config.loopCookie, value, maxAge, '/')
}

/**
 * `parts` with the refusal recorded, when the application refused a request of a browser that
 * completed a sign-in moments ago for want of a session: the sign-in it is sent to next counts.
 */
export function withRefusalMark(
  context: SessionContext,
  error: unknown,
  request: RequestLike,
  parts: ResponseParts,
): ResponseParts {
  if (!isSsoError(error) || (error.code !== 'session_missing' && error.code !== 'token_missing'))
    return parts
  const attempts = loginAttempts(context, parseCookies(request.header('cookie')))
  if (attempts.lastSuccess === undefined || attempts.refused) return parts
  const existing = parts.headers['set-cookie']
  const cookies = existing === undefined ? [] : typeof existing === 'string' ? [existing] : existing
  return {
    ...parts,
    headers: {
      ...parts.headers,
      'set-cookie': [...cookies, loopCookie(context, attempts.count, attempts.lastSuccess, true)],
    },
  }
}
