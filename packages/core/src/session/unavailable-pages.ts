/** The 503 pages of the session routes when the store or the provider cannot be reached. */
import { pageResponse } from './pages.js'
import { PROVIDER_RETRY_AFTER_S } from './provider.js'
import { retryAfterOf, STORE_RETRY_AFTER_S } from './store-errors.js'

function unavailablePage(service: string, retryAfter: number, headers: Headers): Response {
  headers.set('retry-after', String(retryAfter))
  headers.set('cache-control', 'no-store')
  return pageResponse(
    503,
    {
      title: 'Sign-in is unavailable',
      paragraphs: [`The ${service} cannot be reached. Please try again in a moment.`],
    },
    headers,
  )
}

export function storeUnavailablePage(error: unknown, headers: Headers = new Headers()): Response {
  return unavailablePage('session service', retryAfterOf(error, STORE_RETRY_AFTER_S), headers)
}

export function providerUnavailablePage(
  error: unknown,
  headers: Headers = new Headers(),
): Response {
  return unavailablePage('identity provider', retryAfterOf(error, PROVIDER_RETRY_AFTER_S), headers)
}
