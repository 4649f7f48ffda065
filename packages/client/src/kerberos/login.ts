/**
 * A user's tokens from their Kerberos ticket, without a browser (tsgauth's `KerbAuth`, but with
 * PKCE, `state` checked and the ID token validated): the authorization request, Keycloak's
 * pages walked with SPNEGO and one-time codes, the code exchanged at the token endpoint.
 */
import { SsoError } from '@ssokit/core/errors'
import * as oauth from 'oauth4webapi'
import { loadToughCookie } from '../lazy.js'

import { rawJson } from '../client-credentials.js'
import { acceptTokenResponse, type Credential } from '../credential.js'
import { checkEndpoint } from '../http.js'
import { checkLoginOptions, loginSource, type LoginContext, type LoginOptions } from '../login.js'
import { type ClientExpertOptions, fail } from '../options.js'
import { translateProtocolError } from '../protocol-errors.js'
import { requireTokenEndpoint } from '../provider.js'
import type { TokenSource } from '../token-source.js'
import { checkKerberosOptions, type KerberosOptions } from './auth.js'
import { navigationFetch } from './navigate.js'
import { OtpSession } from './otp.js'
import { kerberosModule } from './spnego.js'
import { walk } from './walk.js'

export interface KerberosLoginOptions extends LoginOptions, KerberosOptions {
  /**
   * A redirect URI registered for the client. Nothing needs to listen there: the provider's
   * redirect to it is read, not followed. Default `http://localhost:8080/` (tsgauth's).
   */
  readonly redirectUri?: string
}

const CALLER = 'kerberosLogin'
export const DEFAULT_REDIRECT_URI = 'http://localhost:8080/'

/**
 * @example
 * const source = kerberosLogin({ cern: true, clientId: 'my-public-client' })
 * const response = await authFetch(source)('https://my-api.cern.ch/items')
 */
export function kerberosLogin(
  options: KerberosLoginOptions,
  expert: ClientExpertOptions = {},
): TokenSource {
  const redirectUri = options.redirectUri ?? DEFAULT_REDIRECT_URI
  if (typeof redirectUri !== 'string' || !URL.canParse(redirectUri)) {
    fail(CALLER, 'redirectUri must be an absolute URL', 'ERR_INVALID_ARG_VALUE')
  }
  const kerberosOptions = checkKerberosOptions(CALLER, options)
  const checked = checkLoginOptions(CALLER, options, expert)
  const env = expert.env ?? process.env
  const pages = expert.fetch ?? navigationFetch
  return loginSource(checked, (context) =>
    runKerberosLogin(context, new URL(redirectUri), kerberosOptions, env, pages),
  )
}

function sameEndpoint(a: URL, b: URL): boolean {
  return a.origin === b.origin && a.pathname === b.pathname
}

async function runKerberosLogin(
  context: LoginContext,
  redirectUri: URL,
  options: KerberosOptions,
  env: Readonly<Record<string, string | undefined>>,
  pages: typeof fetch,
): Promise<Credential> {
  // Every such login needs the module: without it, say so before the first page is asked for.
  await kerberosModule()
  const { provider, key, runtime } = context
  const metadata = await provider.metadata()
  if (metadata.authorization_endpoint === undefined) {
    throw new SsoError(
      'provider_unavailable',
      'The identity provider publishes no authorization endpoint in its discovery document.',
    )
  }
  const authorize = new URL(metadata.authorization_endpoint)
  checkEndpoint(authorize, 'authorization endpoint')
  const verifier = oauth.generateRandomCodeVerifier()
  const state = oauth.generateRandomState()
  authorize.searchParams.set('client_id', provider.client.client_id)
  authorize.searchParams.set('response_type', 'code')
  authorize.searchParams.set('redirect_uri', redirectUri.href)
  authorize.searchParams.set('scope', key.scope ?? 'openid')
  authorize.searchParams.set('state', state)
  authorize.searchParams.set('code_challenge', await oauth.calculatePKCECodeChallenge(verifier))
  authorize.searchParams.set('code_challenge_method', 'S256')

  const otp = new OtpSession(options, {
    env,
    clock: runtime.clock,
    sleep: runtime.sleep,
    interactive: process.stdin.isTTY && process.stderr.isTTY,
  })
  const end = await walk(
    {
      fetch: pages,
      jar: new (await loadToughCookie()).CookieJar(),
      provider: new URL(provider.issuer),
      credentials: options,
      servicePrincipal: options.servicePrincipal,
      otp,
      log: runtime.log,
      kerberos: true,
    },
    authorize,
    (url) => sameEndpoint(url, redirectUri),
    { principal: undefined },
  )
  if (end.kind !== 'stopped') {
    throw new SsoError(
      'login_page_unexpected',
      `The sign-in ended on ${end.url.origin}${end.url.pathname} instead of the redirect URI ${redirectUri.href}; is it registered for the client?`,
    )
  }
  let params: URLSearchParams
  try {
    params = oauth.validateAuthResponse(metadata, provider.client, end.url, state)
  } catch (error) {
    if (error instanceof oauth.AuthorizationResponseError) {
      throw new SsoError(
        error.error === 'access_denied' ? 'access_denied' : 'login_page_unexpected',
        `The provider ended the sign-in with ${error.error}.`,
        { cause: error },
      )
    }
    throw translateProtocolError(error, 'token')
  }
  const endpoint = requireTokenEndpoint(metadata)
  try {
    const response = await oauth.authorizationCodeGrantRequest(
      metadata,
      provider.client,
      provider.clientAuth(metadata),
      params,
      redirectUri.href,
      verifier,
      provider.requestOptions(endpoint),
    )
    const raw = await rawJson(response)
    const body = await oauth.processAuthorizationCodeResponse(metadata, provider.client, response)
    return acceptTokenResponse(body, { key, now: runtime.clock(), raw })
  } catch (error) {
    throw translateProtocolError(error, 'token')
  }
}
