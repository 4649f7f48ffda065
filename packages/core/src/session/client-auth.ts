/**
 * How the application proves itself at the provider's token endpoint (OpenID Connect Core §9):
 * a client secret (HTTP Basic or the form body), a signed assertion (`private_key_jwt`), or
 * nothing (a public client). The method is configured, or chosen from the discovery document's
 * `token_endpoint_auth_methods_supported`; the key and secret are checked when options are.
 */
import { createPrivateKey, type JsonWebKey as NodeJwk, type KeyObject } from 'node:crypto'

import { importPKCS8, type JWK } from 'jose'
import * as oauth from 'oauth4webapi'

import { SsoError, SsoTypeError } from '../errors.js'

export type TokenEndpointAuthMethod =
  'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none'

export const TOKEN_ENDPOINT_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = [
  'client_secret_basic',
  'client_secret_post',
  'private_key_jwt',
  'none',
]

/** The signature algorithms of a `private_key_jwt` assertion. */
export type ClientKeyAlgorithm =
  'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA'

/**
 * The private key for `private_key_jwt`: a PKCS#8 PEM string, a private JWK (its `kid` and `alg`
 * are used), or either with the key id and algorithm spelled out.
 */
export type ClientPrivateKey =
  | string
  | JWK
  | {
      readonly key: string | JWK
      /** The `kid` of the assertion's header: the id of this key in the JWK Set registered at the provider. */
      readonly kid?: string
      /** Default: from the JWK's `alg`, else RS256 for RSA keys, ES256/384/512 for EC keys, EdDSA for Ed25519. */
      readonly alg?: ClientKeyAlgorithm
    }

/** The client credentials after the options check: a parsed key, never its text. */
export interface ClientCredentials {
  /** The configured method, or `undefined` to choose it from discovery. */
  readonly method: TokenEndpointAuthMethod | undefined
  readonly secret: string | undefined
  readonly key: ResolvedClientKey | undefined
}

export interface ResolvedClientKey {
  readonly key: KeyObject
  readonly kid: string | undefined
  readonly alg: ClientKeyAlgorithm
}

const ALGORITHMS_BY_KEY: Readonly<Record<string, readonly ClientKeyAlgorithm[]>> = {
  rsa: ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'],
  'rsa-pss': ['PS256', 'PS384', 'PS512'],
  'ec:prime256v1': ['ES256'],
  'ec:secp384r1': ['ES384'],
  'ec:secp521r1': ['ES512'],
  ed25519: ['EdDSA'],
}

function fail(message: string, code?: SsoTypeError['code']): never {
  throw new SsoTypeError(`createSessionAuth: ${message}`, code)
}

function keyKind(key: KeyObject): string {
  const type = key.asymmetricKeyType ?? ''
  return type === 'ec' ? `ec:${key.asymmetricKeyDetails?.namedCurve ?? ''}` : type
}

function parseKey(input: unknown): ResolvedClientKey {
  const wrapped =
    typeof input === 'object' && input !== null && !('kty' in input) && 'key' in input
      ? (input as { key: unknown; kid?: unknown; alg?: unknown })
      : { key: input }
  const { key: material } = wrapped
  let key: KeyObject
  try {
    if (typeof material === 'string') key = createPrivateKey(material)
    else if (typeof material === 'object' && material !== null)
      key = createPrivateKey({ key: material as NodeJwk, format: 'jwk' })
    else fail('clientPrivateKey must be a PEM string or a private JWK', 'ERR_INVALID_ARG_TYPE')
  } catch (error) {
    if (error instanceof SsoTypeError) throw error
    fail('clientPrivateKey is not a private key (a PKCS#8 PEM string or a private JWK)')
  }
  const jwk = typeof material === 'object' ? (material as JWK) : undefined
  const kid = wrapped.kid ?? jwk?.kid
  if (kid !== undefined && (typeof kid !== 'string' || kid === ''))
    fail('clientPrivateKey.kid must be a non-empty string')
  const allowed = ALGORITHMS_BY_KEY[keyKind(key)]
  if (allowed === undefined) {
    fail('clientPrivateKey must be an RSA, EC (P-256, P-384, P-521) or Ed25519 private key')
  }
  const alg = wrapped.alg ?? (jwk?.alg === 'Ed25519' ? 'EdDSA' : jwk?.alg) ?? allowed[0]
  if (typeof alg !== 'string' || !(allowed as readonly string[]).includes(alg)) {
    fail(
      `clientPrivateKey.alg ${JSON.stringify(alg)} does not fit this key (use ${allowed.join(', ')})`,
    )
  }
  return Object.freeze({ key, kid, alg: alg as ClientKeyAlgorithm })
}

/** Checks the options of client authentication; every mistake is a `TypeError` now. */
export function resolveClientCredentials(options: {
  readonly tokenEndpointAuth?: unknown
  readonly clientSecret?: unknown
  readonly clientPrivateKey?: unknown
}): ClientCredentials {
  const { tokenEndpointAuth: method, clientSecret: secret, clientPrivateKey } = options
  if (
    method !== undefined &&
    !(TOKEN_ENDPOINT_AUTH_METHODS as readonly unknown[]).includes(method)
  ) {
    fail(`tokenEndpointAuth must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(', ')}`)
  }
  if (secret !== undefined && (typeof secret !== 'string' || secret === ''))
    fail('clientSecret must be a non-empty string', 'ERR_INVALID_ARG_TYPE')
  const key = clientPrivateKey === undefined ? undefined : parseKey(clientPrivateKey)
  const usesSecret = method === 'client_secret_basic' || method === 'client_secret_post'
  if (usesSecret && secret === undefined)
    fail(`option clientSecret is required for tokenEndpointAuth ${method}`, 'ERR_MISSING_OPTION')
  if (method === 'private_key_jwt' && key === undefined) {
    fail(
      'option clientPrivateKey is required for tokenEndpointAuth private_key_jwt',
      'ERR_MISSING_OPTION',
    )
  }
  if (method === 'none' && (secret !== undefined || key !== undefined)) {
    fail('tokenEndpointAuth none is for public clients: give no clientSecret or clientPrivateKey')
  }
  return Object.freeze({
    method: method as TokenEndpointAuthMethod | undefined,
    secret,
    key,
  })
}

/**
 * `client_secret_basic` as RFC 6749 §2.3.1 asks (each part percent-encoded, then Base64), with
 * only the characters that need it encoded: `-`, `.`, `_`, `~` (and `!'()*`) stay as they are.
 * Providers that decode get the same value as with the full form encoding; providers that
 * compare the raw text (glewlwyd) still match a client id such as `app-one`.
 */
export function basicCredentials(clientId: string, secret: string): string {
  return `Basic ${btoa(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`)}`
}

function clientSecretBasic(secret: string): oauth.ClientAuth {
  return (_as, client, _body, headers) => {
    headers.set('authorization', basicCredentials(client.client_id, secret))
  }
}

/** Chooses and applies the method for the provider's metadata. */
export class ClientAuthentication {
  readonly #credentials: ClientCredentials
  #signingKey: Promise<CryptoKey> | undefined

  constructor(credentials: ClientCredentials) {
    this.#credentials = credentials
  }

  /** The secrets a provider's error text must never repeat: the client secret and `others`. */
  secrets(others: readonly string[]): readonly string[] {
    const { secret } = this.#credentials
    return secret === undefined ? others : [secret, ...others]
  }

  /**
   * The method for this provider: the configured one, or the best fit of the discovery
   * document. Rejects with `client_auth_failed` when the provider cannot accept it.
   */
  method(metadata: oauth.AuthorizationServer): TokenEndpointAuthMethod {
    const { method, secret, key } = this.#credentials
    const listed = metadata.token_endpoint_auth_methods_supported
    const supported = Array.isArray(listed)
      ? listed.filter((m): m is string => typeof m === 'string')
      : undefined
    const shown = supported === undefined ? '' : supported.join(', ')
    if (method !== undefined) {
      // Providers rarely list `none` although they accept public clients (Keycloak does not).
      if (method !== 'none' && supported !== undefined && !supported.includes(method)) {
        throw unsupported(
          `The identity provider does not accept tokenEndpointAuth ${method} (its discovery document lists ${shown || 'no method'}).`,
        )
      }
      if (method === 'private_key_jwt') this.#checkAlgorithm(metadata)
      return method
    }
    if (key !== undefined) {
      if (supported !== undefined && !supported.includes('private_key_jwt')) {
        throw unsupported(
          `A clientPrivateKey is configured, but the identity provider does not accept private_key_jwt (its discovery document lists ${shown || 'no method'}).`,
        )
      }
      this.#checkAlgorithm(metadata)
      return 'private_key_jwt'
    }
    if (secret === undefined) return 'none'
    // No list means client_secret_basic only (RFC 8414 §2, OpenID Connect Discovery §3).
    if (supported === undefined || supported.includes('client_secret_basic'))
      return 'client_secret_basic'
    if (supported.includes('client_secret_post')) return 'client_secret_post'
    throw unsupported(
      `The identity provider accepts no client secret at its token endpoint (its discovery document lists ${shown || 'no method'}): set tokenEndpointAuth and the credentials it needs.`,
    )
  }

  #checkAlgorithm(metadata: oauth.AuthorizationServer): void {
    const alg = this.#credentials.key?.alg
    const listed = metadata.token_endpoint_auth_signing_alg_values_supported
    if (alg === undefined || !Array.isArray(listed)) return
    const names = alg === 'EdDSA' ? ['EdDSA', 'Ed25519'] : [alg]
    if (!names.some((name) => listed.includes(name))) {
      throw unsupported(
        `The identity provider does not accept ${alg} client assertions (it lists ${listed.join(', ')}): use a key of another type, or set clientPrivateKey.alg.`,
      )
    }
  }

  /** oauth4webapi's client authentication for one request to this provider. */
  async forProvider(metadata: oauth.AuthorizationServer): Promise<oauth.ClientAuth> {
    const method = this.method(metadata)
    const { secret, key } = this.#credentials
    switch (method) {
      case 'client_secret_basic':
        return clientSecretBasic(secret as string)
      case 'client_secret_post':
        return oauth.ClientSecretPost(secret as string)
      case 'private_key_jwt': {
        const resolved = key as ResolvedClientKey
        this.#signingKey ??= importPKCS8(
          resolved.key.export({ format: 'pem', type: 'pkcs8' }) as string,
          resolved.alg,
        )
        const signing = await this.#signingKey
        return oauth.PrivateKeyJwt(
          resolved.kid === undefined ? signing : { key: signing, kid: resolved.kid },
        )
      }
      case 'none':
        return oauth.None()
    }
  }
}

function unsupported(message: string): SsoError {
  return new SsoError('client_auth_failed', message)
}
