/**
 * The bridge between Node's `IncomingMessage`/`ServerResponse` and ssokit's request and response
 * shapes. Express and Fastify adapters share it. It never buffers a body and patches no globals.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { ReadableStream as NodeReadableStream } from 'node:stream/web'
import type { TLSSocket } from 'node:tls'
import type { RequestLike, ResponseParts } from '@ssokit/core'

const EMPTY: readonly string[] = Object.freeze([])

/**
 * Every occurrence of every header. Request objects that are not a real `IncomingMessage`
 * (light-my-request's, behind `fastify.inject()`) have no `headersDistinct`; `headers` is then the
 * only view, and a repeated header arrives as an array there.
 */
function distinct(req: IncomingMessage): NodeJS.Dict<string[]> {
  const own = (req as Partial<Pick<IncomingMessage, 'headersDistinct'>>).headersDistinct
  if (own !== undefined) return own
  const out: NodeJS.Dict<string[]> = {}
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) out[name] = typeof value === 'string' ? [value] : value
  }
  return out
}

/** The `RequestLike` of a Node request; a class, so a request costs one small object. */
class NodeRequestLike implements RequestLike {
  readonly method: string
  readonly url: string
  readonly #req: IncomingMessage

  constructor(req: IncomingMessage, url: string | undefined) {
    this.#req = req
    this.method = req.method ?? 'GET'
    this.url = url ?? req.url ?? '/'
  }

  header(name: string): readonly string[] {
    return headerValues(this.#req, name)
  }
}

/**
 * A `RequestLike` view of a Node request, without copying its headers. Values are read from
 * `rawHeaders`, one entry per occurrence: `req.headers` silently drops a second `Authorization`,
 * which the core must see to reject the request as ambiguous.
 *
 * @param url The request target to report instead of `req.url` (Express's `originalUrl`).
 */
export function toRequestLike(req: IncomingMessage, url?: string): RequestLike {
  return new NodeRequestLike(req, url)
}

/** Whether a raw header name is `lower` (lower case) in any case, without building a string. */
function sameName(raw: string, lower: string): boolean {
  if (raw.length !== lower.length) return false
  if (raw === lower) return true
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i)
    // ASCII letters fold to lower case; anything else must match as it is.
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== lower.charCodeAt(i)) return false
  }
  return true
}

/** Every value of one header (`name` in lower case), scanning `rawHeaders` once. */
function headerValues(req: IncomingMessage, name: string): readonly string[] {
  const raw = (req as Partial<Pick<IncomingMessage, 'rawHeaders'>>).rawHeaders
  if (raw === undefined) return distinct(req)[name] ?? EMPTY
  let found: string[] | undefined
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const key = raw[i]
    const value = raw[i + 1]
    if (key !== undefined && value !== undefined && sameName(key, name)) {
      ;(found ??= []).push(value)
    }
  }
  return found ?? EMPTY
}

export interface WebRequestOptions {
  /**
   * Take the scheme and host from `X-Forwarded-Proto` and `X-Forwarded-Host`. Only set this when
   * a proxy you control overwrites those headers; otherwise any client can choose them.
   */
  readonly trustProxy?: boolean
  /** The public origin of the app (`https://app.example.org`); wins over every header. */
  readonly publicUrl?: string | URL
  /** The request target to use instead of `req.url` (Express's `originalUrl`). */
  readonly url?: string
}

function firstValue(headers: NodeJS.Dict<string[]>, name: string): string | undefined {
  const value = headers[name]?.[0]
  // A proxy chain appends: the first entry is the one the client-facing proxy wrote.
  return value?.split(',')[0]?.trim() || undefined
}

function origin(
  req: IncomingMessage,
  headers: NodeJS.Dict<string[]>,
  options: WebRequestOptions,
): string {
  if (options.publicUrl !== undefined) return new URL(options.publicUrl).origin
  let proto = (req.socket as Partial<TLSSocket> | undefined)?.encrypted === true ? 'https' : 'http'
  let host = headers.host?.[0] ?? headers[':authority']?.[0]
  if (options.trustProxy === true) {
    const forwardedProto = firstValue(headers, 'x-forwarded-proto')
    if (forwardedProto === 'http' || forwardedProto === 'https') proto = forwardedProto
    host = firstValue(headers, 'x-forwarded-host') ?? host
  }
  return `${proto}://${host ?? 'localhost'}`
}

/** Methods the web `Request` constructor refuses (fetch's forbidden methods). */
const FORBIDDEN_METHODS: ReadonlySet<string> = new Set(['CONNECT', 'TRACE', 'TRACK'])

function hasBody(req: IncomingMessage): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return false
  const length = req.headers['content-length']
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}

/**
 * Whether something (a body parser mounted before the session routes) has already read the
 * body of `req`: what is left of its stream is nothing, not the body.
 */
export function bodyAlreadyRead(req: IncomingMessage): boolean {
  return hasBody(req) && (req.readableDidRead || req.readableEnded)
}

/**
 * The body of `req` as a web stream, read from the socket only as the consumer pulls. Cancelling
 * it (a route that has read enough) only stops reading: it does not destroy the request, as
 * `Readable.toWeb`'s cancel does, so the answer (a 413) is written on a live connection, which
 * Node closes after it (`Connection: close`) instead of draining the rest of the body.
 */
function bodyStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  if (bodyAlreadyRead(req)) {
    return new ReadableStream({
      start(controller) {
        controller.error(new Error('The request body was already read.'))
      },
    })
  }
  let stop = (): void => undefined
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const onData = (chunk: Buffer): void => {
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
          if ((controller.desiredSize ?? 0) <= 0) req.pause()
        }
        const onEnd = (): void => {
          stop()
          controller.close()
        }
        const onError = (error: Error): void => {
          stop()
          controller.error(error)
        }
        // Once the socket closes mid-body, the body will not end.
        const onClose = (): void => {
          if (!req.complete) onError(new Error('The client closed the connection mid-body.'))
        }
        stop = () => {
          req.off('data', onData)
          req.off('end', onEnd)
          req.off('error', onError)
          req.off('close', onClose)
          req.pause()
        }
        req.on('data', onData)
        req.on('end', onEnd)
        req.on('error', onError)
        req.on('close', onClose)
        req.pause()
      },
      pull() {
        req.resume()
      },
      cancel() {
        stop()
      },
    },
    { highWaterMark: 1 },
  )
}

/**
 * A web `Request` for a Node request, for the routes that need one (login, callback, logout).
 * The body is streamed from `req` as the consumer reads it, never collected first.
 */
export function toWebRequest(req: IncomingMessage, options: WebRequestOptions = {}): Request {
  const all = distinct(req)
  const url = new URL(options.url ?? req.url ?? '/', origin(req, all, options))
  const headers = new Headers()
  for (const [name, values] of Object.entries(all)) {
    // HTTP/2 pseudo-headers (":path") are not valid header names in a web Request.
    if (values === undefined || name.startsWith(':')) continue
    for (const value of values) headers.append(name, value)
  }
  const method = req.method ?? 'GET'
  if (FORBIDDEN_METHODS.has(method.toUpperCase())) {
    // A route refuses these with 405 and its Allow list, so it must see the method; the
    // constructor would throw. Their bodies are never read.
    const request = new Request(url, { method: 'GET', headers })
    Object.defineProperty(request, 'method', { value: method, enumerable: true })
    return request
  }
  const init: RequestInit & { duplex?: 'half' } = { method, headers }
  if (hasBody(req)) {
    init.body = bodyStream(req)
    // Required by undici for a streamed request body.
    init.duplex = 'half'
  }
  return new Request(url, init)
}

/** Writes `ResponseParts` (a rejection from the core) to a Node response and ends it. */
export function sendParts(res: ServerResponse, parts: ResponseParts): void {
  res.statusCode = parts.status
  for (const [name, value] of Object.entries(parts.headers)) res.setHeader(name, value)
  res.end(parts.body)
}

/**
 * Writes a web `Response` to a Node response, streaming its body with backpressure. Resolves
 * once the body is written, or once the client has gone away.
 */
export async function sendWebResponse(res: ServerResponse, response: Response): Promise<void> {
  res.statusCode = response.status
  if (response.statusText !== '') res.statusMessage = response.statusText
  const cookies = response.headers.getSetCookie()
  if (cookies.length > 0) res.setHeader('set-cookie', cookies)
  for (const [name, value] of response.headers) {
    if (name !== 'set-cookie') res.setHeader(name, value)
  }
  if (response.body === null) {
    res.end()
    return
  }
  try {
    await pipeline(Readable.fromWeb(response.body as NodeReadableStream), res)
  } catch {
    // The client closed the connection first; there is nobody left to answer.
    res.destroy()
  }
}
