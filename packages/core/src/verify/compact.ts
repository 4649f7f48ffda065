/**
 * The minimal compact-JWS reading the fast path needs. Every rule mirrors what `jose.jwtVerify`
 * accepts and rejects (segment count, strict UTF-8, top-level JSON objects, `crit`, `b64`), with
 * one deliberate difference: each segment must be canonical unpadded base64url (RFC 7515 §2,
 * catalogue A22), where jose's `atob` also takes padding, whitespace and set unused low bits. So a
 * token has exactly one spelling, and a cache or replay check keyed by it cannot be sidestepped.
 * The differential test holds the two to the same answers on canonical input.
 */

const URL_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
/** Every byte to its base64url value, -1 outside the alphabet. */
const DECODE = new Int8Array(256).fill(-1)
for (let i = 0; i < URL_ALPHABET.length; i++) DECODE[URL_ALPHABET.charCodeAt(i)] = i

const encoder = new TextEncoder()
const strictUtf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * One reusable buffer for the bytes of the token being checked: verification is synchronous from
 * decoding to `crypto.verify`, so no two tokens use it at once. Callers that wait copy out first.
 */
let scratch = new Uint8Array(8192)

function scratchOf(size: number): Uint8Array {
  if (scratch.length < size) scratch = new Uint8Array(size * 2)
  return scratch
}

/** Where `isAscii` writes; only the byte count matters, so it is never read. */
let probe = new Uint8Array(8192)

/**
 * Whether a string is ASCII: its UTF-8 form then has one byte a character. A string longer than
 * the probe buffer makes it grow (bounded by the maximum token length).
 */
function isAscii(text: string): boolean {
  if (probe.length < text.length) probe = new Uint8Array(text.length * 2)
  const { read, written } = encoder.encodeInto(text, probe)
  return read === text.length && written === text.length
}

/**
 * Decodes canonical base64url (the alphabet only, no padding, unused bits zero) from the ASCII bytes at `from..to`,
 * in place: the decoded bytes start at `from`, behind the bytes still to be read. Returns their
 * number, or -1 for any other input. For strict input this is exactly what `atob` decodes to.
 */
function decodeInPlace(bytes: Uint8Array, from: number, to: number): number {
  const length = to - from
  const rest = length & 3
  if (rest === 1) return -1
  const full = to - rest
  const table = DECODE
  let bad = 0
  let o = from
  for (let i = from; i < full; i += 4) {
    const a = table[bytes[i] as number] as number
    const b = table[bytes[i + 1] as number] as number
    const c = table[bytes[i + 2] as number] as number
    const d = table[bytes[i + 3] as number] as number
    bad |= a | b | c | d
    const n = (a << 18) | (b << 12) | (c << 6) | d
    bytes[o] = n >> 16
    bytes[o + 1] = n >> 8
    bytes[o + 2] = n
    o += 3
  }
  if (rest > 0) {
    const a = table[bytes[full] as number] as number
    const b = table[bytes[full + 1] as number] as number
    const c = rest === 3 ? (table[bytes[full + 2] as number] as number) : 0
    bad |= a | b | c
    // The unused low bits of the last character must be zero: one spelling per byte string.
    if ((rest === 2 ? b & 0x0f : c & 0x03) !== 0) bad = -1
    const n = (a << 18) | (b << 12) | (c << 6)
    bytes[o++] = n >> 16
    if (rest === 3) bytes[o++] = n >> 8
  }
  return bad < 0 ? -1 : o - from
}

/** Whether a segment is canonical unpadded base64url: the alphabet only, unused bits zero. */
export function isCanonicalSegment(segment: string): boolean {
  const length = segment.length
  const rest = length & 3
  if (rest === 1) return false
  for (let i = 0; i < length; i++) {
    const code = segment.charCodeAt(i)
    if (code > 127 || DECODE[code] === -1) return false
  }
  if (rest === 0) return true
  const last = DECODE[segment.charCodeAt(length - 1)] as number
  return (rest === 2 ? last & 0x0f : last & 0x03) === 0
}

/**
 * A canonical base64url segment's bytes as a Latin-1 string (through `atob`, as jose decodes it),
 * or `undefined` for anything else.
 */
function decodeBinary(segment: string): string | undefined {
  if (!isCanonicalSegment(segment)) return undefined
  try {
    return atob(segment.replace(/-/g, '+').replace(/_/g, '/'))
  } catch {
    return undefined
  }
}

function latin1Bytes(binary: string): Uint8Array {
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}

/**
 * A segment's bytes as text, as jose reads the claims (strict UTF-8, a leading byte-order mark
 * dropped), or `undefined` when they are not base64url or not UTF-8.
 */
function decodeText(segment: string): string | undefined {
  const binary = decodeBinary(segment)
  if (binary === undefined) return undefined
  // ASCII bytes are already the text; anything else is decoded strictly.
  if (isAscii(binary)) return binary
  try {
    return strictUtf8.decode(latin1Bytes(binary))
  } catch {
    return undefined
  }
}

/** A plain JSON object (not an array, not a class instance), as jose's `isObject`. */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false
  if (Object.prototype.toString.call(value) !== '[object Object]') return false
  const proto: unknown = Object.getPrototypeOf(value)
  return proto === null || Object.getPrototypeOf(proto) === null
}

/**
 * `JSON.parse` of a header or claims text, `undefined` unless it is a top-level object.
 * `JSON.parse` keeps a `__proto__` member as an own data property, so a hostile name cannot reach
 * any prototype.
 */
export function parseJsonObject(text: string): Record<string, unknown> | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  // `JSON.parse` makes primitives, arrays and plain objects only.
  return typeof value === 'object' && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined
}

/** Parses a base64url JSON object segment. */
export function decodeJsonObject(segment: string): Record<string, unknown> | undefined {
  const text = decodeText(segment)
  return text === undefined ? undefined : parseJsonObject(text)
}

export interface CompactJws {
  readonly header: Record<string, unknown>
  readonly alg: string
  /** `header.payload` as bytes, what the signature covers. May be a view of the scratch buffer. */
  readonly signingInput: Uint8Array
  /** May be a view of the scratch buffer. */
  readonly signature: Uint8Array
  /** The payload as jose decodes it, or `undefined` when it is not base64url of UTF-8 text. */
  readonly payloadText: string | undefined
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

/**
 * Decoded headers by their segment. A provider signs with a handful of keys, so its tokens share
 * a few headers; the cache is small and emptied when full, so junk headers cannot grow it.
 */
const HEADER_CACHE_SIZE = 64

interface ParsedHeader {
  readonly header: Record<string, unknown>
  readonly b64: boolean
}

const headers = new Map<string, ParsedHeader>()
/** The last header seen, compared in place: most tokens in a row share it. */
let lastSegment = ''
let lastParsed: ParsedHeader | undefined

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
  let parsed = lastParsed
  if (parsed === undefined || first !== lastSegment.length || !token.startsWith(lastSegment)) {
    const headerSegment = token.slice(0, first)
    parsed = headers.get(headerSegment)
    if (parsed === undefined) {
      const decoded = decodeJsonObject(headerSegment)
      if (decoded === undefined) return 'bad_header'
      const b64 = checkCrit(decoded)
      if (b64 === undefined) return 'bad_crit'
      parsed = { header: Object.freeze(decoded), b64 }
      if (headers.size >= HEADER_CACHE_SIZE) headers.clear()
      headers.set(headerSegment, parsed)
    }
    lastSegment = headerSegment
    lastParsed = parsed
  }
  const { header, b64 } = parsed
  const alg = header.alg
  if (typeof alg !== 'string' || alg === '') return 'alg_missing'
  if (!allowed.has(alg)) return 'alg_not_allowed'
  // A JWT never uses an unencoded payload (RFC 7797 §7); jose refuses it after the signature.
  if (!b64) return 'unencoded_payload'
  // Decoded now, parsed only once the signature holds: a payload that fails to decode is refused
  // after that check, as in jose.
  const payloadText = decodeText(token.slice(first + 1, second))
  // The whole token as bytes at once. When it is ASCII, its first `second` bytes are the signing
  // input and the signature decodes in place behind them.
  const buffer = scratchOf(second * 3 + token.length)
  const { read, written } = encoder.encodeInto(token, buffer)
  let inputLength = second
  let signature: Uint8Array | undefined
  if (read === token.length && written === token.length) {
    const signatureLength = decodeInPlace(buffer, second + 1, written)
    if (signatureLength !== -1) {
      signature = new Uint8Array(buffer.buffer, second + 1, signatureLength)
    }
  } else {
    inputLength = encoder.encodeInto(token.slice(0, second), buffer).written
  }
  // Padding, whitespace, a stray character or set unused bits: not one of a token's spellings.
  if (signature === undefined) return 'bad_signature_encoding'
  return {
    header,
    alg,
    signingInput: new Uint8Array(buffer.buffer, 0, inputLength),
    signature,
    payloadText,
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
