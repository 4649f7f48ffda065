/**
 * The part of a session configuration that does not depend on how the user signed in: the
 * application's origin, the cookie secrets and names, the store, the route prefix, lifetimes,
 * the body bound and the pages. `createSessionAuth` resolves it for OpenID Connect; another
 * login source (the SAML service provider of `@ssokit/saml`) resolves the same frame, so its
 * sessions get exactly the same cookies, store records' lifetimes and rejections.
 */
import { SsoTypeError } from '../errors.js'
import { DEFAULT_MAX_BODY_SIZE } from './body.js'
import { MemorySessionStore } from './memory-store.js'
import type { SessionPageOptions } from './pages.js'
import type { SessionStore } from './store.js'

const MIN_SECRET_LENGTH = 32
const PREFIX = /^(\/[A-Za-z0-9._~-]+)+$/

/** The options every login source shares, as `createSessionAuth` names them. */
export interface SessionFrameOptions {
  readonly publicUrl: string
  readonly secret: string | readonly string[]
  readonly store?: SessionStore
  readonly prefix?: string
  readonly sessionLifetime?: number
  readonly idleTimeout?: number
  readonly maxBodySize?: number
  /**
   * Sign-ins one browser may be sent to, within two minutes, by the application refusing the
   * session the previous one created, before a loop is declared. Default 5.
   */
  readonly maxLoginAttempts?: number
  readonly cookies?: { readonly insecureHttpForLocalhost?: boolean }
  readonly pages?: SessionPageOptions
}

export interface SessionFrame {
  /** Origin only, no trailing slash. */
  readonly publicUrl: string
  readonly secrets: readonly string[]
  readonly store: SessionStore
  readonly prefix: string
  readonly sessionLifetimeS: number
  readonly idleTimeoutS: number | undefined
  readonly maxBodySize: number
  readonly maxLoginAttempts: number
  readonly secure: boolean
  readonly sessionCookie: string
  readonly transactionCookiePrefix: string
  readonly loopCookie: string
  readonly pages: SessionPageOptions | undefined
}

function fail(message: string, code?: SsoTypeError['code']): never {
  throw new SsoTypeError(message, code)
}

function seconds(
  caller: string,
  value: unknown,
  name: string,
  fallback: number | undefined,
): number | undefined {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    fail(`${caller}: ${name} must be a positive whole number of seconds`)
  }
  return value
}

function resolvePages(caller: string, pages: unknown): SessionPageOptions | undefined {
  if (pages === undefined) return undefined
  if (typeof pages !== 'object' || pages === null)
    fail(`${caller}: pages must be an object`, 'ERR_INVALID_ARG_TYPE')
  const { render, contentSecurityPolicy } = pages as Partial<Record<string, unknown>>
  if (typeof render !== 'function')
    fail(`${caller}: pages.render must be a function`, 'ERR_INVALID_ARG_TYPE')
  if (
    contentSecurityPolicy !== undefined &&
    (typeof contentSecurityPolicy !== 'string' || !/^[\x20-\x7e]+$/.test(contentSecurityPolicy))
  ) {
    fail(`${caller}: pages.contentSecurityPolicy must be a header value on one line`)
  }
  const copy = {
    render: render as SessionPageOptions['render'],
    ...(contentSecurityPolicy === undefined ? {} : { contentSecurityPolicy }),
  }
  return Object.freeze(copy)
}

/** Checks and freezes the shared options; `caller` starts every error message. */
export function resolveSessionFrame(options: SessionFrameOptions, caller: string): SessionFrame {
  const publicUrlInput: unknown = options.publicUrl
  if (publicUrlInput === undefined || publicUrlInput === null || publicUrlInput === '')
    fail(`${caller}: option publicUrl is required`, 'ERR_MISSING_OPTION')
  if (typeof publicUrlInput !== 'string')
    fail(`${caller}: publicUrl must be a string`, 'ERR_INVALID_ARG_TYPE')
  let publicUrl: URL
  try {
    publicUrl = new URL(options.publicUrl)
  } catch {
    return fail(`${caller}: publicUrl must be an absolute URL`)
  }
  if (publicUrl.protocol !== 'https:' && publicUrl.protocol !== 'http:') {
    fail(`${caller}: publicUrl must be an https URL`)
  }
  if (publicUrl.pathname !== '/' || publicUrl.search !== '' || publicUrl.hash !== '') {
    fail(`${caller}: publicUrl must be an origin such as https://app.example.org (no path)`)
  }
  if (publicUrl.username !== '' || publicUrl.password !== '')
    fail(`${caller}: publicUrl must not contain credentials`)

  const insecure = options.cookies?.insecureHttpForLocalhost
  if (insecure !== undefined && typeof insecure !== 'boolean') {
    fail(`${caller}: cookies.insecureHttpForLocalhost must be a boolean`, 'ERR_INVALID_ARG_TYPE')
  }
  const localhostHttp =
    publicUrl.protocol === 'http:' &&
    (publicUrl.hostname === 'localhost' || publicUrl.hostname === '127.0.0.1')
  if (insecure === true && !localhostHttp) {
    fail(
      `${caller}: cookies.insecureHttpForLocalhost is allowed only with an http://localhost or http://127.0.0.1 publicUrl`,
    )
  }
  if (publicUrl.protocol === 'http:' && insecure !== true) {
    fail(
      localhostHttp
        ? `${caller}: an http publicUrl needs cookies.insecureHttpForLocalhost: true (browsers drop Secure cookies over http)`
        : `${caller}: publicUrl must use https; http is allowed only for localhost during development`,
    )
  }
  const secure = insecure !== true

  const secretInput = options.secret
  const secrets =
    typeof secretInput === 'string'
      ? [secretInput]
      : Array.isArray(secretInput)
        ? [...(secretInput as readonly unknown[])]
        : undefined
  if (secrets === undefined || secrets.length === 0) {
    fail(
      `${caller}: option secret is required (a string of at least 32 characters, or a list for rotation)`,
      'ERR_MISSING_OPTION',
    )
  }
  for (const s of secrets) {
    if (typeof s !== 'string' || s.length < MIN_SECRET_LENGTH) {
      fail(`${caller}: every secret must be a string of at least ${MIN_SECRET_LENGTH} characters`)
    }
  }

  const store = options.store ?? new MemorySessionStore()
  for (const method of [
    'get',
    'set',
    'delete',
    'deleteBySubject',
    'deleteBySid',
    'lock',
    'close',
  ] as const) {
    if (typeof store[method] !== 'function')
      fail(`${caller}: store must implement ${method}()`, 'ERR_INVALID_ARG_TYPE')
  }

  const prefix = options.prefix ?? '/auth'
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    fail(`${caller}: prefix must be a path such as /auth (no trailing slash)`)
  }

  const sessionLifetimeS =
    seconds(caller, options.sessionLifetime, 'sessionLifetime', 28_800) ?? 28_800
  const idleTimeoutS = seconds(caller, options.idleTimeout, 'idleTimeout', undefined)

  const maxBodySize = options.maxBodySize ?? DEFAULT_MAX_BODY_SIZE
  if (!Number.isSafeInteger(maxBodySize) || maxBodySize < 1) {
    fail(`${caller}: maxBodySize must be a positive whole number of bytes`)
  }

  const maxLoginAttempts = options.maxLoginAttempts ?? 5
  if (!Number.isSafeInteger(maxLoginAttempts) || maxLoginAttempts < 1) {
    fail(`${caller}: maxLoginAttempts must be a positive integer`)
  }

  return Object.freeze({
    publicUrl: publicUrl.origin,
    secrets: Object.freeze(secrets as string[]),
    store,
    prefix,
    sessionLifetimeS,
    idleTimeoutS,
    maxBodySize,
    maxLoginAttempts,
    secure,
    sessionCookie: secure ? '__Host-ssokit-session' : 'ssokit-session',
    transactionCookiePrefix: secure ? '__Host-ssokit-tx-' : 'ssokit-tx-',
    loopCookie: secure ? '__Host-ssokit-login' : 'ssokit-login',
    pages: resolvePages(caller, options.pages),
  })
}
