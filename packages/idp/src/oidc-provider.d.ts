// oidc-provider ships no type declarations; this covers the part of its API ssokit uses.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  export type UnknownRecord = Record<string, unknown>

  export interface ClientModel {
    readonly clientId: string
    readonly clientSecret?: string
    readonly clientAuthMethod: string
    readonly clientName?: string
    grantTypeAllowed(type: string): boolean
    redirectUriAllowed(uri: string): boolean
    postLogoutRedirectUriAllowed(uri: string): boolean
    includeSid(): boolean
  }

  export interface SessionModel {
    accountId?: string
    uid: string
    jti: string
    sidFor(clientId: string): string | undefined
  }

  export interface OidcContext {
    readonly route: string
    readonly issuer: string
    readonly client?: ClientModel
    readonly params?: UnknownRecord
    readonly body?: UnknownRecord
    readonly session?: SessionModel
    readonly entities: Readonly<Record<string, unknown>>
    entity(name: string, value: unknown): void
    urlFor(name: string, params?: UnknownRecord): string
  }

  export interface ProviderContext {
    readonly oidc: OidcContext
    readonly req: IncomingMessage
    readonly res: ServerResponse
    readonly host: string
    body: unknown
    type: string
    status: number
    set(name: string, value: string): void
  }

  export interface ResourceServerInfo {
    scope: string
    audience: string
    accessTokenTTL: number
    accessTokenFormat: 'jwt'
    jwt: { sign: { alg: string } }
  }

  export interface ResourceServerModel {
    readonly audience?: string
    readonly scope: string
  }

  export interface BaseTokenModel {
    readonly kind: string
    jti: string
    clientId: string
    accountId?: string
    grantId?: string
    sid?: string
    scope?: string
    gty?: string
    resource?: string | string[]
    expiresWithSession?: boolean
    readonly expiration: number
    readonly scopes: Set<string>
    resourceServer?: ResourceServerModel
    save(): Promise<string>
  }

  export interface TokenConstructorArgs {
    client: ClientModel
    accountId?: string
    grantId?: string
    scope?: string
    sid?: string
    gty?: string
    resource?: string
    expiresWithSession?: boolean
    sessionUid?: string
  }

  export interface GrantModel {
    readonly jti: string
    accountId: string
    clientId: string
    addOIDCScope(scope: string): void
    addOIDCClaims(claims: readonly string[]): void
    addResourceScope(resource: string, scope: string): void
    save(): Promise<string>
  }

  export interface InteractionDetails {
    readonly uid: string
    readonly prompt: { name: string; details: UnknownRecord; reasons: string[] }
    readonly params: UnknownRecord
    readonly session?: { accountId?: string }
    readonly grantId?: string
    readonly lastSubmission?: UnknownRecord
  }

  export interface JwtStructure {
    header?: UnknownRecord
    payload: UnknownRecord
  }

  export interface Account {
    accountId: string
    claims(use: string, scope: string): UnknownRecord | Promise<UnknownRecord>
  }

  export type Configuration = UnknownRecord

  export type Middleware = (ctx: ProviderContext, next: () => Promise<void>) => Promise<void>

  export class Provider {
    constructor(issuer: string, configuration: Configuration)
    readonly issuer: string
    proxy: boolean
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    on(event: string, listener: (...args: unknown[]) => void): this
    registerGrantType(
      name: string,
      handler: (ctx: ProviderContext, next: () => Promise<void>) => Promise<void>,
      params?: string | readonly string[],
    ): void
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>
    interactionFinished(
      req: IncomingMessage,
      res: ServerResponse,
      result: UnknownRecord,
      options?: { mergeWithLastSubmission?: boolean },
    ): Promise<void>
    readonly Client: {
      find(id: string): Promise<ClientModel | undefined>
      prototype: ClientModel
    }
    readonly Grant: {
      new (args: { accountId: string; clientId: string }): GrantModel
      find(id: string): Promise<GrantModel | undefined>
    }
    readonly AccessToken: new (args: TokenConstructorArgs) => BaseTokenModel
    readonly RefreshToken: new (args: TokenConstructorArgs) => BaseTokenModel
    readonly ResourceServer: new (
      identifier: string,
      info: ResourceServerInfo,
    ) => ResourceServerModel
  }

  export class OidcProviderError extends Error {
    constructor(description?: string)
    readonly error: string
    readonly error_description?: string
    readonly status: number
  }

  export const errors: {
    InvalidGrant: typeof OidcProviderError
    InvalidTarget: typeof OidcProviderError
    InvalidRequest: typeof OidcProviderError
    InvalidClient: typeof OidcProviderError
  }

  export default Provider
}
