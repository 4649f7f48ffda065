/**
 * Distinct valid RS256 access tokens for the benchmarks, signed by a key the benchmark holds,
 * and a loopback issuer that serves its discovery document and JWKS, so that every verifier,
 * ssokit's and the peers', fetches the key the way it would from a real provider.
 */
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

export const AUDIENCE = 'bench-api'
const KID = 'bench'

export interface Signer {
  readonly publicKey: KeyObject
  readonly publicPem: string
  readonly jwks: { readonly keys: readonly Record<string, unknown>[] }
  /** The `i`th token: claims shaped like a Keycloak/CERN access token, about 1 KB. */
  token(i: number): string
}

const b64u = (value: string | Buffer) => Buffer.from(value).toString('base64url')

export function createSigner(issuer: string): Signer {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: KID, alg: 'RS256', use: 'sig' }
  const now = Math.floor(Date.now() / 1000)
  const header = b64u(JSON.stringify({ alg: 'RS256', typ: 'JWT', kid: KID }))
  return {
    publicKey,
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    jwks: { keys: [jwk] },
    token(i) {
      const payload = b64u(
        JSON.stringify({
          exp: now + 3600,
          iat: now,
          jti: `jti-${i}`,
          iss: issuer,
          aud: [AUDIENCE, 'account'],
          sub: `user-${i}`,
          typ: 'Bearer',
          azp: 'bench-app',
          sid: 'c0ffee',
          scope: 'openid profile email',
          email_verified: true,
          name: 'Alice Example',
          preferred_username: `user${i}`,
          given_name: 'Alice',
          family_name: 'Example',
          email: 'alice@example.org',
          cern_upn: 'alice',
          cern_person_id: 123456,
          cern_roles: ['admin', 'user'],
          resource_access: { [AUDIENCE]: { roles: ['admin', 'user'] } },
        }),
      )
      const signature = sign('sha256', Buffer.from(`${header}.${payload}`), privateKey)
      return `${header}.${payload}.${b64u(signature)}`
    },
  }
}

export interface BenchIssuer {
  readonly issuer: string
  readonly signer: Signer
  close(): Promise<void>
}

/** Serves `/.well-known/openid-configuration`, `/.well-known/jwks.json` and `/certs` on loopback. */
export async function startBenchIssuer(): Promise<BenchIssuer> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const signer = createSigner(issuer)
  const discovery = JSON.stringify({
    issuer,
    jwks_uri: `${issuer}/certs`,
    authorization_endpoint: `${issuer}/auth`,
    token_endpoint: `${issuer}/token`,
    response_types_supported: ['code'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: ['RS256'],
  })
  const jwks = JSON.stringify(signer.jwks)
  server.on('request', (req, res) => {
    const body =
      req.url === '/.well-known/openid-configuration'
        ? discovery
        : req.url === '/certs' || req.url === '/.well-known/jwks.json'
          ? jwks
          : undefined
    res.statusCode = body === undefined ? 404 : 200
    res.setHeader('content-type', 'application/json')
    res.end(body ?? '{}')
  })
  return {
    issuer,
    signer,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => {
          resolve()
        })
      }),
  }
}

/** Writes `count` distinct tokens, one per line, for `bench/distinct-tokens.lua`. */
export function writeTokens(signer: Signer, count: number, path: string): readonly string[] {
  const tokens = Array.from({ length: count }, (_, i) => signer.token(i))
  writeFileSync(path, `${tokens.join('\n')}\n`)
  return tokens
}
