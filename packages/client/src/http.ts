/**
 * Transport rules for every request the client makes: `https` only, except to loopback
 * addresses (a development provider), and token-endpoint bodies read up to a fixed size.
 */
import { SsoError, SsoTypeError } from '@ssokit/core/errors'

/** A token response is a few kilobytes; anything near this is not one. */
export const MAX_RESPONSE_BYTES = 256 * 1024

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]'])

export function isLoopback(url: URL): boolean {
  const host = url.hostname.toLowerCase()
  return (
    LOOPBACK_NAMES.has(host) || host.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(host)
  )
}

/** Whether a request to `url` may go out: `https`, or `http` to loopback. */
export function isSecureEnough(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url))
}

/** Checks an issuer given in the options; a mistake is a `TypeError` at construction. */
export function checkIssuerOption(caller: string, issuer: unknown): URL {
  if (typeof issuer !== 'string' || issuer === '') {
    throw new SsoTypeError(`${caller}: issuer must be a URL string`, 'ERR_INVALID_ARG_TYPE')
  }
  let url: URL
  try {
    url = new URL(issuer)
  } catch {
    throw new SsoTypeError(`${caller}: issuer must be an absolute URL`)
  }
  if (!isSecureEnough(url)) {
    throw new SsoTypeError(
      `${caller}: issuer must use https (plain http only on loopback: localhost, 127.0.0.1, ::1)`,
    )
  }
  return url
}

/** Refuses an endpoint the provider named that is not secure enough, before anything is sent. */
export function checkEndpoint(url: URL, what: string): void {
  if (!isSecureEnough(url)) {
    throw new SsoError(
      'insecure_transport',
      `The identity provider's ${what} is not https; nothing was sent to it.`,
    )
  }
}

/**
 * `fetch` with the body read up to `MAX_RESPONSE_BYTES`: a larger answer is refused as
 * `token_response_invalid` instead of being buffered. Redirects are never followed
 * (oauth4webapi asks for `redirect: 'manual'`; this keeps to it whatever the caller's fetch does).
 */
export function limitedFetch(inner: typeof fetch): typeof fetch {
  return async (input, init) => {
    const response = await inner(input, { ...init, redirect: 'manual' })
    const declared = Number(response.headers.get('content-length') ?? '0')
    if (declared > MAX_RESPONSE_BYTES) {
      await response.body?.cancel()
      throw tooLarge()
    }
    const reader = response.body?.getReader()
    const chunks: Uint8Array[] = []
    let size = 0
    if (reader !== undefined) {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        size += value.byteLength
        if (size > MAX_RESPONSE_BYTES) {
          await reader.cancel()
          throw tooLarge()
        }
        chunks.push(value)
      }
    }
    const body = Buffer.concat(chunks)
    return new Response(response.status === 204 || response.status === 304 ? null : body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    })
  }
}

function tooLarge(): SsoError {
  return new SsoError(
    'token_response_invalid',
    `The identity provider's answer is larger than ${MAX_RESPONSE_BYTES} bytes; it was not read.`,
  )
}
