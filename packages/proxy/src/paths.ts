/**
 * The one canonical form of a request path. Rules are matched on it and the same string is sent
 * upstream, so the proxy and the application can never disagree about which path was asked for.
 * Forms that servers read differently (an encoded slash, a backslash, NUL, double encoding,
 * overlong UTF-8, `;` parameters) are refused rather than guessed at.
 */

export interface CanonicalTarget {
  /** Decoded, dot segments removed, duplicate slashes merged: what rules see. */
  readonly path: string
  /** `path` re-encoded for the request line upstream. */
  readonly encodedPath: string
  /** The query with its `?`, exactly as received, or `''`. */
  readonly search: string
}

/** Why a request target was refused (400). */
export type TargetProblem =
  | 'not_origin_form'
  | 'invalid_character'
  | 'encoded_separator'
  | 'double_encoding'
  | 'invalid_encoding'

// Printable ASCII except space, `\`, `;` and DEL: anything else in a raw path is refused.
const RAW_ALLOWED = /^[!-:<-[\]-~]*$/
// Characters a path segment may carry unencoded (RFC 3986 pchar minus `;`, which is refused).
const SEGMENT_SAFE = /[^A-Za-z0-9\-._~!$&'()*+,=:@]/g

function encodeSegment(segment: string): string {
  return segment.replace(SEGMENT_SAFE, (c) => encodeURIComponent(c))
}

/** The canonical path of a request target (`/a/b?x`), or the reason it is refused. */
export function canonicalTarget(target: string): CanonicalTarget | TargetProblem {
  if (!target.startsWith('/')) return 'not_origin_form'
  // A fragment is never part of a request; whatever follows `#` is ignored, as browsers do.
  const hash = target.indexOf('#')
  const withoutFragment = hash === -1 ? target : target.slice(0, hash)
  const q = withoutFragment.indexOf('?')
  const rawPath = q === -1 ? withoutFragment : withoutFragment.slice(0, q)
  const search = q === -1 ? '' : withoutFragment.slice(q)
  if (!RAW_ALLOWED.test(rawPath)) return 'invalid_character'
  if (/%(2f|5c|3b)/i.test(rawPath)) return 'encoded_separator'
  if (/%25/.test(rawPath)) return 'double_encoding'
  let decoded: string
  try {
    decoded = decodeURIComponent(rawPath)
  } catch {
    // A stray `%` or invalid UTF-8 (overlong `%c0%af` among them).
    return 'invalid_encoding'
  }
  // Control characters (NUL from `%00`) and non-breaking tricks decoded from escapes.
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\;]/.test(decoded)) return 'invalid_character'
  const segments: string[] = []
  const parts = decoded.split('/')
  for (let i = 1; i < parts.length; i++) {
    const part = parts[i] ?? ''
    const last = i === parts.length - 1
    if (part === '..') {
      segments.pop()
      if (last) segments.push('')
    } else if (part === '.') {
      if (last) segments.push('')
    } else if (part !== '' || last) {
      segments.push(part)
    }
  }
  // A trailing empty segment is the trailing slash; merge it with a preceding empty one.
  const path = `/${segments.join('/')}`.replace(/\/{2,}/g, '/')
  return {
    path,
    encodedPath: path.split('/').map(encodeSegment).join('/'),
    search,
  }
}

/** The path's segments, without the empty one a trailing slash leaves. */
export function segmentsOf(path: string): string[] {
  const parts = path.split('/').slice(1)
  if (parts.at(-1) === '') parts.pop()
  return parts
}
