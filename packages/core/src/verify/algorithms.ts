import {
  constants,
  type KeyObject,
  type VerifyKeyObjectInput,
  type VerifyPublicKeyInput,
} from 'node:crypto'

/**
 * The asymmetric JWS algorithms a verifier may allow, with what `node:crypto` needs to check them.
 * Symmetric (HS*) algorithms are absent on purpose: keys come from a JWKS, and a public key must
 * never become an HMAC secret.
 */
export interface AlgorithmEntry {
  readonly alg: SigningAlgorithm
  /** JWK `kty` the key must have. */
  readonly kty: 'RSA' | 'EC' | 'OKP'
  /** JWK `crv` the key must have, for EC and OKP. */
  readonly crv: string | undefined
  /** Digest name for `crypto.verify`, `null` for EdDSA. */
  readonly digest: string | null
  readonly pssSaltLength: number | undefined
  readonly dsaEncoding: 'ieee-p1363' | undefined
}

export const SIGNING_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const

export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number]

function entry(
  alg: SigningAlgorithm,
  kty: AlgorithmEntry['kty'],
  crv: string | undefined,
  digest: string | null,
  pssSaltLength?: number,
): AlgorithmEntry {
  return Object.freeze({
    alg,
    kty,
    crv,
    digest,
    pssSaltLength,
    dsaEncoding: kty === 'EC' ? 'ieee-p1363' : undefined,
  })
}

const TABLE: ReadonlyMap<string, AlgorithmEntry> = new Map([
  ['RS256', entry('RS256', 'RSA', undefined, 'sha256')],
  ['RS384', entry('RS384', 'RSA', undefined, 'sha384')],
  ['RS512', entry('RS512', 'RSA', undefined, 'sha512')],
  ['PS256', entry('PS256', 'RSA', undefined, 'sha256', 32)],
  ['PS384', entry('PS384', 'RSA', undefined, 'sha384', 48)],
  ['PS512', entry('PS512', 'RSA', undefined, 'sha512', 64)],
  ['ES256', entry('ES256', 'EC', 'P-256', 'sha256')],
  ['ES384', entry('ES384', 'EC', 'P-384', 'sha384')],
  ['ES512', entry('ES512', 'EC', 'P-521', 'sha512')],
  ['EdDSA', entry('EdDSA', 'OKP', 'Ed25519', null)],
  ['Ed25519', entry('Ed25519', 'OKP', 'Ed25519', null)],
])

export function algorithmEntry(alg: string): AlgorithmEntry | undefined {
  return TABLE.get(alg)
}

export function isSigningAlgorithm(alg: string): alg is SigningAlgorithm {
  return TABLE.has(alg)
}

/** RSA keys below this modulus size are refused (RFC 7518 §3.3). */
export const MIN_RSA_BITS = 2048

/** What `crypto.verify` takes as its key argument for one key and algorithm, built once. */
export function verifyInput(
  key: KeyObject,
  entry: AlgorithmEntry,
): KeyObject | VerifyKeyObjectInput {
  if (entry.pssSaltLength !== undefined) {
    return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: entry.pssSaltLength }
  }
  if (entry.dsaEncoding !== undefined) return { key, dsaEncoding: entry.dsaEncoding }
  return key
}

export type VerifyKey = KeyObject | VerifyKeyObjectInput | VerifyPublicKeyInput
