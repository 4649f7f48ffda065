/**
 * Cookie-protected sites through the single sign-on (tsgauth's `KerbSessionAuth`, CERN's
 * `auth-get-sso-cookie`): the site's redirect to the provider is followed and answered with
 * Kerberos, and the jar keeps both the site's cookies and the provider's, so that the next site
 * behind the same provider signs in with the provider's session alone, without Kerberos.
 */
import { SsoError } from '@ssokit/core/errors'
import type { Cookie, CookieJar } from 'tough-cookie'

import { loadToughCookie } from '../lazy.js'

import { checkEndpoint } from '../http.js'
import { envLogger } from '../log.js'
import { type ClientExpertOptions, fail, issuerOf } from '../options.js'
import type { KerberosAuth } from '../kerberos/auth.js'
import { navigationFetch } from '../kerberos/navigate.js'
import { OtpSession } from '../kerberos/otp.js'
import { walk, type CallerRequest, type WalkContext, type WalkEnd } from '../kerberos/walk.js'

export interface CookieSessionOptions {
  /** The single sign-on provider's issuer URL; or `cern: true`. Only it is sent Kerberos tokens. */
  readonly issuer?: string
  readonly cern?: boolean
  /** How to sign in when the provider's session does not do: `kerberos()`. */
  readonly login: KerberosAuth
  /** Cookies to start from (a cookie file read with `readCookieFile`). Default: none. */
  readonly jar?: CookieJar
}

export interface CookieSession {
  /** Where the sign-in ended: the page asked for, after its redirects. */
  readonly url: string
  /** That page's status (a `403` means signed in but not allowed). */
  readonly status: number
  /** The site's and the provider's cookies. */
  readonly jar: CookieJar
  /** Whether Kerberos was needed (`false`: the provider's or the site's cookies did). */
  readonly kerberosUsed: boolean
  /** The Kerberos principal of the sign-in, when Kerberos was used. */
  readonly principal: string | undefined
  /** Every cookie held, for writing a cookie file. */
  cookies(): Promise<Cookie[]>
  /**
   * `fetch` with these cookies, signing in again when the site's session has ended. `GET` and
   * `HEAD` go out as page loads; the caller's headers override those, and go to the site's
   * origin only; `signal` ends the request and a sign-in under way.
   */
  readonly fetch: typeof fetch
}

const CALLER = 'cookieSession'

interface Prepared {
  readonly context: (kerberos: boolean, request?: CallerRequest) => WalkContext
}

function prepare(
  options: CookieSessionOptions,
  expert: ClientExpertOptions,
  jar: CookieJar,
): Prepared {
  // JavaScript callers may pass anything.
  if ((options.login as Partial<KerberosAuth> | undefined)?.kind !== 'kerberos') {
    fail(CALLER, 'login must be made by kerberos()', 'ERR_INVALID_ARG_TYPE')
  }
  const provider = issuerOf(CALLER, options)
  const env = expert.env ?? process.env
  const log = envLogger(env, expert.log)
  const fetchImpl = expert.fetch ?? navigationFetch
  const auth = options.login.options
  return {
    context: (kerberos, request) => ({
      fetch: fetchImpl,
      jar,
      provider,
      credentials: auth,
      servicePrincipal: auth.servicePrincipal,
      otp: new OtpSession(auth, {
        env,
        clock: expert.clock ?? Date.now,
        sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
        interactive: process.stdin.isTTY && process.stderr.isTTY,
      }),
      log,
      kerberos,
      ...(request === undefined ? {} : { request }),
    }),
  }
}

/** Cookies first; Kerberos only when the provider shows its sign-in. */
async function reach(
  prepared: Prepared,
  url: URL,
  state: { principal: string | undefined },
  request?: CallerRequest,
): Promise<Extract<WalkEnd, { kind: 'page' }>> {
  const never = () => false
  let end = await walk(prepared.context(false, request), url, never, state)
  if (end.kind === 'login_needed') {
    end = await walk(prepared.context(true, request), end.resume ?? url, never, state)
  }
  if (end.kind !== 'page') {
    throw new SsoError(
      'login_page_unexpected',
      `The sign-in at ${url.origin} did not end on a page.`,
    )
  }
  return end
}

/**
 * Signs in to a cookie-protected site and returns its cookies and a `fetch` that uses them.
 *
 * @example
 * const session = await cookieSession('https://app.cern.ch/', { cern: true, login: kerberos() })
 * const page = await session.fetch('https://app.cern.ch/api/items')
 */
export async function cookieSession(
  url: string | URL,
  options: CookieSessionOptions,
  expert: ClientExpertOptions = {},
): Promise<CookieSession> {
  const target = new URL(url)
  checkEndpoint(target, 'site')
  const prepared = prepare(
    options,
    expert,
    options.jar ?? new (await loadToughCookie()).CookieJar(),
  )
  const jar = prepared.context(false).jar
  const state = { principal: undefined as string | undefined }
  const end = await reach(prepared, target, state)
  const session: CookieSession = {
    url: end.url.href,
    status: end.status,
    jar,
    kerberosUsed: end.negotiated,
    principal: state.principal,
    cookies: () => jar.store.getAllCookies(),
    fetch: cookieFetch(prepared, state),
  }
  return Object.freeze(session)
}

function cookieFetch(prepared: Prepared, state: { principal: string | undefined }): typeof fetch {
  return async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase()
    if (method === 'GET' || method === 'HEAD') {
      const headers = new Headers(input instanceof Request ? input.headers : undefined)
      for (const [name, value] of new Headers(init?.headers)) headers.set(name, value)
      const signal = init?.signal ?? (input instanceof Request ? input.signal : undefined)
      const request = { origin: url.origin, headers, signal: signal ?? undefined }
      const end = await reach(prepared, url, state, request)
      return new Response(method === 'HEAD' ? null : end.body, {
        status: end.status,
        headers: end.headers,
      })
    }
    const context = prepared.context(false)
    const headers = new Headers(init?.headers)
    const cookie = await context.jar.getCookieString(url.href)
    if (cookie !== '') headers.set('cookie', cookie)
    const response = await context.fetch(url.href, { ...init, headers, redirect: 'manual' })
    for (const line of response.headers.getSetCookie()) {
      await context.jar.setCookie(line, url.href, { ignoreError: true })
    }
    return response
  }
}
