/**
 * A browser login for a native app (RFC 8252): the authorization code grant with PKCE S256,
 * `state` and (with `openid`) `nonce`, the code coming back to a one-shot loopback listener. The
 * system browser is opened when there is one (`xdg-open`/`open`, as a program with the URL as
 * its one argument, never through a shell); the URL is printed either way.
 */
import { spawn } from 'node:child_process'

import { SsoError } from '@ssokit/core/errors'
import * as oauth from 'oauth4webapi'

import { rawJson } from './client-credentials.js'
import { acceptTokenResponse, type Credential } from './credential.js'
import { checkEndpoint } from './http.js'
import {
  cancelled,
  checkLoginOptions,
  DEFAULT_BROWSER_TIMEOUT_S,
  loginSource,
  timedOut,
  type LoginContext,
  type LoginOptions,
} from './login.js'
import { listenOnLoopback } from './loopback.js'
import { type ClientExpertOptions, fail } from './options.js'
import { requireTokenEndpoint } from './provider.js'
import { translateProtocolError } from './protocol-errors.js'
import type { TokenSource } from './token-source.js'

export interface BrowserLoginOptions extends LoginOptions {
  /** Open the system browser at the login page. Default `true` (when there is one). */
  readonly openBrowser?: boolean
  /**
   * Shows the URL to open; called whether or not a browser was opened. Default: a line on
   * stderr.
   */
  readonly onUrl?: (url: string, opened: boolean) => void | Promise<void>
  /** The listener's port, for a client registered with a fixed one. Default: any free port. */
  readonly port?: number
  /** The host name in the redirect URI: `127.0.0.1` (default, RFC 8252 §8.3) or `localhost`. */
  readonly redirectHost?: '127.0.0.1' | 'localhost'
}

const CALLER = 'browserLogin'

/**
 * @example
 * const source = browserLogin({ cern: true, clientId: 'my-public-client' })
 * const token = await source.token()
 */
export function browserLogin(
  options: BrowserLoginOptions,
  expert: ClientExpertOptions = {},
): TokenSource {
  if (options.openBrowser !== undefined && typeof options.openBrowser !== 'boolean') {
    fail(CALLER, 'openBrowser must be a boolean', 'ERR_INVALID_ARG_TYPE')
  }
  if (options.onUrl !== undefined && typeof options.onUrl !== 'function') {
    fail(CALLER, 'onUrl must be a function', 'ERR_INVALID_ARG_TYPE')
  }
  const port = options.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    fail(CALLER, 'port must be a port number from 0 to 65535', 'ERR_INVALID_ARG_VALUE')
  }
  const host: string = options.redirectHost ?? '127.0.0.1'
  if (host !== '127.0.0.1' && host !== 'localhost') {
    fail(CALLER, 'redirectHost must be "127.0.0.1" or "localhost"', 'ERR_INVALID_ARG_VALUE')
  }
  const checked = checkLoginOptions(CALLER, options, expert)
  const open = options.openBrowser ?? true
  const show =
    options.onUrl ??
    ((url: string, opened: boolean) => {
      process.stderr.write(
        opened
          ? `Your browser has been opened to sign in. If it did not open, visit:\n${url}\n`
          : `To sign in, open this URL in a browser on this machine:\n${url}\n`,
      )
    })
  return loginSource(checked, (context) => runBrowserLogin(context, { open, show, port, host }))
}

interface BrowserSettings {
  readonly open: boolean
  readonly show: (url: string, opened: boolean) => void | Promise<void>
  readonly port: number
  readonly host: string
}

async function runBrowserLogin(
  context: LoginContext,
  settings: BrowserSettings,
): Promise<Credential> {
  const { provider, key, runtime, signal } = context
  const metadata = await provider.metadata()
  if (metadata.authorization_endpoint === undefined) {
    throw new SsoError(
      'provider_unavailable',
      'The identity provider publishes no authorization endpoint in its discovery document.',
    )
  }
  const authorizationEndpoint = new URL(metadata.authorization_endpoint)
  checkEndpoint(authorizationEndpoint, 'authorization endpoint')
  const tokenEndpoint = requireTokenEndpoint(metadata)

  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  const openid = key.scope?.split(' ').includes('openid') === true
  const nonce = openid ? oauth.generateRandomNonce() : undefined
  const listener = await listenOnLoopback(state, { port: settings.port, host: settings.host })
  const deadline = context.deadline ?? runtime.clock() + DEFAULT_BROWSER_TIMEOUT_S * 1000
  const timer = setTimeout(
    () => {
      listener.close(timedOut())
    },
    Math.max(0, deadline - runtime.clock()),
  )
  const onAbort = () => {
    listener.close(cancelled(signal))
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    const url = new URL(authorizationEndpoint)
    url.searchParams.set('client_id', provider.settings.clientId)
    url.searchParams.set('response_type', 'code')
    url.searchParams.set('redirect_uri', listener.redirectUri)
    if (key.scope !== undefined) url.searchParams.set('scope', key.scope)
    url.searchParams.set('state', state)
    if (nonce !== undefined) url.searchParams.set('nonce', nonce)
    url.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier))
    url.searchParams.set('code_challenge_method', 'S256')
    const opened = settings.open && (await openSystemBrowser(url.href))
    await settings.show(url.href, opened)

    const callback = await listener.callback
    let parameters: URLSearchParams
    try {
      parameters = oauth.validateAuthResponse(metadata, provider.client, callback, state)
    } catch (error) {
      if (error instanceof oauth.AuthorizationResponseError && error.error === 'access_denied') {
        throw new SsoError('access_denied', 'The login was refused at the provider.', {
          cause: error,
        })
      }
      throw new SsoError('login_failed', 'The provider answered the login with an error.', {
        cause: error,
      })
    }
    try {
      const response = await oauth.authorizationCodeGrantRequest(
        metadata,
        provider.client,
        provider.clientAuth(metadata),
        parameters,
        listener.redirectUri,
        verifier,
        provider.requestOptions(tokenEndpoint),
      )
      const raw = await rawJson(response)
      const body = await oauth.processAuthorizationCodeResponse(
        metadata,
        provider.client,
        response,
        nonce === undefined ? {} : { expectedNonce: nonce, requireIdToken: true },
      )
      return acceptTokenResponse(body, { key, now: runtime.clock(), raw })
    } catch (error) {
      throw translateProtocolError(error, 'token')
    }
  } finally {
    clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
    listener.close()
  }
}

/** The program that opens a URL in the user's browser here, if there is one. */
function opener(): string | undefined {
  if (process.platform === 'darwin') return 'open'
  if (process.platform === 'win32') return undefined
  // Without a display there is no browser to open, only a text one that would take the terminal.
  const display = process.env.DISPLAY ?? process.env.WAYLAND_DISPLAY
  return display === undefined || display === '' ? undefined : 'xdg-open'
}

/** Starts the system browser at `url`; resolves `false` when there is none or it failed. */
export function openSystemBrowser(url: string): Promise<boolean> {
  const program = opener()
  if (program === undefined) return Promise.resolve(false)
  return new Promise((resolve) => {
    // The URL is one argument of the program: no shell parses it.
    const child = spawn(program, [url], { stdio: 'ignore', detached: true, shell: false })
    child.once('error', () => {
      resolve(false)
    })
    child.once('spawn', () => {
      child.unref()
      resolve(true)
    })
  })
}
