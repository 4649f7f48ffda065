/**
 * Cookie parsing and `Set-Cookie` serialisation, bounded so that a hostile `Cookie` header
 * (megabytes, thousands of pairs) costs a fixed amount of work and never throws.
 */

const MAX_HEADER_CHARS = 32 * 1024
const MAX_PAIRS = 200
const NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/

/** Cookie values by name, in the order the browser sent them (first is the most specific). */
export type CookieJar = ReadonlyMap<string, readonly string[]>

export function parseCookies(headerValues: readonly string[]): CookieJar {
  const jar = new Map<string, string[]>()
  let budget = MAX_HEADER_CHARS
  let pairs = 0
  for (const header of headerValues) {
    if (budget <= 0) break
    const text = header.length > budget ? header.slice(0, budget) : header
    budget -= text.length
    for (const part of text.split(';')) {
      if (++pairs > MAX_PAIRS) return jar
      const eq = part.indexOf('=')
      if (eq <= 0) continue
      const name = part.slice(0, eq).trim()
      let value = part.slice(eq + 1).trim()
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"'))
        value = value.slice(1, -1)
      if (!NAME.test(name)) continue
      const list = jar.get(name)
      if (list) list.push(value)
      else jar.set(name, [value])
    }
  }
  return jar
}

/**
 * The first value of one cookie, read with the same bounds and rules as `parseCookies` but
 * without building the whole jar: the per-request path only ever needs the session cookie.
 */
export function cookieValue(headerValues: readonly string[], name: string): string | undefined {
  if (name === '') return undefined
  let budget = MAX_HEADER_CHARS
  let pairs = 0
  for (const header of headerValues) {
    if (budget <= 0) break
    const text = header.length > budget ? header.slice(0, budget) : header
    budget -= text.length
    let start = 0
    while (start <= text.length) {
      if (++pairs > MAX_PAIRS) return undefined
      let end = text.indexOf(';', start)
      if (end === -1) end = text.length
      const eq = text.indexOf('=', start)
      if (eq !== -1 && eq < end && text.slice(start, eq).trim() === name) {
        let value = text.slice(eq + 1, end).trim()
        if (value.length >= 2 && value.startsWith('"') && value.endsWith('"'))
          value = value.slice(1, -1)
        return value
      }
      start = end + 1
    }
  }
  return undefined
}

export interface CookieAttributes {
  readonly path: string
  readonly secure: boolean
  /** Seconds; 0 expires the cookie now. Absent: a browser-session cookie. */
  readonly maxAge?: number
  readonly sameSite?: 'Lax' | 'Strict' | 'None'
}

export function serializeCookie(name: string, value: string, attributes: CookieAttributes): string {
  let cookie = `${name}=${value}; Path=${attributes.path}; HttpOnly; SameSite=${attributes.sameSite ?? 'Lax'}`
  if (attributes.secure) cookie += '; Secure'
  if (attributes.maxAge !== undefined) {
    cookie += `; Max-Age=${Math.max(0, Math.floor(attributes.maxAge))}`
    if (attributes.maxAge <= 0) cookie += '; Expires=Thu, 01 Jan 1970 00:00:00 GMT'
  }
  return cookie
}

export function expireCookie(name: string, attributes: Omit<CookieAttributes, 'maxAge'>): string {
  return serializeCookie(name, '', { ...attributes, maxAge: 0 })
}
