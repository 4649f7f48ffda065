/**
 * Request bodies read with a bound. A body over the limit is never read whole, whatever its
 * framing: a `Content-Length` above the limit is refused before a byte is read, and a chunked
 * body is abandoned as soon as it passes the limit.
 */

import { ERROR_STATUS, type SsoErrorCode } from '../errors.js'

/** The default of `maxBodySize`: a logout token or a small form fits many times over. */
export const DEFAULT_MAX_BODY_SIZE = 64 * 1024

export type BodyText =
  | { readonly ok: true; readonly text: string }
  /** `too_large`: over the limit (answer 413); `unreadable`: the client went away mid-body. */
  | { readonly ok: false; readonly reason: 'too_large' | 'unreadable' }

const TOO_LARGE = Object.freeze({ ok: false, reason: 'too_large' } as const)
const UNREADABLE = Object.freeze({ ok: false, reason: 'unreadable' } as const)

/** The body of `request` as UTF-8 text, or why not; reads at most `limit` bytes (plus a chunk). */
export async function readBodyText(request: Request, limit: number): Promise<BodyText> {
  const declared = request.headers.get('content-length')
  if (declared !== null && (!/^\d+$/.test(declared.trim()) || Number(declared) > limit)) {
    return TOO_LARGE
  }
  const body = request.body
  if (body === null) return { ok: true, text: '' }
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      size += value.byteLength
      if (size > limit) {
        // Stop reading; the adapter answers and closes the connection instead of draining it.
        reader.cancel().catch(() => undefined)
        return TOO_LARGE
      }
      chunks.push(value)
    }
  } catch {
    return UNREADABLE
  }
  const bytes = new Uint8Array(size)
  let offset = 0
  for (const chunk of chunks) {
    bytes.set(chunk, offset)
    offset += chunk.byteLength
  }
  return { ok: true, text: new TextDecoder().decode(bytes) }
}

/** The answer to a body over the limit: 413, and the connection is not kept for more. */
export function bodyTooLarge(): Response {
  const code: SsoErrorCode = 'body_too_large'
  return new Response(JSON.stringify({ error: code }), {
    status: ERROR_STATUS[code],
    headers: {
      'cache-control': 'no-store',
      'content-type': 'application/json',
      connection: 'close',
    },
  })
}
