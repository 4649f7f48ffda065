import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { constants, generateKeyPairSync, sign, type KeyObject } from 'node:crypto'

import {
  createVerifier,
  type Verifier,
  type VerifierEvent,
  type VerifierOptions,
} from '@ssokit/core'

export const ISSUER = 'https://sso.example.org/auth/realms/test'
export const CLIENT = 'demo-api'
/** 2030-01-01T00:00:00Z, in milliseconds. */
export const T0 = Date.UTC(2030, 0, 1)
export const NOW = T0 / 1000

export function b64u(value: string | Uint8Array): string {
  return Buffer.from(value).toString('base64url')
}

export interface TestKey {
  readonly kid: string
  readonly alg: string
  readonly privateKey: KeyObject
  readonly publicKey: KeyObject
  /** The public JWK as published, with kid/alg/use. */
  readonly jwk: Record<string, unknown>
}

const keyCache = new Map<string, TestKey>()

/** A signing key; the same `name` gives the same key within a test process. */
export function testKey(
  name: string,
  type: 'RS256' | 'RS384' | 'PS256' | 'ES256' | 'ES384' | 'EdDSA' | 'weak' = 'RS256',
): TestKey {
  const cacheKey = `${name}:${type}`
  const hit = keyCache.get(cacheKey)
  if (hit !== undefined) return hit
  const pair =
    type === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : type === 'ES384'
        ? generateKeyPairSync('ec', { namedCurve: 'P-384' })
        : type === 'EdDSA'
          ? generateKeyPairSync('ed25519')
          : generateKeyPairSync('rsa', { modulusLength: type === 'weak' ? 2040 : 2048 })
  const alg = type === 'weak' ? 'RS256' : type
  const jwk = { ...pair.publicKey.export({ format: 'jwk' }), kid: name, alg, use: 'sig' }
  const key = { kid: name, alg, privateKey: pair.privateKey, publicKey: pair.publicKey, jwk }
  keyCache.set(cacheKey, key)
  return key
}

/** Signs `header.payload` as given (strings are used verbatim, objects are JSON-encoded). */
export function signCompact(
  header: Record<string, unknown> | string,
  payload: Record<string, unknown> | string,
  key: TestKey,
  alg = key.alg,
): string {
  const h = typeof header === 'string' ? header : b64u(JSON.stringify(header))
  const p = typeof payload === 'string' ? payload : b64u(JSON.stringify(payload))
  return `${h}.${p}.${b64u(signBytes(`${h}.${p}`, key, alg))}`
}

export function signBytes(input: string, key: TestKey, alg = key.alg): Buffer {
  const data = Buffer.from(input)
  switch (alg) {
    case 'RS256':
      return sign('sha256', data, key.privateKey)
    case 'RS384':
      return sign('sha384', data, key.privateKey)
    case 'PS256':
      return sign('sha256', data, {
        key: key.privateKey,
        padding: constants.RSA_PKCS1_PSS_PADDING,
        saltLength: 32,
      })
    case 'ES256':
      return sign('sha256', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
    case 'ES384':
      return sign('sha384', data, { key: key.privateKey, dsaEncoding: 'ieee-p1363' })
    case 'EdDSA':
      return sign(null, data, key.privateKey)
    default:
      throw new Error(`cannot sign ${alg}`)
  }
}

/** Keycloak-shaped access-token claims for `demo-api`, valid at `NOW`. */
export function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: ISSUER,
    aud: CLIENT,
    sub: 'alice',
    typ: 'Bearer',
    azp: 'demo-app',
    iat: NOW - 10,
    exp: NOW + 300,
    jti: 'jti-1',
    preferred_username: 'alice',
    email: 'alice@example.org',
    name: 'Alice Example',
    cern_roles: ['admin', 'user'],
    resource_access: { [CLIENT]: { roles: ['admin', 'user'] } },
    scope: 'openid profile email',
    ...overrides,
  }
}

/** A valid token signed by `key` (default `k1`), with header and claim overrides. */
export function token(
  claimOverrides: Record<string, unknown> = {},
  headerOverrides: Record<string, unknown> = {},
  key: TestKey = testKey('k1'),
): string {
  return signCompact(
    { alg: key.alg, typ: 'JWT', kid: key.kid, ...headerOverrides },
    claims(claimOverrides),
    key,
  )
}

/** A JWKS endpoint whose answers a test controls, counting requests. */
export class JwksServer {
  #server: Server | undefined
  status = 200
  body = ''
  contentType = 'application/json'
  /** Requests stay unanswered until this resolves, when set. */
  gate: Promise<void> | undefined
  requests = 0
  url = ''

  setKeys(...keys: (TestKey | Record<string, unknown>)[]): void {
    this.status = 200
    this.contentType = 'application/json'
    this.body = JSON.stringify({
      keys: keys.map((k) => (typeof k === 'object' && 'jwk' in k && 'privateKey' in k ? k.jwk : k)),
    })
  }

  async start(): Promise<this> {
    this.#server = createServer((req, res) => {
      this.requests++
      const answer = () => {
        res.writeHead(this.status, { 'content-type': this.contentType })
        res.end(this.body)
      }
      if (this.gate === undefined) answer()
      else void this.gate.then(answer)
    })
    await new Promise<void>((resolve) => this.#server?.listen(0, '127.0.0.1', resolve))
    const { port } = this.#server.address() as AddressInfo
    this.url = `http://127.0.0.1:${port}/certs`
    return this
  }

  async close(): Promise<void> {
    const server = this.#server
    if (server === undefined) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve()
      })
    })
  }
}

/** A settable clock for `expert.now`. */
export class Clock {
  ms = T0
  readonly now = (): number => this.ms
  advance(seconds: number): void {
    this.ms += seconds * 1000
  }
}

export interface TestVerifier {
  readonly verifier: Verifier
  readonly clock: Clock
  readonly events: VerifierEvent[]
}

export function testVerifier(
  server: JwksServer,
  options: Partial<VerifierOptions> = {},
  clock = new Clock(),
): TestVerifier {
  const events: VerifierEvent[] = []
  const verifier = createVerifier({
    issuer: ISSUER,
    clientId: CLIENT,
    jwksUri: server.url,
    onEvent: (event) => events.push(event),
    ...options,
    expert: { now: clock.now, ...options.expert },
  })
  return { verifier, clock, events }
}

/** The `SsoError` code a promise rejects with, or `'ok'`. */
export async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
    return 'ok'
  } catch (error) {
    const code = (error as { code?: unknown }).code
    if (typeof code !== 'string') throw error
    return code
  }
}
