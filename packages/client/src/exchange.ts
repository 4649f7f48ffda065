/**
 * RFC 8693 token exchange: a token of one source traded for a token for another audience
 * (tsgauth's `target_client_id`). With `refreshable: true` it asks for a refresh token for that
 * audience, so later tokens need neither the subject nor a new exchange.
 */
import { createHash } from 'node:crypto'

import { SsoError } from '@ssokit/core/errors'
import * as oauth from 'oauth4webapi'

import { rawJson } from './client-credentials.js'
import {
  acceptTokenResponse,
  checkExchangeResponse,
  type Credential,
  type CredentialKey,
} from './credential.js'
import { fileNameOf } from './cache/store.js'
import { stringClaim, unverifiedClaims } from './jwt.js'
import {
  type ClientExpertOptions,
  type CommonClientOptions,
  fail,
  nonEmptyString,
  providerOf,
  runtimeOf,
  scopeOption,
} from './options.js'
import { requireTokenEndpoint, type ProviderClient } from './provider.js'
import { translateProtocolError } from './protocol-errors.js'
import { refreshCredential } from './refresh.js'
import { ManagedSource, managedSources, type Grant, type TokenSource } from './token-source.js'

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const REFRESH_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:refresh_token'

export interface ExchangeOptions extends Partial<CommonClientOptions> {
  /** The client whose API the new token is for. */
  readonly audience: string
  /** Ask for a refresh token for the audience (`requested_token_type` refresh_token). Default `false`. */
  readonly refreshable?: boolean
}

const CALLER = 'exchange'

/**
 * The exchange is made by the subject source's client (issuer, id, secret, cache setting) unless
 * the options name another; a source not made by this package needs `issuer` and `clientId`.
 *
 * @example
 * const api = exchange(clientCredentials({ cern: true, clientId, clientSecret }), { audience: 'other-api' })
 */
export function exchange(
  subject: TokenSource,
  options: ExchangeOptions,
  expert: ClientExpertOptions = {},
): TokenSource {
  if (typeof (subject as Partial<TokenSource> | undefined)?.token !== 'function') {
    fail(CALLER, 'the first argument must be a TokenSource', 'ERR_INVALID_ARG_TYPE')
  }
  const audience = nonEmptyString(CALLER, 'audience', options.audience)
  if (options.refreshable !== undefined && typeof options.refreshable !== 'boolean') {
    fail(CALLER, 'refreshable must be a boolean', 'ERR_INVALID_ARG_TYPE')
  }
  const parent = managedSources.get(subject)
  const inherited = parent?.grant.provider.settings
  const clientOptions: CommonClientOptions = {
    ...(options.issuer === undefined && options.cern === undefined && inherited !== undefined
      ? { issuer: inherited.issuer.href }
      : {}),
    ...(inherited?.clientSecret === undefined || options.clientId !== undefined
      ? {}
      : { clientSecret: inherited.clientSecret }),
    ...(inherited?.tokenEndpointAuth === undefined
      ? {}
      : { tokenEndpointAuth: inherited.tokenEndpointAuth }),
    ...options,
    clientId: options.clientId ?? inherited?.clientId ?? '',
  }
  if (clientOptions.clientId === '') {
    fail(
      CALLER,
      'option clientId is required for a source not made by @ssokit/client',
      'ERR_MISSING_OPTION',
    )
  }
  const scope = scopeOption(CALLER, options.scope)
  const provider = providerOf(CALLER, clientOptions, expert)
  const runtime = runtimeOf(CALLER, clientOptions, expert)
  const refreshable = options.refreshable ?? false

  let subjectKey: Promise<string> | undefined
  const keyOf = async (): Promise<CredentialKey> => {
    subjectKey ??= (async () => {
      if (parent !== undefined) return fileNameOf(await parent.grant.key())
      const claims = unverifiedClaims(await subject.token())
      const who = [stringClaim(claims, 'iss'), stringClaim(claims, 'sub')].join(' ')
      return createHash('sha256').update(who).digest('hex').slice(0, 32)
    })()
    return Object.freeze({
      issuer: provider.issuer,
      clientId: provider.settings.clientId,
      grant: 'token_exchange',
      audience,
      scope,
      subject: await subjectKey,
    })
  }

  const grant: Grant = {
    provider,
    key: keyOf,
    obtain: (key, now) => exchangeOnce(provider, subject, key, refreshable, now),
    refresh: (key, previous, now) => refreshCredential(provider, key, previous, now),
  }
  return new ManagedSource(grant, runtime)
}

async function exchangeOnce(
  provider: ProviderClient,
  subject: TokenSource,
  key: CredentialKey,
  refreshable: boolean,
  now: number,
): Promise<Credential> {
  const subjectToken = await subject.token()
  try {
    return await exchangeToken(provider, subjectToken, key, refreshable, now)
  } catch (error) {
    // The subject token may have been revoked or expired early: renew it once, try once more.
    if (error instanceof SsoError && error.code === 'grant_invalid' && subject.renew) {
      const renewed = await subject.renew(subjectToken)
      try {
        return await exchangeToken(provider, renewed, key, refreshable, now)
      } catch (again) {
        throw loginRequired(again)
      }
    }
    throw loginRequired(error)
  }
}

function loginRequired(error: unknown): unknown {
  if (!(error instanceof SsoError) || error.code !== 'grant_invalid') return error
  return new SsoError(
    'login_required',
    'The identity provider refused the subject token of the exchange; log in again.',
    { cause: error },
  )
}

async function exchangeToken(
  provider: ProviderClient,
  subjectToken: string,
  key: CredentialKey,
  refreshable: boolean,
  now: number,
): Promise<Credential> {
  const metadata = await provider.metadata()
  const endpoint = requireTokenEndpoint(metadata)
  const audience = key.audience as string
  const parameters = new URLSearchParams({
    subject_token: subjectToken,
    subject_token_type: ACCESS_TOKEN_TYPE,
    audience,
    requested_token_type: refreshable ? REFRESH_TOKEN_TYPE : ACCESS_TOKEN_TYPE,
  })
  if (key.scope !== undefined) parameters.set('scope', key.scope)
  try {
    const response = await oauth.genericTokenEndpointRequest(
      metadata,
      provider.client,
      provider.clientAuth(metadata),
      TOKEN_EXCHANGE,
      parameters,
      provider.requestOptions(endpoint),
    )
    const raw = await rawJson(response)
    const body = await oauth.processGenericTokenEndpointResponse(
      metadata,
      provider.client,
      response,
    )
    checkExchangeResponse(raw, audience)
    return acceptTokenResponse(body, { key, now, raw })
  } catch (error) {
    throw translateProtocolError(error, 'token')
  }
}
