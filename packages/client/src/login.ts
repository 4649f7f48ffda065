/**
 * What every interactive login shares (device flow, browser, and any later one such as
 * Kerberos): the options, the cache key of a user's credential for a client, and the managed
 * source around a `LoginMethod`. A login method only turns a `LoginContext` into a credential;
 * reuse, refresh, the cache and its lock are the `ManagedSource`'s.
 */
import { SsoError } from '@ssokit/core/errors'

import type { Credential, CredentialKey } from './credential.js'
import {
  type ClientExpertOptions,
  type CommonClientOptions,
  fail,
  providerOf,
  runtimeOf,
  scopeOption,
} from './options.js'
import type { ProviderClient } from './provider.js'
import { refreshCredential } from './refresh.js'
import { ManagedSource, type Grant, type SourceRuntime, type TokenSource } from './token-source.js'

/** The scopes a login asks for when none are given; `ssokit token` looks for the same. */
export const DEFAULT_LOGIN_SCOPE = 'openid profile'

export interface LoginOptions extends CommonClientOptions {
  /**
   * Keep the credential in the cache directory so later runs and other processes reuse it and
   * its refresh token. Default `true` for logins (tsgauth's `DeviceAuth` does the same).
   */
  readonly cache?: boolean
  /**
   * Start a login when there is no usable cached credential and no refresh token that works.
   * `false`: fail with `login_required` instead (a script that must never prompt). Default `true`.
   */
  readonly interactive?: boolean
  /** Ends a waiting login with `login_cancelled`. */
  readonly signal?: AbortSignal
  /**
   * Seconds one login may take at most. Default: the device code's lifetime for a device login,
   * 300 for a browser login.
   */
  readonly timeout?: number
}

/** What a login method gets: the provider, where to store what, and its limits. */
export interface LoginContext {
  readonly provider: ProviderClient
  readonly key: CredentialKey
  readonly runtime: SourceRuntime
  readonly signal: AbortSignal | undefined
  /** Local ms time after which the login stops with `login_timeout`, when `timeout` was given. */
  readonly deadline: number | undefined
}

/** One way of logging a user in. */
export type LoginMethod = (context: LoginContext) => Promise<Credential>

/** A browser login's time limit when none is given. */
export const DEFAULT_BROWSER_TIMEOUT_S = 300

/** Options every login checks, for the factory named `caller`. */
export interface CheckedLogin {
  readonly provider: ProviderClient
  readonly runtime: SourceRuntime
  readonly key: CredentialKey
  readonly interactive: boolean
  readonly signal: AbortSignal | undefined
  readonly timeoutMs: number | undefined
}

export function checkLoginOptions(
  caller: string,
  options: LoginOptions,
  expert: ClientExpertOptions,
): CheckedLogin {
  if (options.interactive !== undefined && typeof options.interactive !== 'boolean') {
    fail(caller, 'interactive must be a boolean', 'ERR_INVALID_ARG_TYPE')
  }
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    fail(caller, 'signal must be an AbortSignal', 'ERR_INVALID_ARG_TYPE')
  }
  const timeout = options.timeout
  if (
    timeout !== undefined &&
    (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout <= 0)
  ) {
    fail(caller, 'timeout must be a positive number of seconds', 'ERR_INVALID_ARG_VALUE')
  }
  const scope = scopeOption(caller, options.scope ?? DEFAULT_LOGIN_SCOPE)
  const provider = providerOf(caller, options, expert)
  const runtime = runtimeOf(caller, { cache: options.cache ?? true }, expert)
  const key: CredentialKey = Object.freeze({
    issuer: provider.issuer,
    clientId: provider.settings.clientId,
    grant: 'login',
    audience: undefined,
    scope,
    subject: undefined,
  })
  return Object.freeze({
    provider,
    runtime,
    key,
    interactive: options.interactive ?? true,
    signal: options.signal,
    timeoutMs: timeout === undefined ? undefined : timeout * 1000,
  })
}

/**
 * The managed source of a login: the cached credential while fresh, its refresh token next,
 * and `method` (which asks the user) only when neither works.
 */
export function loginSource(checked: CheckedLogin, method: LoginMethod): TokenSource {
  const { provider, runtime, key } = checked
  const grant: Grant = {
    provider,
    key: () => Promise.resolve(key),
    interactive: true,
    obtain: async (k) => {
      if (!checked.interactive) {
        throw new SsoError(
          'login_required',
          'No usable cached login for this client, and this source may not start a login.',
        )
      }
      if (checked.signal?.aborted === true) throw cancelled(checked.signal)
      return method({
        provider,
        key: k,
        runtime,
        signal: checked.signal,
        deadline: checked.timeoutMs === undefined ? undefined : runtime.clock() + checked.timeoutMs,
      })
    },
    refresh: (k, previous, now) => refreshCredential(provider, k, previous, now),
  }
  return new ManagedSource(grant, runtime)
}

export function cancelled(signal: AbortSignal | undefined): SsoError {
  return new SsoError('login_cancelled', 'The login was cancelled.', { cause: signal?.reason })
}

export function timedOut(): SsoError {
  return new SsoError('login_timeout', 'The login was not completed in time.')
}
