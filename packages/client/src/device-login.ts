/**
 * The device authorization grant (RFC 8628) with PKCE S256, done as the RFC asks and tsgauth's
 * `DeviceAuth` does not: the server's `interval` (5 s without one), 5 s more for every
 * `slow_down`, `authorization_pending` waited out, `access_denied` and `expired_token` ending the
 * login at once, slower polling after a network error, never a poll after the code expired, and
 * an `AbortSignal` that stops the wait.
 */
import { SsoError } from '@ssokit/core/errors'
import * as oauth from 'oauth4webapi'

import { rawJson } from './client-credentials.js'
import { acceptTokenResponse, type Credential } from './credential.js'
import { devicePrompt, formatDevicePrompt, type DevicePrompt } from './device-prompt.js'
import { checkEndpoint } from './http.js'
import {
  cancelled,
  checkLoginOptions,
  loginSource,
  timedOut,
  type LoginContext,
  type LoginOptions,
} from './login.js'
import { type ClientExpertOptions, fail } from './options.js'
import { requireTokenEndpoint } from './provider.js'
import { providerError, translateProtocolError } from './protocol-errors.js'
import type { TokenSource } from './token-source.js'

export type { DevicePrompt } from './device-prompt.js'

export interface DeviceLoginOptions extends LoginOptions {
  /**
   * Shows the user what to do. Default: the verification URI, the user code and the complete
   * URI written to stderr, with a QR code when `qr` says so.
   */
  readonly onPrompt?: (prompt: DevicePrompt) => void | Promise<void>
  /** Draw a QR code of the complete URI with the default prompt. Default: when stderr is a TTY. */
  readonly qr?: boolean
}

/** RFC 8628 §3.2: the interval when the provider gives none, and what `slow_down` adds. */
export const DEFAULT_INTERVAL_S = 5
export const SLOW_DOWN_S = 5
/** The longest wait between polls after network errors. */
const MAX_INTERVAL_S = 60

const CALLER = 'deviceLogin'

/**
 * @example
 * const source = deviceLogin({ cern: true, clientId: 'my-public-client' })
 * const response = await authFetch(source)('https://my-api.cern.ch/items')
 */
export function deviceLogin(
  options: DeviceLoginOptions,
  expert: ClientExpertOptions = {},
): TokenSource {
  if (options.onPrompt !== undefined && typeof options.onPrompt !== 'function') {
    fail(CALLER, 'onPrompt must be a function', 'ERR_INVALID_ARG_TYPE')
  }
  if (options.qr !== undefined && typeof options.qr !== 'boolean') {
    fail(CALLER, 'qr must be a boolean', 'ERR_INVALID_ARG_TYPE')
  }
  const checked = checkLoginOptions(CALLER, options, expert)
  const qr = options.qr ?? (process.stderr.isTTY as boolean | undefined) === true
  const show =
    options.onPrompt ??
    (async (prompt: DevicePrompt) => {
      process.stderr.write(await formatDevicePrompt(prompt, { qr, now: checked.runtime.clock() }))
    })
  return loginSource(checked, (context) => runDeviceFlow(context, show))
}

function deviceEndpoint(metadata: oauth.AuthorizationServer): URL {
  const value = metadata.device_authorization_endpoint
  if (value === undefined) {
    throw new SsoError(
      'provider_unavailable',
      'The identity provider publishes no device authorization endpoint in its discovery document.',
    )
  }
  const url = new URL(value)
  checkEndpoint(url, 'device authorization endpoint')
  return url
}

async function runDeviceFlow(
  context: LoginContext,
  show: (prompt: DevicePrompt) => void | Promise<void>,
): Promise<Credential> {
  const { provider, key, runtime, signal } = context
  const metadata = await provider.metadata()
  const endpoint = deviceEndpoint(metadata)
  const tokenEndpoint = requireTokenEndpoint(metadata)
  const clientAuth = provider.clientAuth(metadata)
  const verifier = oauth.generateRandomCodeVerifier()
  const parameters = new URLSearchParams({
    code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  })
  if (key.scope !== undefined) parameters.set('scope', key.scope)

  let authorization: oauth.DeviceAuthorizationResponse
  try {
    const response = await oauth.deviceAuthorizationRequest(
      metadata,
      provider.client,
      clientAuth,
      parameters,
      { ...provider.requestOptions(endpoint), ...(signal === undefined ? {} : { signal }) },
    )
    authorization = await oauth.processDeviceAuthorizationResponse(
      metadata,
      provider.client,
      response,
    )
  } catch (error) {
    if (signal?.aborted === true) throw cancelled(signal)
    throw translateProtocolError(error, 'device')
  }
  const receivedAt = runtime.clock()
  const expiresAt = receivedAt + authorization.expires_in * 1000
  const deadline = Math.min(expiresAt, context.deadline ?? Infinity)
  const expired = () => (deadline < expiresAt ? timedOut() : codeExpired())
  await show(devicePrompt(authorization, expiresAt))

  let interval = validInterval(authorization.interval)
  for (;;) {
    const now = runtime.clock()
    if (now >= deadline) throw expired()
    try {
      // Never poll after the deadline: the last wait ends at it, and then the login ends.
      await runtime.sleep(Math.min(interval * 1000, deadline - now), signal)
    } catch (error) {
      throw signal?.aborted === true ? cancelled(signal) : error
    }
    if (runtime.clock() >= deadline) throw expired()
    try {
      const response = await oauth.deviceCodeGrantRequest(
        metadata,
        provider.client,
        clientAuth,
        authorization.device_code,
        {
          ...provider.requestOptions(tokenEndpoint),
          additionalParameters: { code_verifier: verifier },
          ...(signal === undefined ? {} : { signal }),
        },
      )
      const raw = await rawJson(response)
      const body = await oauth.processDeviceCodeResponse(metadata, provider.client, response)
      return acceptTokenResponse(body, { key, now: runtime.clock(), raw })
    } catch (error) {
      if (signal?.aborted === true) throw cancelled(signal)
      switch (providerError(error)) {
        case 'authorization_pending':
          continue
        case 'slow_down':
          interval += SLOW_DOWN_S
          continue
        case 'access_denied':
          throw new SsoError('access_denied', 'The device login was refused at the provider.', {
            cause: error,
          })
        case 'expired_token':
          throw codeExpired(error)
      }
      const translated = translateProtocolError(error, 'token')
      if (translated.code !== 'provider_unavailable') throw translated
      // RFC 8628 §3.5: after a network error, poll less often, never more.
      runtime.log('info', 'the identity provider did not answer a device-flow poll; waiting longer')
      interval = Math.max(interval, Math.min(interval * 2, MAX_INTERVAL_S))
    }
  }
}

function validInterval(value: number | undefined): number {
  return value !== undefined && Number.isFinite(value) && value >= 1 ? value : DEFAULT_INTERVAL_S
}

function codeExpired(cause?: unknown): SsoError {
  return new SsoError(
    'device_code_expired',
    'The device code expired before the login was approved; log in again.',
    cause === undefined ? {} : { cause },
  )
}
