/**
 * A `fetch` that sends a source's access token. A `401` from the resource means the token was
 * refused before its time (revoked, keys rotated): the token is renewed once and the request
 * sent once more; a second `401` is the answer, never a loop.
 */
import type { TokenSource } from './token-source.js'

export type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

/**
 * @example
 * const get = authFetch(clientCredentials({ cern: true, clientId, clientSecret, audience: 'my-api' }))
 * const items = await (await get('https://my-api.cern.ch/items')).json()
 */
export function authFetch(source: TokenSource, inner: Fetch = (i, o) => fetch(i, o)): Fetch {
  return async function fetchWithToken(input, init) {
    // A Request body can be read once; keep a copy for the retry.
    const request = new Request(input, init)
    const retry = request.clone()
    const token = await source.token()
    const first = await inner(withToken(request, token))
    if (first.status !== 401) return first
    const renewed = source.renew === undefined ? await source.token() : await source.renew(token)
    if (renewed === token) return first
    await first.body?.cancel()
    return inner(withToken(retry, renewed))
  }
}

function withToken(request: Request, token: string): Request {
  const headers = new Headers(request.headers)
  headers.set('authorization', `Bearer ${token}`)
  return new Request(request, { headers })
}
