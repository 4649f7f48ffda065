/**
 * Session settings from environment variables, with tsgauth's names so a deployment can switch
 * without rewriting its configuration.
 */
import { SsoTypeError } from '../errors.js'
import type { RoleSource } from '../verify/claims.js'
import {
  booleanFromEnv,
  checkEnvironment,
  checkLoadOptions,
  oidcPrefix,
  reportWarnings,
  verifierFromEnv,
  type LoadConfigOptions,
} from '../verify/config.js'
import { environmentWarnings, SESSION_ENV_NAMES } from '../verify/env.js'
import type { VerifierOptions } from '../verify/verifier.js'
import type { SessionBearerOptions } from './bearer.js'
import type { JWK } from 'jose'

import {
  TOKEN_ENDPOINT_AUTH_METHODS,
  type ClientPrivateKey,
  type TokenEndpointAuthMethod,
} from './client-auth.js'

/** The `createSessionAuth` options an environment gives (add `store`, and anything else). */
export interface SessionEnvAuth {
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
  readonly roles?: RoleSource
  readonly usernameClaim?: string
  /** `OIDC_JWKS_URI`, the allowed algorithms, tolerance, token type and audience of bearer tokens. */
  readonly bearer?: SessionBearerOptions
}

/**
 * What an environment configures. `OIDC_SESSION_AUTH_ALLOWED` true: browsers are sent to sign in,
 * as in tsgauth, and `auth` holds the options for `createSessionAuth`. Otherwise the application
 * accepts bearer tokens only: `auth` is `undefined`, and `bearer` is for
 * `createBearerAuthenticator`.
 */
export type SessionEnvConfig = SessionEnvCommon &
  (
    | { readonly sessionAuthAllowed: true; readonly auth: SessionEnvAuth }
    | { readonly sessionAuthAllowed: false; readonly auth: undefined }
  )

export interface SessionEnvCommon {
  /** Options for `createBearerAuthenticator`: the same provider, client and bearer settings. */
  readonly bearer: VerifierOptions
  /** `OIDC_SESSION_STORE_*`: the core builds the memory store; `@ssokit/redis` builds Redis. */
  readonly store: {
    readonly type: 'memory' | 'redis'
    readonly host: string
    readonly port: number
  }
}

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
  secretName: string,
): Pick<SessionEnvAuth, 'clientSecret' | 'tokenEndpointAuth' | 'clientPrivateKey'> {
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
      ? env[secretName]?.trim() || undefined
      : required(env, secretName, 'the client secret is needed for browser sessions')
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
 * Reads tsgauth's names: `OIDC_ISSUER` (required unless `SSOKIT_PRESET=cern` or the `preset`
 * option), `OIDC_CLIENT_ID`, `OIDC_SESSION_AUTH_ALLOWED` (default false: bearer tokens only, as in
 * tsgauth), `OIDC_CLIENT_SECRET`, `OIDC_SESSION_LIFETIME` (default 28800),
 * `OIDC_SESSION_STORE_TYPE` (`memory`|`redis`), `OIDC_SESSION_STORE_HOST`/`_PORT`
 * (localhost/6379), `OIDC_AUTH_ROUTE_PREFIX` (`/auth`), all with `TSGAUTH_OIDC_PREFIX`;
 * `SSOKIT_SESSION_SECRET` (comma-separated for rotation, newest first), `SSOKIT_PUBLIC_URL`, the
 * client authentication variables of `clientCredentials`, and every bearer setting `loadConfig`
 * reads (`OIDC_JWKS_URI`, `SSOKIT_ALLOWED_ALGS`/`TSGAUTH_ALLOWED_ALGS`, ...).
 * A missing required variable is a `TypeError` naming it, meant to stop start-up; a variable that
 * is set and not used gets a `config_warning`.
 */
export function loadSessionConfig(
  env: Readonly<Record<string, string | undefined>>,
  options?: LoadConfigOptions,
): SessionEnvConfig {
  checkEnvironment(env, 'loadSessionConfig')
  const { preset, onEvent } = checkLoadOptions(options, 'loadSessionConfig')
  const prefix = oidcPrefix(env)
  const oidc = (name: string) => `${prefix}OIDC_${name}`
  const warnings = environmentWarnings(env, prefix)
  const sessionAuthAllowed = booleanFromEnv(env, oidc('SESSION_AUTH_ALLOWED')) ?? false
  if (!sessionAuthAllowed) {
    const ignored = SESSION_ENV_NAMES.map((name) =>
      name.startsWith('OIDC_') ? `${prefix}${name}` : name,
    ).filter((name) => env[name] !== undefined)
    if (ignored.length > 0) {
      warnings.push({
        type: 'config_warning',
        level: 'warn',
        message:
          `${ignored.join(', ')} ${ignored.length === 1 ? 'is' : 'are'} ignored: ` +
          `${oidc('SESSION_AUTH_ALLOWED')} is not true, so browsers are not signed in and only ` +
          `bearer tokens are accepted, as in tsgauth. Set ${oidc('SESSION_AUTH_ALLOWED')}=true ` +
          'for browser sessions.',
        reason: 'env_ignored',
        name: ignored.join(','),
      })
    }
  }
  // Before anything can fail: a misspelt name is often why a required one is missing.
  reportWarnings(warnings, onEvent)
  const bearer = verifierFromEnv(env, prefix, preset, 'the client id registered at the provider')
  const storeType = (env[oidc('SESSION_STORE_TYPE')]?.trim() || 'memory').toLowerCase()
  if (storeType !== 'memory' && storeType !== 'redis') {
    throw new SsoTypeError(
      `${oidc('SESSION_STORE_TYPE')} must be memory or redis, got ${JSON.stringify(storeType)}`,
    )
  }
  const port = positive(env, oidc('SESSION_STORE_PORT'), 6379)
  if (port > 65_535) throw new SsoTypeError(`${oidc('SESSION_STORE_PORT')} must be a TCP port`)
  const store = Object.freeze({
    type: storeType,
    host: env[oidc('SESSION_STORE_HOST')]?.trim() || 'localhost',
    port,
  })
  if (!sessionAuthAllowed) {
    return Object.freeze({ sessionAuthAllowed: false, auth: undefined, bearer, store })
  }
  const credentials = clientCredentials(env, oidc('CLIENT_SECRET'))
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
  const { issuer, clientId, roles, usernameClaim, ...bearerOnly } = bearer
  const auth: SessionEnvAuth = Object.freeze({
    issuer,
    clientId,
    ...credentials,
    publicUrl,
    secret: Object.freeze(
      secret
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== ''),
    ),
    sessionLifetime: positive(env, oidc('SESSION_LIFETIME'), 28_800),
    prefix: env[oidc('AUTH_ROUTE_PREFIX')]?.trim() || '/auth',
    ...(roles === undefined ? {} : { roles }),
    ...(usernameClaim === undefined ? {} : { usernameClaim }),
    ...(Object.keys(bearerOnly).length === 0 ? {} : { bearer: Object.freeze(bearerOnly) }),
  })
  return Object.freeze({ sessionAuthAllowed: true, auth, bearer, store })
}
