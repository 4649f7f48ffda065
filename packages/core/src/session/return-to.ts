/**
 * Where a browser may be sent after login: only a path on this application's own origin.
 * Everything a browser could read as another origin (`//host`, `/\host`, `https:host`, schemes,
 * whitespace or control characters that parsers strip) falls back to `/`.
 */

const BASE = 'http://ssokit.invalid'
const MAX_LENGTH = 2048
// Control characters, whitespace, DEL, backslash and anything outside printable ASCII: browsers
// strip or reinterpret them, which is how `/\t/evil.example` becomes `//evil.example`.
// eslint-disable-next-line no-control-regex
const UNSAFE_RAW = /[\x00-\x20\x7f-\uffff\\]/
// eslint-disable-next-line no-control-regex
const UNSAFE_DECODED = /[\x00-\x1f\x7f\\]/

/**
 * Returns `value` normalised when it is a same-origin path that starts with exactly one `/`
 * followed by neither `/` nor `\`, else `/`.
 */
export function safeReturnTo(value: string | null | undefined): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LENGTH) return '/'
  if (!value.startsWith('/') || value.startsWith('//') || UNSAFE_RAW.test(value)) return '/'
  let decoded: string
  try {
    decoded = decodeURIComponent(value)
  } catch {
    return '/'
  }
  if (UNSAFE_DECODED.test(decoded) || decoded.startsWith('//') || /^\/\s/.test(decoded)) return '/'
  let url: URL
  try {
    url = new URL(value, BASE)
  } catch {
    return '/'
  }
  if (url.origin !== BASE) return '/'
  const result = url.pathname + url.search + url.hash
  if (!result.startsWith('/') || result.startsWith('//')) return '/'
  return result
}
