/**
 * A `fetch` for page loads. Node's own `fetch` always sends `Sec-Fetch-Mode: cors`, which tells a
 * site the request is a script's API call: sites then answer `401` instead of redirecting to the
 * sign-in. This one sends the headers it is given and nothing else, and never follows redirects.
 */
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { Readable } from 'node:stream'

export const navigationFetch: typeof fetch = (input, init) =>
  new Promise<Response>((resolve, reject) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    const headers: Record<string, string> = {}
    new Headers(init?.headers).forEach((value, name) => {
      headers[name] = value
    })
    const body = typeof init?.body === 'string' ? init.body : undefined
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body))
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest
    const signal = init?.signal ?? undefined
    const options = { method: init?.method ?? 'GET', headers, timeout: 30_000 }
    // Node's own `signal` option also ends a request whose signal was aborted before it began.
    const req = send(url, signal === undefined ? options : { ...options, signal }, (res) => {
      const out = new Headers()
      for (let i = 0; i < res.rawHeaders.length; i += 2) {
        out.append(res.rawHeaders[i] ?? '', res.rawHeaders[i + 1] ?? '')
      }
      const status = res.statusCode ?? 502
      const empty = status === 204 || status === 304 || init?.method === 'HEAD'
      if (empty) res.resume()
      resolve(
        new Response(empty ? null : (Readable.toWeb(res) as ReadableStream<Uint8Array>), {
          status,
          statusText: res.statusMessage ?? '',
          headers: out,
        }),
      )
    })
    req.on('timeout', () => {
      req.destroy(new Error(`no answer from ${url.origin} within 30 s`))
    })
    req.on('error', reject)
    req.end(body)
  })
