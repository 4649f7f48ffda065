/**
 * The minimal compact-JWS reading the fast path needs. Every rule mirrors what `jose.jwtVerify`
 * accepts and rejects (segment count, base64url alphabet, strict UTF-8, top-level JSON objects,
 * `crit`, `b64`), and the differential test holds the two to the same answers.
 */

const URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
/** Every UTF-16 code unit to its base64url value, -1 outside the alphabet. */
const DECODE = new Int8Array(65536).fill(-1)
for (let i = 0; i < URL_ALPHABET.length; i++) DECODE[URL_ALPHABET.charCodeAt(i)] = i

/**
 * Decodes base64url the way jose does on Node 20: the strict alphabet takes a fast loop; anything
 * else (padding, ASCII whitespace) goes through the same `atob`-based route jose uses.
 */
export function decodeBase64url(input: string): Uint8Array | undefined {
  const out = new Uint8Array(decodedLength(input))
  const written = decodeInto(input, out, 0)
  return written === -1 ? decodeForgiving(input) : out
}

/** Bytes a strict base64url string decodes to (an upper bound for any other string). */
function decodedLength(input: string): number {
  const rest = input.length & 3
  return (input.length >> 2) * 3 + (rest === 0 ? 0 : rest - 1)
}

/** Strict base64url into `out` at `offset`: the number of bytes written, or -1 (not strict). */
function decodeInto(input: string, out: Uint8Array, offset: number): number {
  const length = input.length
  const rest = length & 3
  if (rest === 1) return -1
  const full = length - rest
  const table = DECODE
  let bad = 0
  let o = offset
  for (let i = 0; i < full; i += 4) {
    const a = table[input.charCodeAt(i)] as number
    const b = table[input.charCodeAt(i + 1)] as number
    const c = table[input.charCodeAt(i + 2)] as number
    const d = table[input.charCodeAt(i + 3)] as number
    bad |= a | b | c | d
    const n = (a << 18) | (b << 12) | (c << 6) | d
    out[o] = n >> 16
    out[o + 1] = n >> 8
    out[o + 2] = n
    o += 3
  }
  if (rest > 0) {
    const a = table[input.charCodeAt(full)] as number
    const b = table[input.charCodeAt(full + 1)] as number
    const c = rest === 3 ? (table[input.charCodeAt(full + 2)] as number) : 0
    bad |= a | b | c
    const n = (a << 18) | (b << 12) | (c << 6)
    out[o++] = n >> 16
    if (rest === 3) out[o++] = n >> 8
  }
  return bad < 0 ? -1 : o - offset
}

/**
 * One reusable buffer for the bytes of the token being checked: verification is synchronous from
 * decoding to `crypto.verify`, so no two tokens use it at once. Callers that wait copy out first.
 */
let scratch = new Uint8Array(8192)

function scratchOf(size: number): Uint8Array {
  if (scratch.length < size) scratch = new Uint8Array(size * 2)
  return scratch
}

function decodeForgiving(input: string): Uint8Array | undefined {
  if (input.includes('+') || input.includes('/')) return undefined
  let binary: string
  try {
    binary = atob(input.replace(/-/g, '+').replace(/_/g, '/'))
  } catch {
    return undefined
  }
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true })
// eslint-disable-next-line no-control-regex
const ASCII = /^[\u0000-\u007f]*$/

/** A plain JSON object (not an array, not a class instance), as jose's `isObject`. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  if (Object.prototype.toString.call(value) !== '[object Object]') return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === null || Object.getPrototypeOf(proto) === null
}

/**
 * Parses a base64url JSON object segment. `JSON.parse` keeps a `__proto__` member as an own data
 * property, so a hostile name cannot reach any prototype.
 */
export function decodeJsonObject(segment: string): Record<string, unknown> | undefined {
  // jose's own decoding (`atob` after the alphabet swap): identical answers by construction.
  if (segment.includes('+') || segment.includes('/')) return undefined
  let binary: string
  try {
    binary = atob(segment.replace(/-/g, '+').replace(/_/g, '/'))
  } catch {
    return undefined
  }
  let text = binary
  if (!ASCII.test(binary)) {
    // Multi-byte UTF-8 (or a byte-order mark, or invalid UTF-8): decode strictly, as jose does.
    const bytes = new Uint8Array(binary.length)
    for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
    try {
      text = strictUtf8.decode(bytes)
    } catch {
      return undefined
    }
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  return isPlainObject(value) ? value : undefined
}

export interface CompactJws {
  readonly header: Record<string, unknown>
  readonly alg: string
  /** `header.payload` as bytes, what the signature covers. May be a view of the scratch buffer. */
  readonly signingInput: Uint8Array
  /** May be a view of the scratch buffer. */
  readonly signature: Uint8Array
  readonly payloadSegment: string
}

/** Why a compact JWS was refused before any key was looked at (for logs, never for clients). */
export type CompactFailure =
  | 'not_compact'
  | 'bad_header'
  | 'bad_crit'
  | 'unencoded_payload'
  | 'alg_missing'
  | 'alg_not_allowed'
  | 'bad_signature_encoding'

const encoder = new TextEncoder()

/**
 * Decoded headers by their segment. A provider signs with a handful of keys, so its tokens share
 * a few headers; the cache is small and emptied when full, so junk headers cannot grow it.
 */
const HEADER_CACHE_SIZE = 64
const headers = new Map<
  string,
  { readonly header: Record<string, unknown>; readonly b64: boolean }
>()

/**
 * Splits and checks a compact JWS up to the point where a key is needed. Returns the failure
 * reason as a string instead of throwing: refusing junk must stay cheap under a flood.
 */
export function parseCompact(
  token: string,
  allowed: ReadonlySet<string>,
): CompactJws | CompactFailure {
  const first = token.indexOf('.')
  if (first === -1) return 'not_compact'
  const second = token.indexOf('.', first + 1)
  if (second === -1 || token.indexOf('.', second + 1) !== -1) return 'not_compact'
  const headerSegment = token.slice(0, first)
  let parsed = headers.get(headerSegment)
  if (parsed === undefined) {
    const decoded = decodeJsonObject(headerSegment)
    if (decoded === undefined) return 'bad_header'
    const b64 = checkCrit(decoded)
    if (b64 === undefined) return 'bad_crit'
    parsed = { header: Object.freeze(decoded), b64 }
    if (headers.size >= HEADER_CACHE_SIZE) headers.clear()
    headers.set(headerSegment, parsed)
  }
  const { header, b64 } = parsed
  const alg = header.alg
  if (typeof alg !== 'string' || alg === '') return 'alg_missing'
  if (!allowed.has(alg)) return 'alg_not_allowed'
  // A JWT never uses an unencoded payload (RFC 7797 §7); jose refuses it after the signature.
  if (!b64) return 'unencoded_payload'
  // A non-ASCII character in the payload segment fails its base64url decoding after the
  // signature check, as in jose; in the header segment it has failed already.
  const signatureSegment = token.slice(second + 1)
  // Worst case: three UTF-8 bytes per character of the signed part, then the signature.
  const buffer = scratchOf(second * 3 + decodedLength(signatureSegment))
  const { written: inputLength } = encoder.encodeInto(token.slice(0, second), buffer)
  const signatureLength = decodeInto(signatureSegment, buffer, inputLength)
  let signature: Uint8Array | undefined
  if (signatureLength === -1) {
    signature = decodeForgiving(signatureSegment)
    if (signature === undefined) return 'bad_signature_encoding'
  } else {
    signature = buffer.subarray(inputLength, inputLength + signatureLength)
  }
  return {
    header,
    alg,
    signingInput: buffer.subarray(0, inputLength),
    signature,
    payloadSegment: token.slice(first + 1, second),
  }
}

/** RFC 7515 §4.1.11 with `b64` as the only understood extension; `undefined` = refuse. */
function checkCrit(header: Record<string, unknown>): boolean | undefined {
  if (!Object.hasOwn(header, 'crit') || header.crit === undefined) return true
  const crit = header.crit
  if (!Array.isArray(crit) || crit.length === 0) return undefined
  for (const name of crit as unknown[]) {
    if (typeof name !== 'string' || name === '') return undefined
  }
  for (const name of crit as string[]) {
    if (name !== 'b64') return undefined
    if (!Object.hasOwn(header, 'b64') || header.b64 === undefined) return undefined
  }
  return typeof header.b64 === 'boolean' ? header.b64 : undefined
}
