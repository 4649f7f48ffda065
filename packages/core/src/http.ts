/**
 * The request and response shapes every adapter speaks to the core.
 *
 * `RequestLike` is deliberately smaller than a web `Request`: the Node bridge can answer it from
 * `IncomingMessage` without copying headers, which keeps a protected route close to the speed of
 * an unprotected one. `fromRequest` adapts a web `Request` (Hono and other fetch-style servers).
 */
export interface RequestLike {
  readonly method: string
  /** The request target as received: a path with its query (`/api?x=1`), or an absolute URL. */
  readonly url: string
  /**
   * Every value of a header by lower-case name, `[]` when absent. Repeated headers keep one entry
   * per occurrence where the server keeps them apart, so a second `Authorization` is visible.
   */
  header(name: string): readonly string[]
}

/** A framework-neutral answer: adapters copy status, headers and body to their own response. */
export interface ResponseParts {
  readonly status: number
  readonly headers: Readonly<Record<string, string | readonly string[]>>
  readonly body: string
}

const EMPTY: readonly string[] = Object.freeze([])

export function fromRequest(request: Request): RequestLike {
  return {
    method: request.method,
    url: request.url,
    header(name) {
      if (name === 'set-cookie') return request.headers.getSetCookie()
      const value = request.headers.get(name)
      return value === null ? EMPTY : [value]
    },
  }
}

/** Turns `ResponseParts` into a web `Response`. */
export function toResponse(parts: ResponseParts): Response {
  const headers = new Headers()
  for (const [name, value] of Object.entries(parts.headers)) {
    if (typeof value === 'string') headers.set(name, value)
    else for (const v of value) headers.append(name, v)
  }
  return new Response(parts.body === '' ? null : parts.body, { status: parts.status, headers })
}
