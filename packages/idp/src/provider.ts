import { randomBytes } from 'node:crypto'
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose'
import type {
  Account,
  BaseTokenModel,
  ClientModel,
  InteractionDetails,
  JwtStructure,
  Provider,
  ProviderContext,
  ResourceServerInfo,
} from 'oidc-provider'
import { rolesIn, roleClaims, SERVICE_ACCOUNT_PREFIX, userClaims } from './claims.js'
import {
  examplesForPatterns,
  GRANT_TYPE_URNS,
  matchesUriPattern,
  parseUriPattern,
  type ResolvedClient,
  type ResolvedIdpConfig,
  type ResolvedUser,
  type TokenStyle,
} from './config.js'
import { MemoryAdapter, MemoryStore } from './adapter.js'
import { publicJwk, type SigningJwk } from './keys.js'
import {
  deviceConfirmPage,
  deviceInputPage,
  errorPage,
  logoutConfirmPage,
  messagePage,
  PAGE_HEADERS,
} from './pages.js'

type OidcProviderModule = typeof import('oidc-provider')

/**
 * Set on the logout confirmation page when the request's `id_token_hint` is an ID token of the
 * browser's own session: only then may the page be confirmed without asking the user.
 */
export const HINT_MATCHES_HEADER = 'x-ssokit-logout-hint'

/** Whether the validated `id_token_hint` names the browser's own login session. */
function hintMatchesSession(ctx: ProviderContext): boolean {
  const hint = ctx.oidc.entities.IdTokenHint as { payload?: Record<string, unknown> } | undefined
  const session = ctx.oidc.session
  const payload = hint?.payload
  if (payload === undefined || session?.accountId === undefined) return false
  const { sub, sid, aud } = payload
  if (sub !== session.accountId || typeof aud !== 'string') return false
  return typeof sid === 'string' && session.sidFor(aud) === sid
}

/** Resource indicators name clients this way; the token audience is the bare client id. */
export const RESOURCE_PREFIX = 'urn:ssokit:client:'
const RESOURCE_SCOPE = 'openid profile email offline_access'
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const REFRESH_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:refresh_token'

let loading: Promise<OidcProviderModule> | undefined

/**
 * oidc-provider warns at import time when Node is older than its preferred LTS line; it runs
 * fine on Node 20, so that one notice is held back while the module loads.
 */
export function loadOidcProvider(): Promise<OidcProviderModule> {
  loading ??= (async () => {
    const warn = console.warn
    console.warn = (...args: unknown[]) => {
      if (typeof args[0] === 'string' && args[0].includes('Unsupported runtime')) return
      warn(...args)
    }
    try {
      return await import('oidc-provider')
    } finally {
      console.warn = warn
    }
  })()
  return loading
}

/** Everything one running realm shares across provider rebuilds (key rotation). */
export class Realm {
  readonly store = new MemoryStore()
  readonly cookieKeys = [randomBytes(32).toString('base64url')]
  /** Access tokens issued by this process: jti -> grant, so a logout also ends them. */
  readonly issued = new Map<string, { grantId: string | undefined; exp: number }>()
  readonly revoked = new Set<string>()
  /** Rotate refresh tokens for every client, not only public ones (oidc-provider's default). */
  rotateRefreshTokens = false
  readonly #users: ReadonlyMap<string, ResolvedUser>
  readonly #clients: ReadonlyMap<string, ResolvedClient>
  #jwks: ReturnType<typeof createLocalJWKSet>
  provider: Provider | undefined

  constructor(
    readonly config: ResolvedIdpConfig,
    readonly issuer: string,
    readonly prefix: string,
    public keys: SigningJwk[],
    readonly tokenStyle: TokenStyle,
  ) {
    this.#users = new Map(config.users.map((u) => [u.username, u]))
    this.#clients = new Map(config.clients.map((c) => [c.client_id, c]))
    this.#jwks = createLocalJWKSet({ keys: keys.map(publicJwk) })
  }

  user(username: string): ResolvedUser | undefined {
    return this.#users.get(username)
  }

  client(clientId: string): ResolvedClient | undefined {
    return this.#clients.get(clientId)
  }

  setKeys(keys: SigningJwk[]): void {
    this.keys = keys
    this.#jwks = createLocalJWKSet({ keys: keys.map(publicJwk) })
  }

  resourceServerInfo(audience: string): ResourceServerInfo {
    return {
      scope: RESOURCE_SCOPE,
      audience,
      accessTokenTTL: this.config.accessTokenTtl,
      accessTokenFormat: 'jwt',
      jwt: { sign: { alg: 'RS256' } },
    }
  }

  /**
   * The claims of an access token this realm issued, or `undefined` when it is not one, has
   * expired, was revoked, or its login ended.
   */
  async verifyAccessToken(token: string): Promise<JWTPayload | undefined> {
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, this.#jwks, {
        issuer: this.issuer,
        algorithms: ['RS256'],
      }))
    } catch {
      return undefined
    }
    // ID tokens are signed by the same keys; only access tokens carry client_id.
    if (typeof payload.client_id !== 'string' || typeof payload.jti !== 'string') return undefined
    if (this.revoked.has(payload.jti)) return undefined
    const issued = this.issued.get(payload.jti)
    if (issued?.grantId !== undefined && this.provider) {
      const grant = await this.provider.Grant.find(issued.grantId)
      if (!grant) return undefined
    }
    return payload
  }

  remember(jti: string, grantId: string | undefined, exp: number): void {
    const now = Math.floor(Date.now() / 1000)
    if (this.issued.size > 10_000) {
      for (const [id, entry] of this.issued) if (entry.exp < now) this.issued.delete(id)
    }
    this.issued.set(jti, { grantId, exp })
  }

  reset(): void {
    this.store.clear()
    this.issued.clear()
    this.revoked.clear()
  }
}

function audienceOf(aud: unknown): string | undefined {
  if (typeof aud === 'string') return aud
  if (Array.isArray(aud) && typeof aud[0] === 'string') return aud[0]
  return undefined
}

function clientMetadata(client: ResolvedClient): Record<string, unknown> {
  const code = client.grant_types.includes('authorization_code')
  return {
    client_id: client.client_id,
    client_name: client.name ?? client.client_id,
    token_endpoint_auth_method: client.token_endpoint_auth_method,
    ...(client.secret === undefined ? {} : { client_secret: client.secret }),
    ...(client.jwks === undefined ? {} : { jwks: client.jwks }),
    grant_types: client.grant_types.map((g) => GRANT_TYPE_URNS[g]),
    response_types: code ? ['code'] : [],
    redirect_uris: examplesForPatterns(client.redirect_uris),
    post_logout_redirect_uris: examplesForPatterns(client.post_logout_redirect_uris),
    ...(client.backchannel_logout_uri === undefined
      ? {}
      : {
          backchannel_logout_uri: client.backchannel_logout_uri,
          backchannel_logout_session_required: true,
        }),
  }
}

function setPage(ctx: ProviderContext, html: string, status?: number): void {
  for (const [name, value] of Object.entries(PAGE_HEADERS)) ctx.set(name, value)
  ctx.type = 'html'
  if (status !== undefined) ctx.status = status
  ctx.body = html
}

/** Builds the oidc-provider instance for `realm` with its current keys. */
export async function createProvider(realm: Realm): Promise<Provider> {
  const { default: ProviderClass, errors } = await loadOidcProvider()
  const { config, prefix } = realm
  const name = config.realm
  const ttl = config.accessTokenTtl

  const findAccount = (ctx: ProviderContext, sub: string): Account | undefined => {
    const user = realm.user(sub)
    if (!user) return undefined
    return {
      accountId: sub,
      claims: (use) => {
        const clientId = ctx.oidc.client?.clientId
        return {
          sub,
          ...userClaims(user),
          ...(use === 'id_token' ? { typ: 'ID' } : {}),
          ...(clientId === undefined
            ? {}
            : { azp: clientId, cern_roles: rolesIn(user.roles, clientId) }),
        }
      },
    }
  }

  const customizeJwt = (_ctx: ProviderContext, token: BaseTokenModel, jwt: JwtStructure): void => {
    const p = jwt.payload
    const audience = audienceOf(p.aud) ?? token.clientId
    if (realm.tokenStyle === 'keycloak') {
      jwt.header = { typ: 'JWT' }
      p.typ = 'Bearer'
    }
    p.azp = token.clientId
    if (token.kind === 'ClientCredentials') {
      p.sub = `${SERVICE_ACCOUNT_PREFIX}${token.clientId}`
      Object.assign(p, roleClaims(realm.client(token.clientId)?.roles ?? {}, [], audience))
    } else {
      const user = token.accountId === undefined ? undefined : realm.user(token.accountId)
      if (user) {
        Object.assign(p, userClaims(user), roleClaims(user.roles, user.realm_roles, audience))
      }
      if (token.sid !== undefined) p.sid = token.sid
    }
    if (typeof p.jti === 'string' && typeof p.exp === 'number') {
      realm.remember(p.jti, token.grantId, p.exp)
    }
  }

  // Client credentials with CERN's `audience` parameter: the indicator it stands for, per request.
  const audienceRequests = new WeakMap<ProviderContext, string>()

  /**
   * Whether `client` may have a token for `audience`: its own, one it is configured for
   * (`resource_audiences`), one named by CERN's client-credentials `audience`, or the one a
   * token exchange already granted to the refresh token being used.
   */
  const mayAddress = (
    ctx: ProviderContext,
    client: ClientModel,
    indicator: string,
    audience: string,
  ): boolean => {
    if (audience === client.clientId) return true
    if (realm.client(client.clientId)?.resource_audiences.includes(audience)) return true
    if (audienceRequests.get(ctx) === indicator) return true
    const refresh = ctx.oidc.entities.RefreshToken as BaseTokenModel | undefined
    const granted = refresh?.gty?.split(' ').includes('token_exchange') ? refresh.resource : []
    return granted === indicator || (Array.isArray(granted) && granted.includes(indicator))
  }

  const tokenExchange = async (ctx: ProviderContext): Promise<void> => {
    const provider = realm.provider
    const client = ctx.oidc.client
    const params = ctx.oidc.params ?? {}
    if (!provider || !client) throw new errors.InvalidRequest('token exchange is not available')
    const subjectToken = params.subject_token
    if (typeof subjectToken !== 'string') {
      throw new errors.InvalidRequest('missing required parameter subject_token')
    }
    if (
      params.subject_token_type !== undefined &&
      params.subject_token_type !== ACCESS_TOKEN_TYPE
    ) {
      throw new errors.InvalidRequest(`subject_token_type must be ${ACCESS_TOKEN_TYPE}`)
    }
    const requested = params.requested_token_type ?? ACCESS_TOKEN_TYPE
    if (requested !== ACCESS_TOKEN_TYPE && requested !== REFRESH_TOKEN_TYPE) {
      throw new errors.InvalidRequest('requested_token_type is not supported')
    }
    const claims = await realm.verifyAccessToken(subjectToken)
    if (!claims) throw new errors.InvalidGrant('subject_token is invalid or expired')
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud]
    if (!audiences.includes(client.clientId) && claims.azp !== client.clientId) {
      throw new errors.InvalidGrant('subject_token was not issued to this client')
    }
    const user = typeof claims.sub === 'string' ? realm.user(claims.sub) : undefined
    if (!user) throw new errors.InvalidGrant('subject_token does not belong to a user')
    const audience = typeof params.audience === 'string' ? params.audience : client.clientId
    if (!realm.client(audience)) throw new errors.InvalidTarget('audience names no known client')

    const resource = `${RESOURCE_PREFIX}${audience}`
    const known = new Set(RESOURCE_SCOPE.split(' '))
    const scope =
      (typeof claims.scope === 'string' ? claims.scope.split(' ') : [])
        .filter((s) => known.has(s) && s !== 'offline_access')
        .join(' ') || 'openid'
    const grant = new provider.Grant({ accountId: user.username, clientId: client.clientId })
    grant.addOIDCScope(scope)
    grant.addResourceScope(resource, scope)
    const grantId = await grant.save()
    const sid = typeof claims.sid === 'string' ? { sid: claims.sid } : {}
    const at = new provider.AccessToken({
      accountId: user.username,
      client,
      grantId,
      scope,
      gty: 'token_exchange',
      ...sid,
    })
    at.resourceServer = new provider.ResourceServer(resource, realm.resourceServerInfo(audience))
    const body: Record<string, unknown> = {
      access_token: await at.save(),
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: at.expiration,
      scope,
    }
    if (requested === REFRESH_TOKEN_TYPE) {
      const rt = new provider.RefreshToken({
        accountId: user.username,
        client,
        grantId,
        scope,
        resource,
        gty: 'token_exchange',
        ...sid,
      })
      body.refresh_token = await rt.save()
      body.refresh_expires_in = rt.expiration
      body.issued_token_type = REFRESH_TOKEN_TYPE
    }
    ctx.body = body
  }

  const configuration = {
    adapter: (model: string) => new MemoryAdapter(model, realm.store),
    clients: config.clients.map(clientMetadata),
    clientAuthMethods: [...config.tokenEndpointAuthMethods],
    jwks: { keys: realm.keys },
    cookies: { keys: realm.cookieKeys },
    claims: {
      openid: ['sub', 'typ', 'azp', 'cern_roles'],
      profile: [
        'name',
        'given_name',
        'family_name',
        'preferred_username',
        'cern_upn',
        'cern_person_id',
      ],
      email: ['email', 'email_verified'],
    },
    scopes: ['openid', 'offline_access', 'profile', 'email'],
    conformIdTokenClaims: false,
    responseTypes: ['code', 'none'],
    findAccount,
    formats: { customizers: { jwt: customizeJwt } },
    pkce: { required: () => true },
    issueRefreshToken: (_ctx: ProviderContext, client: ClientModel) =>
      client.grantTypeAllowed('refresh_token'),
    // oidc-provider revokes the grant when a rotated-out refresh token comes back.
    ...(realm.rotateRefreshTokens ? { rotateRefreshToken: () => true } : {}),
    clientBasedCORS: () => true,
    interactions: {
      url: (_ctx: ProviderContext, interaction: { uid: string }) =>
        `${prefix}/login-actions/authenticate/${interaction.uid}`,
    },
    routes: {
      authorization: '/protocol/openid-connect/auth',
      token: '/protocol/openid-connect/token',
      jwks: '/protocol/openid-connect/certs',
      userinfo: '/protocol/openid-connect/userinfo',
      end_session: '/protocol/openid-connect/logout',
      device_authorization: '/protocol/openid-connect/auth/device',
      introspection: '/protocol/openid-connect/token/introspect',
      revocation: '/protocol/openid-connect/revoke',
      code_verification: '/device',
      pushed_authorization_request: '/protocol/openid-connect/ext/par/request',
    },
    discovery: {
      userinfo_endpoint: `${realm.issuer.replace(/\/$/, '')}/protocol/openid-connect/userinfo`,
    },
    ttl: {
      AccessToken: ttl,
      ClientCredentials: ttl,
      IdToken: ttl,
      AuthorizationCode: 60,
      DeviceCode: config.deviceCodeTtl,
      Interaction: 1800,
      Session: config.sessionTtl,
      Grant: Math.max(config.offlineTokenTtl, config.refreshTokenTtl, config.sessionTtl),
      RefreshToken: (_ctx: ProviderContext, token: BaseTokenModel) =>
        token.scopes.has('offline_access') ? config.offlineTokenTtl : config.refreshTokenTtl,
    },
    features: {
      devInteractions: { enabled: false },
      userinfo: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        allowedPolicy: (_ctx: ProviderContext, client: ClientModel, token: BaseTokenModel) =>
          client.clientAuthMethod !== 'none' || token.clientId === client.clientId,
      },
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx: ProviderContext, client: ClientModel, token: BaseTokenModel) => {
          if (token.clientId === client.clientId) return true
          if (client.clientAuthMethod === 'none') return false
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token')
        },
      },
      backchannelLogout: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        // oidc-provider has validated any id_token_hint (signature, issuer, audience) by now.
        logoutSource: (ctx: ProviderContext, form: string) => {
          if (hintMatchesSession(ctx)) ctx.set(HINT_MATCHES_HEADER, 'session')
          setPage(ctx, logoutConfirmPage(name, form))
        },
        postLogoutSuccessSource: (ctx: ProviderContext) => {
          setPage(ctx, messagePage(name, 'Signed out', 'You have signed out of this realm.'))
        },
      },
      deviceFlow: {
        enabled: true,
        charset: 'base-20',
        mask: '****-****',
        userCodeInputSource: (ctx: ProviderContext, form: string, _out: unknown, err: unknown) => {
          setPage(ctx, deviceInputPage(name, form, err !== undefined))
        },
        userCodeConfirmSource: (
          ctx: ProviderContext,
          form: string,
          client: ClientModel,
          _info: unknown,
          userCode: string,
        ) => {
          setPage(
            ctx,
            deviceConfirmPage(name, form, client.clientName ?? client.clientId, userCode),
          )
        },
        successSource: (ctx: ProviderContext) => {
          setPage(
            ctx,
            messagePage(
              name,
              'Device signed in',
              'Your device is now signed in. You can close this page.',
            ),
          )
        },
      },
      resourceIndicators: {
        enabled: true,
        useGrantedResource: () => true,
        defaultResource: (ctx: ProviderContext, client: ClientModel) => {
          const audience = ctx.oidc.body?.audience
          if (
            ctx.oidc.route === 'token' &&
            ctx.oidc.params?.grant_type === 'client_credentials' &&
            typeof audience === 'string'
          ) {
            const indicator = `${RESOURCE_PREFIX}${audience}`
            audienceRequests.set(ctx, indicator)
            return indicator
          }
          return `${RESOURCE_PREFIX}${client.clientId}`
        },
        getResourceServerInfo: (ctx: ProviderContext, indicator: string, client: ClientModel) => {
          const audience = indicator.startsWith(RESOURCE_PREFIX)
            ? indicator.slice(RESOURCE_PREFIX.length)
            : undefined
          if (audience === undefined || !realm.client(audience)) {
            throw new errors.InvalidTarget('audience names no known client')
          }
          if (!mayAddress(ctx, client, indicator, audience)) {
            throw new errors.InvalidTarget('this client may not ask for tokens for that audience')
          }
          return realm.resourceServerInfo(audience)
        },
      },
    },
    renderError: (ctx: ProviderContext, out: { error: string; error_description?: string }) => {
      setPage(ctx, errorPage(name, out.error, out.error_description))
    },
    // Back-channel logout calls apps on this machine; the SSRF guard for loopback is dropped.
    fetch: (url: string, options: RequestInit & { dispatcher?: unknown }) => {
      const init: RequestInit & { dispatcher?: unknown } = { ...options }
      delete init.dispatcher
      return fetch(url, init)
    },
  }

  const provider = new ProviderClass(realm.issuer, configuration)
  provider.proxy = false
  provider.registerGrantType(TOKEN_EXCHANGE, tokenExchange, [
    'subject_token',
    'subject_token_type',
    'audience',
    'requested_token_type',
    'scope',
  ])

  // Redirect URIs are patterns (any loopback port, path prefixes), checked here.
  const patterns = new Map(
    config.clients.map((c) => [
      c.client_id,
      {
        redirect: c.redirect_uris.map(parseUriPattern),
        postLogout: c.post_logout_redirect_uris.map(parseUriPattern),
      },
    ]),
  )
  const proto = provider.Client.prototype
  // Keycloak puts `sid` in every token, not only for clients with back-channel logout.
  proto.includeSid = () => true
  proto.redirectUriAllowed = function (this: ClientModel, uri: string): boolean {
    return matchesUriPattern(uri, patterns.get(this.clientId)?.redirect ?? [])
  }
  proto.postLogoutRedirectUriAllowed = function (this: ClientModel, uri: string): boolean {
    return matchesUriPattern(uri, patterns.get(this.clientId)?.postLogout ?? [])
  }
  return provider
}

/** Grants what the client asked for: every client of the realm is first-party (no consent). */
export async function grantConsent(
  provider: Provider,
  details: InteractionDetails,
): Promise<string> {
  const accountId = details.session?.accountId
  const clientId = details.params.client_id
  if (accountId === undefined || typeof clientId !== 'string') {
    throw new Error('the interaction has no account or client')
  }
  const grant =
    (details.grantId === undefined ? undefined : await provider.Grant.find(details.grantId)) ??
    new provider.Grant({ accountId, clientId })
  const d = details.prompt.details
  if (Array.isArray(d.missingOIDCScope)) grant.addOIDCScope(d.missingOIDCScope.join(' '))
  if (Array.isArray(d.missingOIDCClaims)) grant.addOIDCClaims(d.missingOIDCClaims as string[])
  if (typeof d.missingResourceScopes === 'object' && d.missingResourceScopes !== null) {
    for (const [indicator, scopes] of Object.entries(d.missingResourceScopes)) {
      if (Array.isArray(scopes)) grant.addResourceScope(indicator, scopes.join(' '))
    }
  }
  return grant.save()
}
