import { generateKeyPairSync } from 'node:crypto'
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { calculateJwkThumbprint, type JWK } from 'jose'

/** An RSA private signing key as a JWK, with the fields oidc-provider needs. */
export interface SigningJwk extends JWK {
  kty: 'RSA'
  kid: string
  alg: 'RS256'
  use: 'sig'
  n: string
  e: string
  d: string
}

/** A new RSA 2048 signing key; its `kid` is the RFC 7638 thumbprint. */
export async function generateSigningKey(): Promise<SigningJwk> {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const jwk = privateKey.export({ format: 'jwk' })
  const { n, e, d } = jwk
  if (typeof n !== 'string' || typeof e !== 'string' || typeof d !== 'string') {
    throw new Error('the generated RSA key has no JWK form')
  }
  const kid = await calculateJwkThumbprint({ kty: 'RSA', n, e })
  return { ...(jwk as JWK), kty: 'RSA', n, e, d, kid, alg: 'RS256', use: 'sig' }
}

/** The public half of a signing key, as published at the certs endpoint. */
export function publicJwk(key: SigningJwk): JWK {
  const { kty, n, e, kid, alg, use } = key
  return { kty, n, e, kid, alg, use }
}

function isSigningJwk(value: unknown): value is SigningJwk {
  if (typeof value !== 'object' || value === null) return false
  const k = value as Record<string, unknown>
  return (
    k.kty === 'RSA' &&
    typeof k.n === 'string' &&
    typeof k.e === 'string' &&
    typeof k.d === 'string' &&
    typeof k.kid === 'string' &&
    (k.alg === undefined || k.alg === 'RS256')
  )
}

/**
 * Reads the private JWKS file, creating it (mode 0600) with one new key when it does not exist.
 * The first key signs; the others stay published so tokens they signed still verify.
 */
export async function loadOrCreateKeys(file: string): Promise<SigningJwk[]> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    const keys = [await generateSigningKey()]
    await saveKeys(file, keys)
    return keys
  }
  let data: unknown
  try {
    data = JSON.parse(text)
  } catch (cause) {
    throw new Error(`${file}: is not valid JSON`, { cause })
  }
  const list = (data as { keys?: unknown } | null)?.keys
  if (!Array.isArray(list) || list.length === 0) {
    throw new Error(`${file}: keys: must be a non-empty list of RSA private JWKs`)
  }
  return list.map((key: unknown, i) => {
    if (!isSigningJwk(key))
      throw new Error(`${file}: keys[${i}]: must be an RSA private JWK with a kid`)
    return { ...key, alg: 'RS256', use: 'sig' }
  })
}

/** Writes the private JWKS file readable by its owner only. */
export async function saveKeys(file: string, keys: readonly SigningJwk[]): Promise<void> {
  // A missing folder is created private too; an existing one is left as its owner set it.
  await mkdir(dirname(file), { recursive: true, mode: 0o700 })
  await writeFile(file, `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600 })
  // `mode` applies only when the file is created; an existing file is tightened too.
  await chmod(file, 0o600)
}

/** Puts a new signing key in front of `file`'s keys and returns the new list. */
export async function rotateKeysFile(file: string): Promise<SigningJwk[]> {
  const keys = [await generateSigningKey(), ...(await loadOrCreateKeys(file))]
  await saveKeys(file, keys)
  return keys
}
