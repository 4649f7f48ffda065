/**
 * What a refused request gets back: a browser navigation is sent to sign in (or shown a page),
 * an API call gets JSON with `WWW-Authenticate`. Bearer calls are answered by the bearer side.
 */
import { isSsoError, SsoError } from '../errors.js'
import type { RequestLike, ResponseParts } from '../http.js'
import { clearCookie, loginUrl } from './context.js'
import type { SessionFrame } from './frame.js'
import { pageHeaders, renderWith, type PageContent, type SessionPageOptions } from './pages.js'
import { STORE_RETRY_AFTER_S } from './store-errors.js'

/** Builds `session_missing` errors and remembers which of them also expire the session cookie. */
export class SessionRejections {
  /** Rejections whose answer also expires the session cookie (forged, unknown or ended sessions). */
  readonly #clearCookie = new WeakSet<SsoError>()

  missing(clearCookie: boolean, message = 'No valid session.'): SsoError {
    const error = new SsoError('session_missing', message)
    if (clearCookie) this.#clearCookie.add(error)
    return error
  }

  clearsCookie(error: SsoError): boolean {
    return this.#clearCookie.has(error)
  }
}

/**
 * Whether a request is an API call: it carries a bearer token (or several Authorization headers,
 * which the bearer side refuses). Other schemes (`Basic` from a proxy in front) do not hide the
 * session cookie.
 */
export function carriesBearer(request: RequestLike): boolean {
  const values = request.header('authorization')
  if (values.length > 1) return true
  const value = values[0]
  return value !== undefined && /^bearer(\s|$)/i.test(value.trimStart())
}

function isNavigation(request: RequestLike): boolean {
  if (request.method !== 'GET' && request.method !== 'HEAD') return false
  if (request.header('x-requested-with').length > 0) return false
  const mode = request.header('sec-fetch-mode')[0]?.toLowerCase()
  if (mode !== undefined && mode !== 'navigate' && mode !== 'nested-navigate') return false
  return request.header('accept').some((value) => value.toLowerCase().includes('text/html'))
}

function pathAndQuery(url: string): string {
  try {
    const parsed = new URL(url, 'http://ssokit.invalid')
    return parsed.pathname + parsed.search
  } catch {
    return '/'
  }
}

function jsonResponse(
  status: number,
  body: unknown,
  headers: Record<string, string | string[]>,
): ResponseParts {
  return {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
    body: JSON.stringify(body),
  }
}

function errorPage(error: SsoError): PageContent {
  switch (error.code) {
    case 'role_required':
      return {
        title: 'Access denied',
        paragraphs: ['You are signed in, but your account lacks a role this page requires.'],
      }
    case 'session_store_unavailable':
      return {
        title: 'Temporarily unavailable',
        paragraphs: ['The session service cannot be reached. Please try again in a moment.'],
      }
    case 'provider_unavailable':
      return {
        title: 'Temporarily unavailable',
        paragraphs: ['The identity provider cannot be reached. Please try again in a moment.'],
      }
    default:
      return { title: 'Request refused', paragraphs: [`The request was refused (${error.code}).`] }
  }
}

function htmlParts(
  pages: SessionPageOptions | undefined,
  status: number,
  content: PageContent,
  headers: Record<string, string | string[]>,
): ResponseParts {
  return {
    status,
    headers: { ...pageHeaders(pages), ...headers },
    body: renderWith(pages, status, content),
  }
}

/** What the answer to a refused request is built from: any login source's frame and realm. */
export type RejectionConfig = Pick<
  SessionFrame,
  'publicUrl' | 'prefix' | 'sessionCookie' | 'secure' | 'pages'
> & { readonly realm: string }

/** The answer to a request without a bearer token that the session side refused. */
export function rejectSession(
  config: RejectionConfig,
  rejections: SessionRejections,
  error: unknown,
  request: RequestLike,
): ResponseParts {
  if (!isSsoError(error)) {
    return jsonResponse(500, { error: 'internal_error' }, {})
  }
  const headers: Record<string, string | string[]> = {}
  if (rejections.clearsCookie(error))
    headers['set-cookie'] = [clearCookie(config, config.sessionCookie, '/')]
  const navigation = isNavigation(request)
  const realm = `Bearer realm="${config.realm}"`
  switch (error.code) {
    case 'session_missing':
    case 'token_missing': {
      const signIn = loginUrl(config, pathAndQuery(request.url))
      if (navigation) {
        return {
          status: 302,
          headers: { ...headers, location: signIn, 'cache-control': 'no-store' },
          body: '',
        }
      }
      return jsonResponse(
        401,
        { error: error.code, login_url: signIn },
        { ...headers, 'www-authenticate': realm },
      )
    }
    default: {
      const status = error.status
      if (status === 503) headers['retry-after'] = String(error.retryAfter ?? STORE_RETRY_AFTER_S)
      const attribute = error.bearerError
      if (status === 401 || status === 403) {
        headers['www-authenticate'] =
          attribute === undefined ? realm : `${realm}, error="${attribute}"`
      }
      if (navigation) return htmlParts(config.pages, status, errorPage(error), headers)
      return jsonResponse(status, { error: error.code }, headers)
    }
  }
}
