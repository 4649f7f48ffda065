/** A real idp and a scripted browser for driving `SessionAuth.handle()` and `authenticate()`. */
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import {
  fromRequest,
  type SessionAuth,
  type SessionAuthOptions,
  type SessionStore,
} from '@ssokit/core'
import {
  CookieJar,
  DEFAULT_IDP_CONFIG,
  loginWithPassword,
  startIdp,
  type IdpClientConfig,
  type IdpUserConfig,
  type RunningIdp,
} from '@ssokit/idp'
import { importJWK, SignJWT } from 'jose'

export const APP = 'https://app.example.org'
/** What a browser sends with a request from one of the application's own pages. */
export const FROM_THE_APP: Readonly<Record<string, string>> = { 'sec-fetch-site': 'same-origin' }
/** What a browser sends with a request that a page of another site made. */
export const FROM_ANOTHER_SITE: Readonly<Record<string, string>> = {
  'sec-fetch-site': 'cross-site',
}
export const SECRET = 'session-secret-for-tests-0123456789abcdef'

/** Options for the `web-app` client the test idp registers, on `store`. */
export function webAppOptions(
  issuer: string,
  store: SessionStore,
  extra: Partial<SessionAuthOptions> = {},
): SessionAuthOptions {
  return {
    issuer,
    clientId: 'web-app',
    clientSecret: 'web-app-secret',
    publicUrl: APP,
    secret: SECRET,
    store,
    ...extra,
  }
}

export interface TestIdp {
  readonly idp: RunningIdp
  readonly issuer: string
  /** Signs a JWT with the idp's own current key (for tokens the idp would never issue). */
  sign(payload: Record<string, unknown>, header?: Record<string, unknown>): Promise<string>
  close(): Promise<void>
}

export async function startTestIdp(
  options: {
    accessTokenTtl?: number
    clients?: IdpClientConfig[]
    users?: IdpUserConfig[]
    backchannelUri?: string
    issuerPath?: string
  } = {},
): Promise<TestIdp> {
  const dir = await mkdtemp(join(tmpdir(), 'ssokit-session-'))
  const keys = join(dir, 'keys.json')
  const webApp: IdpClientConfig = {
    client_id: 'web-app',
    secret: 'web-app-secret',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [`${APP}/*`],
    post_logout_redirect_uris: [`${APP}/*`],
    ...(options.backchannelUri === undefined
      ? {}
      : { backchannel_logout_uri: options.backchannelUri }),
  }
  const idp = await startIdp({
    port: 0,
    keys,
    log: false,
    config: {
      ...DEFAULT_IDP_CONFIG,
      users: [...(DEFAULT_IDP_CONFIG.users ?? []), ...(options.users ?? [])],
      clients: [...(DEFAULT_IDP_CONFIG.clients ?? []), webApp, ...(options.clients ?? [])],
    },
    ...(options.accessTokenTtl === undefined ? {} : { accessTokenTtl: options.accessTokenTtl }),
    ...(options.issuerPath === undefined ? {} : { issuerPath: options.issuerPath }),
  })
  return {
    idp,
    issuer: idp.issuer,
    async sign(payload, header = {}) {
      const jwks = JSON.parse(await readFile(keys, 'utf8')) as {
        keys: (Record<string, unknown> & { kid: string })[]
      }
      const jwk = jwks.keys[0]!
      const key = await importJWK(jwk as Parameters<typeof importJWK>[0], 'RS256')
      return new SignJWT(payload)
        .setProtectedHeader({ alg: 'RS256', kid: jwk.kid, ...header })
        .sign(key)
    },
    async close() {
      await idp.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** One browser: cookies for the app (through `handle`) and for the idp (through real HTTP). */
export class Browser {
  readonly app = new CookieJar()
  readonly idpCookies = new CookieJar()
  constructor(
    readonly auth: SessionAuth,
    readonly issuer: string,
  ) {}

  cookieHeader(path = '/'): string {
    return this.app.header(`${APP}${path}`)
  }

  /** Sends a request to the session routes, recording cookies. */
  async route(pathOrUrl: string, init: RequestInit = {}): Promise<Response> {
    const url = pathOrUrl.startsWith('http') ? pathOrUrl : `${APP}${pathOrUrl}`
    const headers = new Headers(init.headers)
    const cookie = this.app.header(url)
    if (cookie) headers.set('cookie', cookie)
    const response = await this.auth.handle(new Request(url, { ...init, headers }))
    if (response === undefined) throw new Error(`no route for ${url}`)
    this.app.store(response)
    return response
  }

  /** `authenticate` as an adapter would call it for an app page. */
  authenticate(path = '/', headers: Record<string, string> = {}) {
    const cookie = this.app.header(`${APP}${path}`)
    return this.auth.authenticate(
      fromRequest(
        new Request(`${APP}${path}`, { headers: { ...headers, ...(cookie ? { cookie } : {}) } }),
      ),
    )
  }

  /** Starts a login and returns the provider's authorize URL. */
  async start(returnTo = '/'): Promise<URL> {
    const response = await this.route(`/auth/login?returnTo=${encodeURIComponent(returnTo)}`)
    if (response.status !== 302)
      throw new Error(`login answered ${response.status}: ${await response.text()}`)
    return new URL(response.headers.get('location')!)
  }

  /** Logs in at the idp and returns the callback URL it sends the browser to (not yet visited). */
  async atIdp(authorize: URL, username = 'alice', password = username): Promise<string> {
    const { location } = await loginWithPassword({
      issuer: this.issuer,
      authorizeUrl: authorize,
      username,
      password,
      cookies: this.idpCookies,
    })
    return location
  }

  /** A full login; resolves to the callback's response. */
  async login(username = 'alice', returnTo = '/'): Promise<Response> {
    const callback = await this.atIdp(await this.start(returnTo), username)
    return this.route(callback)
  }
}

/** The session id inside the browser's signed session cookie. */
export function sessionIdOf(browser: Browser): string {
  const match = /__Host-ssokit-session=([^.;]+)\./.exec(browser.cookieHeader())
  if (!match) throw new Error('no session cookie')
  return match[1]!
}
