/**
 * Session settings from environment variables, with tsgauth's names so a deployment can switch
 * without rewriting its configuration.
 */
import { SsoTypeError } from '../errors.js'
import type { JWK } from 'jose'

import {
  TOKEN_ENDPOINT_AUTH_METHODS,
  type ClientPrivateKey,
  type TokenEndpointAuthMethod,
} from './client-auth.js'

export interface SessionEnvConfig {
  /** Options for `createSessionAuth` (add `store` for Redis, and anything not set by env). */
  readonly auth: {
    readonly issuer: string
    readonly clientId: string
    readonly clientSecret?: string
    readonly tokenEndpointAuth?: TokenEndpointAuthMethod
    /** A PEM string or a parsed JWK; `kid` from `SSOKIT_CLIENT_KEY_ID` when set. */
    readonly clientPrivateKey?: ClientPrivateKey
    readonly publicUrl: string
    readonly secret: readonly string[]
    readonly sessionLifetime: number
    readonly prefix: string
  }
  /** `OIDC_SESSION_STORE_*`: the core builds the memory store; `@ssokit/redis` builds Redis. */
  readonly store: {
    readonly type: 'memory' | 'redis'
    readonly host: string
    readonly port: number
  }
}

const CERN_ISSUER = 'https://auth.cern.ch/auth/realms/cern'

function required(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  what: string,
): string {
  const value = env[name]?.trim()
  if (!value) throw new SsoTypeError(`${name} is not set: ${what}`, 'ERR_MISSING_OPTION')
  return value
}

function positive(
  env: Readonly<Record<string, string | undefined>>,
  name: string,
  fallback: number,
): number {
  const raw = env[name]?.trim()
  if (!raw) return fallback
  const value = Number(raw)
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new SsoTypeError(`${name} must be a positive whole number, got ${JSON.stringify(raw)}`)
  }
  return value
}

/**
 * `OIDC_CLIENT_SECRET`, `SSOKIT_TOKEN_ENDPOINT_AUTH` and `SSOKIT_CLIENT_PRIVATE_KEY` (PEM, or a
 * JWK as JSON) with `SSOKIT_CLIENT_KEY_ID`: a secret is required unless a key is given or the
 * method is `none`.
 */
function clientCredentials(
  env: Readonly<Record<string, string | undefined>>,
): Pick<SessionEnvConfig['auth'], 'clientSecret' | 'tokenEndpointAuth' | 'clientPrivateKey'> {
  const method = env.SSOKIT_TOKEN_ENDPOINT_AUTH?.trim() || undefined
  if (
    method !== undefined &&
    !(TOKEN_ENDPOINT_AUTH_METHODS as readonly string[]).includes(method)
  ) {
    throw new SsoTypeError(
      `SSOKIT_TOKEN_ENDPOINT_AUTH must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(', ')}, got ${JSON.stringify(method)}`,
    )
  }
  const keyText = env.SSOKIT_CLIENT_PRIVATE_KEY?.trim() || undefined
  const kid = env.SSOKIT_CLIENT_KEY_ID?.trim() || undefined
  const secret =
    method === 'none' || method === 'private_key_jwt' || (method === undefined && keyText)
      ? env.OIDC_CLIENT_SECRET?.trim() || undefined
      : required(env, 'OIDC_CLIENT_SECRET', 'the client secret is needed for browser sessions')
  let key: string | JWK | undefined = keyText
  if (keyText?.startsWith('{')) {
    try {
      key = JSON.parse(keyText) as JWK
    } catch {
      throw new SsoTypeError('SSOKIT_CLIENT_PRIVATE_KEY is neither a PEM key nor a JWK in JSON')
    }
  }
  return {
    ...(secret === undefined ? {} : { clientSecret: secret }),
    ...(method === undefined ? {} : { tokenEndpointAuth: method as TokenEndpointAuthMethod }),
    ...(key === undefined ? {} : { clientPrivateKey: kid === undefined ? key : { key, kid } }),
  }
}

/**
 * Reads `OIDC_ISSUER` (default CERN), `OIDC_CLIENT_ID`, `OIDC_CLIENT_SECRET`,
 * `OIDC_SESSION_LIFETIME` (default 28800), `OIDC_SESSION_STORE_TYPE` (`memory`|`redis`),
 * `OIDC_SESSION_STORE_HOST`/`_PORT` (localhost/6379), `OIDC_AUTH_ROUTE_PREFIX` (`/auth`),
 * `SSOKIT_SESSION_SECRET` (comma-separated for rotation, newest first), `SSOKIT_PUBLIC_URL`, and
 * the client authentication variables of `clientCredentials`.
 * A missing required variable is a `TypeError` naming it, meant to stop start-up.
 */
export function loadSessionConfig(
  env: Readonly<Record<string, string | undefined>>,
): SessionEnvConfig {
  const clientId = required(env, 'OIDC_CLIENT_ID', 'the client id registered at the provider')
  const credentials = clientCredentials(env)
  const secret = required(
    env,
    'SSOKIT_SESSION_SECRET',
    'a random string of at least 32 characters that seals session cookies',
  )
  const publicUrl = required(
    env,
    'SSOKIT_PUBLIC_URL',
    "the application's external URL, e.g. https://app.example.org",
  )
  const storeType = (env.OIDC_SESSION_STORE_TYPE?.trim() || 'memory').toLowerCase()
  if (storeType !== 'memory' && storeType !== 'redis') {
    throw new SsoTypeError(
      `OIDC_SESSION_STORE_TYPE must be memory or redis, got ${JSON.stringify(storeType)}`,
    )
  }
  const port = positive(env, 'OIDC_SESSION_STORE_PORT', 6379)
  if (port > 65_535) throw new SsoTypeError('OIDC_SESSION_STORE_PORT must be a TCP port')
  return Object.freeze({
    auth: Object.freeze({
      issuer: env.OIDC_ISSUER?.trim() || CERN_ISSUER,
      clientId,
      ...credentials,
      publicUrl,
      secret: Object.freeze(
        secret
          .split(',')
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      ),
      sessionLifetime: positive(env, 'OIDC_SESSION_LIFETIME', 28_800),
      prefix: env.OIDC_AUTH_ROUTE_PREFIX?.trim() || '/auth',
    }),
    store: Object.freeze({
      type: storeType,
      host: env.OIDC_SESSION_STORE_HOST?.trim() || 'localhost',
      port,
    }),
  })
}
