/**
 * Keys derived from the configured session secrets. The first secret seals and signs; every
 * secret opens and verifies, so a secret can be rotated without logging everyone out.
 * Sealing is a JWE (`dir` + `A256GCM`, through jose); signing is HMAC-SHA-256 (WebCrypto,
 * whose `verify` compares in constant time).
 */
import { createHash, timingSafeEqual } from 'node:crypto'

import { base64url, EncryptJWT, decodeProtectedHeader, jwtDecrypt, type JWTPayload } from 'jose'

interface DerivedKey {
  readonly kid: string
  readonly encryption: Uint8Array
  readonly mac: CryptoKey
}

const encoder = new TextEncoder()
const SALT = encoder.encode('ssokit session secret v1')
const MAX_SIGNED_LENGTH = 512
const MAX_SEALED_LENGTH = 8192

async function hkdf(
  secret: CryptoKey,
  info: string,
  bytes: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const bits = await crypto.subtle.deriveBits(
    { name: 'HKDF', hash: 'SHA-256', salt: SALT, info: encoder.encode(info) },
    secret,
    bytes * 8,
  )
  return new Uint8Array(bits)
}

async function derive(secret: string): Promise<DerivedKey> {
  const material = await crypto.subtle.importKey('raw', encoder.encode(secret), 'HKDF', false, [
    'deriveBits',
  ])
  const [encryption, macBytes, kidBytes] = await Promise.all([
    hkdf(material, 'ssokit cookie encryption', 32),
    hkdf(material, 'ssokit cookie signature', 32),
    hkdf(material, 'ssokit key id', 6),
  ])
  const mac = await crypto.subtle.importKey(
    'raw',
    macBytes,
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign', 'verify'],
  )
  return { kid: base64url.encode(kidBytes), encryption, mac }
}

export class Keyring {
  readonly #secrets: readonly string[]
  #keys: Promise<readonly DerivedKey[]> | undefined

  constructor(secrets: readonly string[]) {
    this.#secrets = secrets
  }

  #derived(): Promise<readonly DerivedKey[]> {
    this.#keys ??= Promise.all(this.#secrets.map(derive))
    return this.#keys
  }

  async #current(): Promise<DerivedKey> {
    const [first] = await this.#derived()
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
    const key = await this.#current()
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
      const key = (await this.#derived()).find((k) => k.kid === kid)
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
  async sign(value: string, purpose: string): Promise<string> {
    const key = await this.#current()
    const mac = await crypto.subtle.sign('HMAC', key.mac, encoder.encode(`${purpose}:${value}`))
    return `${value}.${base64url.encode(new Uint8Array(mac))}`
  }

  /** The value behind a signed string when any configured secret made its MAC, else `undefined`. */
  async verify(signed: string, purpose: string): Promise<string | undefined> {
    if (signed.length === 0 || signed.length > MAX_SIGNED_LENGTH) return undefined
    const dot = signed.lastIndexOf('.')
    if (dot <= 0) return undefined
    const value = signed.slice(0, dot)
    let mac: Uint8Array<ArrayBuffer>
    try {
      mac = new Uint8Array(base64url.decode(signed.slice(dot + 1)))
    } catch {
      return undefined
    }
    if (mac.length !== 32) return undefined
    const data = encoder.encode(`${purpose}:${value}`)
    for (const key of await this.#derived()) {
      if (await crypto.subtle.verify('HMAC', key.mac, mac, data)) return value
    }
    return undefined
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
