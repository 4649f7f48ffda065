/**
 * The signed identity assertion: a short-lived JWT the proxy signs for authenticated requests,
 * so the application can check that its identity headers came through the proxy and not around
 * it. Its keys are published at `<prefix>/jwks`.
 *
 * Signing is the most expensive step of a request that is otherwise a cache hit, so one signed
 * assertion serves every request of the same identity for the first part of its lifetime: it is
 * cached under a hash of exactly the claims it carries, so a changed identity signs anew.
 */
import { createHash, randomUUID } from 'node:crypto'
import type { Identity } from '@ssokit/core'
import { exportJWK, generateKeyPair, importJWK, SignJWT, type CryptoKey, type JWK } from 'jose'
import type { AssertionKeyConfig } from './config.js'

/** The `typ` of an assertion, so no other JWT of the same keys can pass for one. */
export const ASSERTION_TYPE = 'ssokit-identity+jwt'
/** Seconds an assertion is valid. */
export const ASSERTION_LIFETIME_S = 60
/**
 * Seconds an assertion is sent again to requests of the same identity: an application always
 * receives one with at least `ASSERTION_LIFETIME_S - ASSERTION_REUSE_S` (45) seconds left.
 */
export const ASSERTION_REUSE_S = 15
/** Identities whose assertion is kept; the oldest is dropped first. */
const CACHE_SIZE = 4096
const ALGORITHM = 'ES256'
/** Characters of roles in an assertion: with the headers, well inside a 4 KiB upstream buffer. */
const MAX_ROLES_CHARS = 512

export interface AssertionSigner {
  sign(identity: Identity): Promise<string>
  readonly jwks: { readonly keys: readonly JWK[] }
}

/** The private key that signs, with its published public half. */
export interface AssertionKey {
  readonly privateKey: CryptoKey
  /** The public JWK with its `kid`, `alg` and `use`. */
  readonly publicJwk: JWK
}

/** The configured key (`assertionKeyFile`), published under its thumbprint. */
export async function assertionKey(config: AssertionKeyConfig): Promise<AssertionKey> {
  const { kty, crv, x, y } = config.privateJwk
  const privateKey = await importJWK({ ...config.privateJwk }, ALGORITHM)
  if (privateKey instanceof Uint8Array) throw new TypeError('assertionKey: not an EC key')
  return {
    privateKey,
    publicJwk: { kty, crv, x, y, kid: config.kid, alg: ALGORITHM, use: 'sig' },
  }
}

/** A key pair made at start-up, lasting as long as the process. */
export async function ephemeralAssertionKey(): Promise<AssertionKey> {
  const { privateKey, publicKey } = await generateKeyPair(ALGORITHM, { extractable: true })
  return {
    privateKey,
    publicJwk: { ...(await exportJWK(publicKey)), kid: randomUUID(), alg: ALGORITHM, use: 'sig' },
  }
}

interface Cached {
  readonly jwt: string
  /** Epoch seconds until which the JWT is sent again. */
  readonly reuseUntil: number
}

/**
 * A signer with `key` (default: a key pair made now). `issuer` is the proxy's public URL,
 * `audience` the upstream's origin; `now` returns epoch milliseconds.
 */
export async function createAssertionSigner(
  issuer: string,
  audience: string,
  key?: AssertionKey,
  now: () => number = Date.now,
): Promise<AssertionSigner> {
  const { privateKey, publicJwk } = key ?? (await ephemeralAssertionKey())
  const kid = publicJwk.kid ?? ''
  const jwks = Object.freeze({ keys: Object.freeze([Object.freeze({ ...publicJwk })]) })
  const cache = new Map<string, Cached>()
  return {
    jwks,
    async sign(identity) {
      const { claims, digest } = claimsOf(identity)
      const seconds = Math.floor(now() / 1000)
      const hit = cache.get(digest)
      if (hit !== undefined && seconds < hit.reuseUntil) return hit.jwt
      const jwt = await new SignJWT({ ...claims })
        .setProtectedHeader({ alg: ALGORITHM, kid, typ: ASSERTION_TYPE })
        .setIssuer(issuer)
        .setAudience(audience)
        .setIssuedAt(seconds)
        .setExpirationTime(seconds + ASSERTION_LIFETIME_S)
        .setJti(randomUUID())
        .sign(privateKey)
      // Re-inserted last, so the oldest entry is always the first one.
      cache.delete(digest)
      cache.set(digest, { jwt, reuseUntil: seconds + ASSERTION_REUSE_S })
      if (cache.size > CACHE_SIZE) cache.delete(cache.keys().next().value ?? '')
      return jwt
    },
  }
}

/** Sorted roles while their total length stays under the cap. */
function boundedRoles(roles: ReadonlySet<string>): string[] {
  const out: string[] = []
  let chars = 0
  for (const role of [...roles].sort()) {
    chars += role.length + 1
    if (chars > MAX_ROLES_CHARS) break
    out.push(role)
  }
  return out
}

interface IdentityClaims {
  readonly claims: Record<string, unknown>
  /** SHA-256 of exactly these claims: the cache key of their assertion. */
  readonly digest: string
}

/**
 * The claims of each identity object, worked out once: the core hands out the same frozen
 * identity for every request of a cached token or session, so the sort and hash are not redone.
 */
const claimsByIdentity = new WeakMap<Identity, IdentityClaims>()

function claimsOf(identity: Identity): IdentityClaims {
  let known = claimsByIdentity.get(identity)
  if (known === undefined) {
    const claims = identityClaims(identity)
    const digest = createHash('sha256').update(JSON.stringify(claims)).digest('base64url')
    known = { claims, digest }
    claimsByIdentity.set(identity, known)
  }
  return known
}

/** Every claim of an assertion that depends on the identity. */
function identityClaims(identity: Identity): Record<string, unknown> {
  const claims: Record<string, unknown> = {
    sub: identity.subject,
    username: identity.username,
    via: identity.via,
  }
  if (identity.email !== undefined) claims.email = identity.email
  if (identity.name !== undefined) claims.name = identity.name
  // The same bounded list as the groups header: the assertion must fit a small header buffer.
  claims.roles = boundedRoles(identity.roles)
  return claims
}
