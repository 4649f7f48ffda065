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
import { setCookie } from './context.js'
import type { SessionFrame } from './frame.js'
import { pageResponse } from './pages.js'
import type { Keyring } from './seal.js'

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

/** What the guard needs of a login source (OpenID Connect or SAML): the frame, a clock, the keys. */
export interface LoopGuardContext {
  readonly config: Pick<SessionFrame, 'loopCookie' | 'secure' | 'maxLoginAttempts'> & {
    readonly now: () => number
  }
  readonly keyring: Keyring
}

function nowS(context: LoopGuardContext): number {
  return Math.floor(context.config.now() / 1000)
}

export function loginAttempts(context: LoopGuardContext, cookies: CookieJar): LoginAttempts {
  const { config, keyring } = context
  const now = nowS(context)
  const raw = cookies.get(config.loopCookie)?.[0]
  const value = raw === undefined ? undefined : keyring.verify(raw, LOOP_PURPOSE)
  const match = value === undefined ? null : /^(\d{1,4})-(\d{1,12})(-r)?$/.exec(value)
  if (!match) return NONE
  const count = Number(match[1])
  const lastSuccess = Number(match[2])
  if (lastSuccess > now || now - lastSuccess >= LOOP_WINDOW_S) return NONE
  return { count, lastSuccess, refused: match[3] !== undefined }
}

function loopCookie(
  context: LoopGuardContext,
  count: number,
  lastSuccess: number,
  refused = false,
): string {
  const { config, keyring } = context
  const value = keyring.sign(`${count}-${lastSuccess}${refused ? REFUSED : ''}`, LOOP_PURPOSE)
  const maxAge = Math.max(1, lastSuccess + LOOP_WINDOW_S - nowS(context))
  return setCookie(config, config.loopCookie, value, maxAge, '/')
}

/**
 * At the start of a sign-in: the `429 login_loop` page (with `Retry-After`) when this browser
 * has been sent round `maxLoginAttempts` times already, else `undefined` and, when this start
 * follows a refusal, the cookie that counts it is appended to `headers`.
 */
export function guardLoginStart(
  context: LoopGuardContext,
  cookies: CookieJar,
  headers: Headers,
): Response | undefined {
  const attempts = loginAttempts(context, cookies)
  if (attempts.lastSuccess === undefined) return undefined
  if (attempts.count >= context.config.maxLoginAttempts) {
    const wait = Math.max(1, attempts.lastSuccess + LOOP_WINDOW_S - nowS(context))
    headers.set('retry-after', String(wait))
    return pageResponse(
      429,
      {
        title: 'Sign-in keeps failing',
        paragraphs: [
          `This browser completed sign-in and the application sent it straight back to sign in ${attempts.count} times in a row, so the session is not being kept. Sign-in stopped here to avoid an endless loop.`,
          'Usual causes: the browser refuses the session cookie (cookies blocked, or the site is reached over http while it is configured for https), the clock of this server is wrong, or the sessions are lost between servers (several instances sharing a memory store).',
          `You can try again in ${wait} seconds.`,
        ],
      },
      headers,
    )
  }
  // Counted only when the application refused the session that sign-in created: that is a loop.
  if (attempts.refused)
    headers.append('set-cookie', loopCookie(context, attempts.count + 1, attempts.lastSuccess))
  return undefined
}

/** At a completed sign-in: the cookie recording it, keeping the count of the window. */
export function loginCompletedCookie(context: LoopGuardContext, cookies: CookieJar): string {
  return loopCookie(context, loginAttempts(context, cookies).count, nowS(context))
}

/**
 * `parts` with the refusal recorded, when the application refused a request of a browser that
 * completed a sign-in moments ago for want of a session: the sign-in it is sent to next counts.
 */
export function withRefusalMark(
  context: LoopGuardContext,
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
