/** Option checks shared by the source factories: every mistake is a `TypeError` when called. */
import { SsoTypeError } from '@ssokit/core/errors'

import { cacheDirectory, useDiskCache, type Environment } from './cache/location.js'
import { CredentialCache } from './cache/store.js'
import { checkIssuerOption } from './http.js'
import { envLogger, type Logger } from './log.js'
import { ProviderClient, type ClientSecretMethod } from './provider.js'
import type { SourceRuntime } from './token-source.js'

/** CERN's single sign-on realm. */
export const CERN_ISSUER = 'https://auth.cern.ch/auth/realms/cern'

/** Hooks for tests and unusual set-ups, kept apart from the ordinary options. */
export interface ClientExpertOptions {
  /** `fetch` for every request to the provider. Default: the global `fetch`. */
  readonly fetch?: typeof fetch
  /** The current time in ms. Default: `Date.now`. */
  readonly clock?: () => number
  /** Where `SSOKIT_HOME`, `TSGAUTH_*` and `XDG_CONFIG_HOME` are read. Default: `process.env`. */
  readonly env?: Readonly<Record<string, string | undefined>>
  /** Receives diagnostics instead of stderr (`TSGAUTH_LOGLEVEL` still filters). */
  readonly log?: (line: string) => void
  /**
   * Waits `ms` (between retries, between device-flow polls); rejects when `signal` aborts.
   * Default: a timer. Tests pass one that advances their `clock`.
   */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>
}

export interface CommonClientOptions {
  /** The provider's issuer URL; or `cern: true`. https only, except on loopback. */
  readonly issuer?: string
  /** `true` for CERN's realm, `https://auth.cern.ch/auth/realms/cern`. */
  readonly cern?: boolean
  readonly clientId: string
  readonly clientSecret?: string
  /** Default: `client_secret_basic`, unless discovery lists only `client_secret_post`. */
  readonly tokenEndpointAuth?: ClientSecretMethod
  /** Scopes to ask for. */
  readonly scope?: string | readonly string[]
  /**
   * Keep the credential in the cache directory (`$SSOKIT_HOME`, `TSGAUTH_AUTHDIR`, or
   * `~/.config/ssokit`) so other processes reuse it. Default `false`;
   * `TSGAUTH_FORCE_USE_AUTHFILE=1` / `TSGAUTH_FORCE_DONT_USE_AUTHFILE=1` override it.
   */
  readonly cache?: boolean
}

export function fail(caller: string, message: string, code?: SsoTypeError['code']): never {
  throw new SsoTypeError(`${caller}: ${message}`, code)
}

export function nonEmptyString(caller: string, name: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') {
    fail(
      caller,
      `${name} must be a non-empty string`,
      value === undefined ? 'ERR_MISSING_OPTION' : 'ERR_INVALID_ARG_TYPE',
    )
  }
  return value
}

export function optionalString(caller: string, name: string, value: unknown): string | undefined {
  return value === undefined ? undefined : nonEmptyString(caller, name, value)
}

export function scopeOption(caller: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  const list = typeof value === 'string' ? value.split(' ') : value
  if (!Array.isArray(list) || !list.every((s): s is string => typeof s === 'string')) {
    fail(caller, 'scope must be a string or an array of strings', 'ERR_INVALID_ARG_TYPE')
  }
  const scopes = [...new Set(list.filter((s) => s !== ''))].sort()
  return scopes.length === 0 ? undefined : scopes.join(' ')
}

export function issuerOf(caller: string, options: { issuer?: unknown; cern?: unknown }): URL {
  if (options.cern !== undefined && typeof options.cern !== 'boolean') {
    fail(caller, 'cern must be a boolean', 'ERR_INVALID_ARG_TYPE')
  }
  if (options.cern === true && options.issuer !== undefined) {
    fail(caller, 'give issuer or cern: true, not both')
  }
  if (options.cern === true) return new URL(CERN_ISSUER)
  if (options.issuer === undefined) {
    fail(caller, 'option issuer (or cern: true) is required', 'ERR_MISSING_OPTION')
  }
  return checkIssuerOption(caller, options.issuer)
}

export function providerOf(
  caller: string,
  options: CommonClientOptions,
  expert: ClientExpertOptions,
): ProviderClient {
  const method = options.tokenEndpointAuth
  if (
    method !== undefined &&
    !(['client_secret_basic', 'client_secret_post'] as unknown[]).includes(method)
  ) {
    fail(caller, 'tokenEndpointAuth must be client_secret_basic or client_secret_post')
  }
  return new ProviderClient({
    issuer: issuerOf(caller, options),
    clientId: nonEmptyString(caller, 'clientId', options.clientId),
    clientSecret: optionalString(caller, 'clientSecret', options.clientSecret),
    tokenEndpointAuth: method,
    fetch: expert.fetch ?? ((input, init) => fetch(input, init)),
  })
}

/** A timer that ends early, rejecting with the signal's reason, when `signal` aborts. */
export function abortableSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(signal.reason as Error)
      return
    }
    const onAbort = () => {
      clearTimeout(timer)
      reject(signal?.reason as Error)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

export function runtimeOf(
  caller: string,
  options: { cache?: unknown },
  expert: ClientExpertOptions,
): SourceRuntime {
  if (options.cache !== undefined && typeof options.cache !== 'boolean') {
    fail(caller, 'cache must be a boolean', 'ERR_INVALID_ARG_TYPE')
  }
  const env: Environment = expert.env ?? process.env
  const log: Logger = envLogger(env, expert.log)
  const cache = useDiskCache(options.cache ?? false, env)
    ? new CredentialCache(cacheDirectory(env), log)
    : undefined
  return Object.freeze({
    cache,
    clock: expert.clock ?? Date.now,
    log,
    sleep: expert.sleep ?? abortableSleep,
  })
}
