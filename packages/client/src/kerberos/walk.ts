/**
 * Follows a Keycloak sign-in without a browser, the way CERN's tools do, but checked at every
 * step: redirects one by one (cookies kept in a tough-cookie jar), the login page's
 * "Sign in with Kerberos" link (`#social-kerberos`), the `401 Negotiate` answered with a SPNEGO
 * token, the one-time code form (`#kc-otp-login-form`), pages that post themselves (SAML,
 * form_post). Anything else the provider shows ends the walk with an error naming it.
 */
import { SsoError } from '@ssokit/core/errors'
import type { CookieJar } from 'tough-cookie'

import { checkEndpoint } from '../http.js'
import type { Logger } from '../log.js'
import { autoSubmitForm, byId, formById, type Form, tags, textOf, title } from './html.js'
import type { OtpSession } from './otp.js'
import { negotiate, type KerberosCredentials, type NegotiateResult } from './spnego.js'

const MAX_STEPS = 40
const MAX_PAGE_BYTES = 1024 * 1024

export interface WalkContext {
  readonly fetch: typeof fetch
  readonly jar: CookieJar
  /** The provider's issuer: pages on its origin are sign-in pages; only it gets Kerberos tokens. */
  readonly provider: URL
  readonly credentials: KerberosCredentials
  /** `HTTP@host`; default `HTTP@<the provider's host>`. */
  readonly servicePrincipal: string | undefined
  readonly otp: OtpSession
  readonly log: Logger
  /** May the walk use Kerberos? `false` to try the provider session's cookies alone. */
  readonly kerberos: boolean
  /** A caller's own request (a cookie session's `fetch`): see `CallerRequest`. */
  readonly request?: CallerRequest
}

/**
 * What the caller of a cookie session's `fetch` asked for: its headers go to the site's own
 * origin only, never to the provider or elsewhere, and never in place of the jar's cookies; its
 * signal ends the walk.
 */
export interface CallerRequest {
  readonly origin: string
  readonly headers: Headers
  readonly signal: AbortSignal | undefined
}

/** Header names a caller cannot set on the walk's requests: the walk's own. */
const WALK_HEADERS: ReadonlySet<string> = new Set(['cookie', 'content-type', 'content-length'])

export type WalkEnd =
  /** A redirect to a URL the caller stops at (its redirect URI), not followed. */
  | { readonly kind: 'stopped'; readonly url: URL; readonly negotiated: boolean }
  /** A page off the provider: the site, signed in or not. */
  | {
      readonly kind: 'page'
      readonly url: URL
      readonly status: number
      readonly headers: Headers
      readonly body: string
      readonly negotiated: boolean
    }
  /**
   * Kerberos would be needed, and `kerberos` was false. `resume`: the provider page to go on
   * from with Kerberos (a page that was loaded with GET), so the site's sign-in under way is
   * finished rather than a second one started.
   */
  | { readonly kind: 'login_needed'; readonly url: URL; readonly resume: URL | undefined }

interface Step {
  url: URL
  method: 'GET' | 'POST'
  body?: URLSearchParams
  authorization?: string
}

export interface WalkState {
  /** The principal of the last SPNEGO token, for the cookie file's owner line. */
  principal: string | undefined
}

function unexpected(message: string, page: string | undefined): SsoError {
  return new SsoError('login_page_unexpected', `${message}${page === undefined ? '' : `: ${page}`}`)
}

async function readPage(response: Response): Promise<string> {
  const reader = response.body?.getReader()
  if (reader === undefined) return ''
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > MAX_PAGE_BYTES) {
      await reader.cancel()
      break
    }
    chunks.push(value)
  }
  return Buffer.concat(chunks).toString('utf8')
}

function formStep(form: Form, page: URL, extra: Record<string, string>): Step {
  const action = new URL(form.action ?? page.href, page)
  const body = new URLSearchParams([...form.fields])
  for (const [name, value] of Object.entries(extra)) body.set(name, value)
  return form.method === 'post'
    ? { url: action, method: 'POST', body }
    : { url: new URL(`${action.origin}${action.pathname}?${body.toString()}`), method: 'GET' }
}

function loginNeeded(step: Step): WalkEnd {
  return {
    kind: 'login_needed',
    url: step.url,
    resume: step.method === 'GET' ? step.url : undefined,
  }
}

/** Keycloak's consent page (`login-oauth-grant`: `#kc-oauth`, posting to `login-actions/consent`). */
function isConsentPage(body: string, url: URL): boolean {
  if (url.pathname.includes('/login-actions/consent')) return true
  if (byId(body, 'kc-oauth') !== undefined || byId(body, 'kc-form-consent') !== undefined) {
    return true
  }
  return tags(body, 'form').some((form) =>
    (form.attributes.get('action') ?? '').includes('/login-actions/consent'),
  )
}

/**
 * Walks from `start` until `stop(url)` says a redirect is the end, or a page off the provider.
 */
export async function walk(
  context: WalkContext,
  start: URL,
  stop: (url: URL) => boolean,
  state: WalkState,
): Promise<WalkEnd> {
  const providerOrigin = context.provider.origin
  const service = context.servicePrincipal ?? `HTTP@${context.provider.hostname}`
  let step: Step = { url: start, method: 'GET' }
  let negotiated = false
  let kerberosLinkUsed = false
  let refusedOtp: string | undefined
  let pendingPrincipal: NegotiateResult | undefined
  for (let count = 0; count < MAX_STEPS; count++) {
    const { url } = step
    checkEndpoint(url, 'sign-in page')
    // A page load, as a browser's: sites send those (and not API calls) to the sign-in.
    const headers = new Headers({
      accept: 'text/html,application/xhtml+xml,*/*;q=0.8',
      'sec-fetch-mode': 'navigate',
      'sec-fetch-dest': 'document',
    })
    const caller = context.request
    if (caller !== undefined && url.origin === caller.origin && url.origin !== providerOrigin) {
      for (const [name, value] of caller.headers) {
        if (!WALK_HEADERS.has(name)) headers.set(name, value)
      }
    }
    const cookie = await context.jar.getCookieString(url.href)
    if (cookie !== '') headers.set('cookie', cookie)
    if (step.authorization !== undefined) headers.set('authorization', step.authorization)
    if (step.body !== undefined) headers.set('content-type', 'application/x-www-form-urlencoded')
    let response: Response
    try {
      response = await context.fetch(url.href, {
        method: step.method,
        headers,
        ...(step.body === undefined ? {} : { body: step.body.toString() }),
        ...(context.request?.signal === undefined ? {} : { signal: context.request.signal }),
        redirect: 'manual',
      })
    } catch (cause) {
      if (context.request?.signal?.aborted === true) throw cause
      throw new SsoError('provider_unavailable', `${url.origin} cannot be reached.`, { cause })
    }
    for (const line of response.headers.getSetCookie()) {
      await context.jar.setCookie(line, url.href, { ignoreError: true })
    }
    const onProvider = url.origin === providerOrigin
    if (pendingPrincipal !== undefined && response.status !== 401) {
      const reply = /^\s*Negotiate\s+(\S+)/i.exec(response.headers.get('www-authenticate') ?? '')
      state.principal = await pendingPrincipal.principal(reply?.[1])
      pendingPrincipal = undefined
    }
    const location = response.headers.get('location')
    if (response.status >= 300 && response.status < 400 && location !== null) {
      await response.body?.cancel()
      const next = new URL(location, url)
      if (
        onProvider &&
        next.origin !== providerOrigin &&
        context.otp.attempts > 0 &&
        next.searchParams.get('error') === 'access_denied'
      ) {
        throw context.otp.rejected(refusedOtp)
      }
      if (stop(next)) return { kind: 'stopped', url: next, negotiated }
      const keep = response.status === 307 || response.status === 308
      step = keep && step.method === 'POST' ? { ...step, url: next } : { url: next, method: 'GET' }
      delete step.authorization
      continue
    }
    const challenge = response.headers.get('www-authenticate') ?? ''
    if (response.status === 401 && onProvider && /^\s*Negotiate\b/i.test(challenge)) {
      await response.body?.cancel()
      if (!context.kerberos) return loginNeeded(step)
      if (step.authorization !== undefined) {
        throw new SsoError('kerberos_refused', 'The provider did not accept the Kerberos ticket.')
      }
      context.log('debug', `answering Negotiate at ${url.origin}${url.pathname} for ${service}`)
      const result = await negotiate(service, context.credentials)
      pendingPrincipal = result
      negotiated = true
      step = { ...step, authorization: `Negotiate ${result.token}` }
      continue
    }
    const body = await readPage(response)
    if (!onProvider) {
      return {
        kind: 'page',
        url,
        status: response.status,
        headers: response.headers,
        body,
        negotiated,
      }
    }

    const error = textOf(body, 'kc-error-message')
    const otpForm = formById(body, 'kc-otp-login-form')
    if (otpForm !== undefined) {
      if (!context.kerberos) return loginNeeded(step)
      if (context.otp.attempts > 0) refusedOtp = error
      const code = await context.otp.next(refusedOtp)
      context.log('debug', `submitting a one-time code (try ${context.otp.attempts})`)
      step = formStep(otpForm, url, { otp: code })
      continue
    }
    const kerberosLink = byId(body, 'social-kerberos')?.attributes.get('href')
    if (kerberosLink !== undefined && !kerberosLinkUsed && step.authorization === undefined) {
      if (!context.kerberos) return loginNeeded(step)
      kerberosLinkUsed = true
      step = { url: new URL(kerberosLink, url), method: 'GET' }
      continue
    }
    const auto = autoSubmitForm(body)
    if (auto !== undefined) {
      step = formStep(auto, url, {})
      continue
    }
    if (negotiated && (response.status === 401 || response.status === 403)) {
      throw new SsoError(
        'kerberos_refused',
        `The provider refused the Kerberos sign-in${error === undefined ? '.' : `: ${error}`}`,
      )
    }
    if (isConsentPage(body, url)) {
      throw unexpected(
        'The provider asks you to grant this client access (a consent page); accept it once in a browser, then run this again',
        error ?? textOf(body, 'kc-page-title'),
      )
    }
    if (byId(body, 'kc-form-webauthn') !== undefined) {
      throw unexpected(
        'The provider asks for a security key (WebAuthn), which a script cannot give',
        error,
      )
    }
    if (byId(body, 'kc-form-login') !== undefined) {
      if (!context.kerberos) return loginNeeded(step)
      throw unexpected(
        kerberosLinkUsed
          ? 'The provider shows its password form again after Kerberos'
          : 'The provider asks for a password and offers no Kerberos sign-in (no #social-kerberos link)',
        error,
      )
    }
    throw unexpected(
      `The provider showed a page this login cannot answer (status ${response.status})`,
      error ?? textOf(body, 'kc-page-title') ?? title(body),
    )
  }
  throw new SsoError('login_page_unexpected', `The sign-in took more than ${MAX_STEPS} steps.`)
}
