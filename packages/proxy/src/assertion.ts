/**
 * The signed identity assertion: a short-lived JWT the proxy signs for every authenticated
 * request, so the application can check that its identity headers came through the proxy and
 * not around it. Its keys are published at `<prefix>/jwks`.
 */
import { randomUUID } from 'node:crypto'
import type { Identity } from '@ssokit/core'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose'

/** The `typ` of an assertion, so no other JWT of the same keys can pass for one. */
export const ASSERTION_TYPE = 'ssokit-identity+jwt'
/** Seconds an assertion is valid. */
export const ASSERTION_LIFETIME_S = 60
const ALGORITHM = 'ES256'
/** Characters of roles in an assertion: with the headers, well inside a 4 KiB upstream buffer. */
const MAX_ROLES_CHARS = 512

export interface AssertionSigner {
  sign(identity: Identity): Promise<string>
  readonly jwks: { readonly keys: readonly JWK[] }
}

/**
 * A signer with a key pair made at start-up. `issuer` is the proxy's public URL, `audience`
 * the upstream's origin.
 */
export async function createAssertionSigner(
  issuer: string,
  audience: string,
): Promise<AssertionSigner> {
  const { privateKey, publicKey } = await generateKeyPair(ALGORITHM, { extractable: true })
  const kid = randomUUID()
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: ALGORITHM, use: 'sig' }
  const jwks = Object.freeze({ keys: Object.freeze([Object.freeze(jwk)]) })
  return {
    jwks,
    sign: (identity) => signAssertion(privateKey, kid, issuer, audience, identity),
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

function signAssertion(
  key: CryptoKey,
  kid: string,
  issuer: string,
  audience: string,
  identity: Identity,
): Promise<string> {
  const claims: Record<string, unknown> = {
    username: identity.username,
    via: identity.via,
  }
  if (identity.email !== undefined) claims.email = identity.email
  if (identity.name !== undefined) claims.name = identity.name
  // The same bounded list as the groups header: the assertion must fit a small header buffer.
  claims.roles = boundedRoles(identity.roles)
  return new SignJWT(claims)
    .setProtectedHeader({ alg: ALGORITHM, kid, typ: ASSERTION_TYPE })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject(identity.subject)
    .setIssuedAt()
    .setExpirationTime(`${ASSERTION_LIFETIME_S}s`)
    .setJti(randomUUID())
    .sign(key)
}
