/**
 * Keys derived from the configured session secrets. The first secret seals and signs; every
 * secret opens and verifies, so a secret can be rotated without logging everyone out.
 * Sealing is a JWE (`dir` + `A256GCM`, through jose); signing is HMAC-SHA-256 through
 * `node:crypto`, synchronous and several times cheaper than WebCrypto on the per-request path.
 */
import {
  createHash,
  createHmac,
  createSecretKey,
  hkdfSync,
  timingSafeEqual,
  type KeyObject,
} from 'node:crypto'

import { base64url, EncryptJWT, decodeProtectedHeader, jwtDecrypt, type JWTPayload } from 'jose'

interface DerivedKey {
  readonly kid: string
  readonly encryption: Uint8Array
  readonly mac: KeyObject
}

const SALT = 'ssokit session secret v1'
const MAX_SIGNED_LENGTH = 512
const MAX_SEALED_LENGTH = 8192
/** An HMAC-SHA-256 in unpadded base64url. */
const MAC_CHARS = 43

function hkdf(secret: string, info: string, bytes: number): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', secret, SALT, info, bytes))
}

function derive(secret: string): DerivedKey {
  return {
    kid: base64url.encode(hkdf(secret, 'ssokit key id', 6)),
    encryption: hkdf(secret, 'ssokit cookie encryption', 32),
    mac: createSecretKey(hkdf(secret, 'ssokit cookie signature', 32)),
  }
}

function mac(key: DerivedKey, purpose: string, value: string): string {
  return createHmac('sha256', key.mac).update(`${purpose}:${value}`).digest('base64url')
}

export class Keyring {
  readonly #secrets: readonly string[]
  #keys: readonly DerivedKey[] | undefined

  constructor(secrets: readonly string[]) {
    this.#secrets = secrets
  }

  #derived(): readonly DerivedKey[] {
    this.#keys ??= this.#secrets.map(derive)
    return this.#keys
  }

  #current(): DerivedKey {
    const [first] = this.#derived()
    if (!first) throw new Error('no session secret configured')
    return first
  }

  /** Seals `payload` for `purpose` until `expiresAt` (seconds since the epoch). */
  async seal(
    payload: JWTPayload,
    purpose: string,
    issuedAt: number,
    expiresAt: number,
  ): Promise<string> {
    const key = this.#current()
    return new EncryptJWT(payload)
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: key.kid })
      .setAudience(purpose)
      .setIssuedAt(issuedAt)
      .setExpirationTime(expiresAt)
      .encrypt(key.encryption)
  }

  /** The payload of a sealed value, or `undefined` when it is forged, expired or unreadable. */
  async open(sealed: string, purpose: string, now: number): Promise<JWTPayload | undefined> {
    if (sealed.length === 0 || sealed.length > MAX_SEALED_LENGTH) return undefined
    try {
      const { kid } = decodeProtectedHeader(sealed)
      const key = this.#derived().find((k) => k.kid === kid)
      if (!key) return undefined
      const { payload } = await jwtDecrypt(sealed, key.encryption, {
        audience: purpose,
        currentDate: new Date(now * 1000),
        keyManagementAlgorithms: ['dir'],
        contentEncryptionAlgorithms: ['A256GCM'],
        requiredClaims: ['exp', 'iat'],
      })
      return payload
    } catch {
      return undefined
    }
  }

  /** `value` followed by a MAC made with the current secret. `value` must not contain `.`. */
  sign(value: string, purpose: string): string {
    return `${value}.${mac(this.#current(), purpose, value)}`
  }

  /** The value behind a signed string when any configured secret made its MAC, else `undefined`. */
  verify(signed: string, purpose: string): string | undefined {
    if (signed.length === 0 || signed.length > MAX_SIGNED_LENGTH) return undefined
    const dot = signed.length - MAC_CHARS - 1
    if (dot <= 0 || signed.charCodeAt(dot) !== 0x2e) return undefined
    const value = signed.slice(0, dot)
    // Only the exact encoding a MAC is written in passes: a non-ASCII character would make the
    // byte length differ, and any other spelling of the same bytes compares unequal.
    const given = Buffer.from(signed.slice(dot + 1))
    if (given.length !== MAC_CHARS) return undefined
    let valid = false
    for (const key of this.#derived()) {
      if (timingSafeEqual(Buffer.from(mac(key, purpose, value)), given)) valid = true
    }
    return valid ? value : undefined
  }
}

/** A random, URL-safe identifier with `bytes` of entropy from the platform CSPRNG. */
export function randomId(bytes = 32): string {
  return base64url.encode(crypto.getRandomValues(new Uint8Array(bytes)))
}

/** Compares two strings in constant time over their SHA-256 digests (fixed length). */
export function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(
    createHash('sha256').update(a).digest(),
    createHash('sha256').update(b).digest(),
  )
}
