/**
 * Drive the idp's login pages without a browser, for test suites: plain `fetch`, a small cookie
 * jar, the same form fields a person fills in.
 */

interface StoredCookie {
  readonly value: string
  readonly path: string
  readonly expires: number
}

/** Cookies by name and path, sent back to any URL under their path (host is not checked). */
export class CookieJar {
  readonly #cookies = new Map<string, StoredCookie & { name: string }>()

  /** Records the `Set-Cookie` headers of a response. */
  store(response: Response): void {
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';')
      const eq = pair.indexOf('=')
      if (eq <= 0) continue
      const name = pair.slice(0, eq).trim()
      const value = pair.slice(eq + 1).trim()
      let path = '/'
      let expires = Infinity
      for (const attribute of attributes) {
        const [key = '', ...rest] = attribute.split('=')
        const v = rest.join('=').trim()
        switch (key.trim().toLowerCase()) {
          case 'path':
            path = v || '/'
            break
          case 'expires':
            expires = Date.parse(v)
            break
          case 'max-age':
            expires = Date.now() + Number(v) * 1000
            break
        }
      }
      const key = `${name};${path}`
      if (value === '' || expires <= Date.now()) this.#cookies.delete(key)
      else this.#cookies.set(key, { name, value, path, expires })
    }
  }

  /** The `Cookie` header for a request to `url`. */
  header(url: string | URL): string {
    const path = new URL(url).pathname
    const now = Date.now()
    return [...this.#cookies.values()]
      .filter(
        (c) => c.expires > now && (path === c.path || path.startsWith(c.path.replace(/\/?$/, '/'))),
      )
      .map((c) => `${c.name}=${c.value}`)
      .join('; ')
  }

  /** Names of the cookies held, for assertions. */
  names(): string[] {
    return [...new Set([...this.#cookies.values()].map((c) => c.name))]
  }

  /** `fetch` that sends and records this jar's cookies and never follows redirects. */
  async fetch(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers)
    const cookie = this.header(url)
    if (cookie) headers.set('cookie', cookie)
    const response = await fetch(url, { ...init, headers, redirect: 'manual' })
    this.store(response)
    return response
  }
}

/** The login form was shown again with an error: the credentials were refused. */
export class LoginRejectedError extends Error {
  override readonly name = 'LoginRejectedError'
}

export interface LoginOptions {
  /** The realm's issuer; redirects inside it are followed, the first one leaving it is returned. */
  issuer: string
  /** A complete authorization request URL (client_id, redirect_uri, PKCE, state...). */
  authorizeUrl: string | URL
  username: string
  password: string
  /** Reuse a jar to keep a session between logins (single sign-on). Default: a new jar. */
  cookies?: CookieJar
}

export interface LoginResult {
  /** Where the idp finally redirected: the client's `redirect_uri` with `code` or `error`. */
  location: string
  /** `code` from `location`, when present. */
  code: string | undefined
  /** The jar holding the idp session cookies, for later requests (logout, a second login). */
  cookies: CookieJar
}

const FORM_ID = 'kc-form-login'

function formAction(html: string, formId: string, base: string): string | undefined {
  const form = new RegExp(`<form[^>]*id="${formId}"[^>]*>`).exec(html)?.[0]
  const action = form === undefined ? undefined : /action="([^"]*)"/.exec(form)?.[1]
  return action === undefined ? undefined : new URL(action.replace(/&amp;/g, '&'), base).href
}

function errorText(html: string): string | undefined {
  return /id="kc-error-message"[^>]*>([^<]*)</.exec(html)?.[1]
}

async function follow(
  jar: CookieJar,
  issuer: string,
  start: Response,
  startUrl: string,
  credentials: { username: string; password: string } | undefined,
): Promise<{ location: string; response: Response; url: string }> {
  let response = start
  let url = startUrl
  let submitted = false
  for (let hop = 0; hop < 20; hop++) {
    const location = response.headers.get('location')
    if (response.status >= 300 && response.status < 400 && location !== null) {
      const next = new URL(location, url).href
      if (!next.startsWith(`${issuer}/`)) return { location: next, response, url }
      url = next
      response = await jar.fetch(url)
      continue
    }
    if (response.status !== 200) return { location: url, response, url }
    const html = await response.text()
    const action = formAction(html, FORM_ID, url)
    if (action === undefined || credentials === undefined) {
      return { location: url, response: new Response(html, response), url }
    }
    if (submitted) {
      throw new LoginRejectedError(errorText(html) ?? 'the login form was shown again')
    }
    submitted = true
    response = await jar.fetch(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(credentials),
    })
    url = action
  }
  throw new Error('too many redirects')
}

/**
 * Logs in through the idp's login form the way a browser would and returns where the idp sends
 * the browser back (the client's redirect_uri with `code`). Throws `LoginRejectedError` when the
 * form comes back with an error.
 *
 * @example
 * const { code } = await loginWithPassword({ issuer, authorizeUrl, username: 'alice', password: 'alice' })
 */
export async function loginWithPassword(options: LoginOptions): Promise<LoginResult> {
  const jar = options.cookies ?? new CookieJar()
  const issuer = options.issuer.replace(/\/$/, '')
  const start = String(options.authorizeUrl)
  const first = await jar.fetch(start)
  const { location } = await follow(jar, issuer, first, start, options)
  const code = URL.canParse(location)
    ? (new URL(location).searchParams.get('code') ?? undefined)
    : undefined
  return { location, code, cookies: jar }
}

export interface ApproveDeviceOptions {
  issuer: string
  /** `user_code` from the device authorization response. */
  userCode: string
  username: string
  password: string
  cookies?: CookieJar
}

/**
 * Approves a device login as its user would: opens the verification page, enters the code,
 * confirms, and logs in. Resolves when the idp shows its success page.
 */
export async function approveDevice(options: ApproveDeviceOptions): Promise<void> {
  const jar = options.cookies ?? new CookieJar()
  const issuer = options.issuer.replace(/\/$/, '')
  const page = `${issuer}/device`
  const xsrf = (html: string) => /name="xsrf" value="([^"]+)"/.exec(html)?.[1] ?? ''
  const input = await (await jar.fetch(page)).text()
  const confirm = await jar.fetch(page, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ xsrf: xsrf(input), user_code: options.userCode }),
  })
  const confirmHtml = await confirm.text()
  if (!confirmHtml.includes('op.deviceConfirmForm')) {
    throw new Error(errorText(confirmHtml) ?? 'the user code was not accepted')
  }
  const start = await jar.fetch(page, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      xsrf: xsrf(confirmHtml),
      user_code: options.userCode,
      confirm: 'yes',
    }),
  })
  const { response } = await follow(jar, issuer, start, page, options)
  if (response.status !== 200)
    throw new Error(`device approval ended with status ${response.status}`)
}

export interface LogoutOptions {
  /** The realm's issuer. */
  issuer: string
  /** The jar holding the idp session to end (from `loginWithPassword`). */
  cookies: CookieJar
  /** The client the logout is for (`client_id`). */
  clientId?: string
  /** An ID token of this session; with it the idp logs out without asking. */
  idTokenHint?: string
  /** Where the idp sends the browser afterwards; must be registered for the client. */
  postLogoutRedirectUri?: string
}

export interface LogoutResult {
  /** Where the idp finally sent the browser: the post-logout URI, or its own signed-out page. */
  location: string
  /** Whether the idp asked to confirm (no valid hint) and the confirmation was submitted. */
  confirmed: boolean
}

/**
 * Signs out at the idp as a person would: opens the logout endpoint and, when the idp asks
 * (a logout without a valid `id_token_hint`), presses "Sign out".
 */
export async function logoutAtIdp(options: LogoutOptions): Promise<LogoutResult> {
  const jar = options.cookies
  const url = new URL(`${options.issuer.replace(/\/$/, '')}/protocol/openid-connect/logout`)
  if (options.clientId !== undefined) url.searchParams.set('client_id', options.clientId)
  if (options.idTokenHint !== undefined) url.searchParams.set('id_token_hint', options.idTokenHint)
  if (options.postLogoutRedirectUri !== undefined)
    url.searchParams.set('post_logout_redirect_uri', options.postLogoutRedirectUri)
  const first = await jar.fetch(url)
  let response = first
  let confirmed = false
  if (first.status === 200) {
    const html = await first.text()
    const action = formAction(html, 'op\\.logoutForm', url.href)
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1]
    if (action === undefined || xsrf === undefined) return { location: url.href, confirmed }
    response = await jar.fetch(action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
    })
    confirmed = true
  }
  const location = response.headers.get('location')
  await response.body?.cancel()
  if (response.status < 300 || response.status >= 400 || location === null)
    throw new Error(`the idp's logout answered ${response.status}`)
  return { location: new URL(location, url).href, confirmed }
}
