/**
 * Loop protection. A browser in a login loop completes sign-ins that do not stick (the session
 * cookie is dropped or the session is lost) and comes straight back to /login. So the counter
 * holds the time of this browser's last completed sign-in and how many logins it started since;
 * logins started with no recent completed sign-in (ten tabs restored at once) do not count.
 */
import type { CookieJar } from './cookies.js'
import { nowS, setCookie, type SessionContext } from './context.js'

/** Login starts are counted over this window for loop protection. */
export const LOOP_WINDOW_S = 120
const LOOP_PURPOSE = 'ssokit:login-attempts'

export interface LoginAttempts {
  readonly count: number
  readonly lastSuccess: number | undefined
}

export function loginAttempts(context: SessionContext, cookies: CookieJar): LoginAttempts {
  const { config, keyring } = context
  const now = nowS(config)
  const raw = cookies.get(config.loopCookie)?.[0]
  const value = raw === undefined ? undefined : keyring.verify(raw, LOOP_PURPOSE)
  const match = value === undefined ? null : /^(\d{1,4})-(\d{1,12})$/.exec(value)
  if (!match) return { count: 0, lastSuccess: undefined }
  const count = Number(match[1])
  const lastSuccess = Number(match[2])
  if (lastSuccess > now || now - lastSuccess >= LOOP_WINDOW_S)
    return { count: 0, lastSuccess: undefined }
  return { count, lastSuccess }
}

export function loopCookie(context: SessionContext, count: number, lastSuccess: number): string {
  const { config, keyring } = context
  const value = keyring.sign(`${count}-${lastSuccess}`, LOOP_PURPOSE)
  const maxAge = Math.max(1, lastSuccess + LOOP_WINDOW_S - nowS(config))
  return setCookie(config, config.loopCookie, value, maxAge, '/')
}
