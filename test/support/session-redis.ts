/**
 * Application instances sharing sessions in Redis, served over real HTTP with `@ssokit/node`,
 * and the plain-fetch login that drives them (no browser): what a load balancer in front of
 * several replicas looks like to the session code.
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

import { createSessionAuth, type SessionAuth, type SessionAuthOptions } from '@ssokit/core'
import { CookieJar, DEFAULT_IDP_CONFIG, loginWithPassword, type IdpConfig } from '@ssokit/idp'
import { withAuth } from '@ssokit/node'

export const CLIENT_ID = 'session-app'
export const CLIENT_SECRET = 'session-app-secret'

/**
 * The development realm plus the replicas' confidential client, whose back-channel logout the
 * provider sends to `publicUrl` (one instance: the others learn of it through the store).
 */
export function idpConfigFor(publicUrl: string): IdpConfig {
  return {
    ...DEFAULT_IDP_CONFIG,
    clients: [
      ...(DEFAULT_IDP_CONFIG.clients ?? []),
      {
        client_id: CLIENT_ID,
        secret: CLIENT_SECRET,
        grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: ['http://localhost:*/*'],
        post_logout_redirect_uris: ['http://localhost:*/*'],
        backchannel_logout_uri: `${publicUrl}/auth/backchannel-logout`,
      },
    ],
  }
}

export interface RedisSessionApp {
  /** `http://localhost:<port>` */
  readonly url: string
  readonly port: number
  readonly auth: SessionAuth
  /** `METHOD /path` of every request this instance received, oldest first. */
  readonly requests: readonly string[]
  /** Stops listening, then closes the session authenticator and the store it was given. */
  close(): Promise<void>
}

export interface RedisSessionAppSetup {
  /** The port to listen on; 0 (the default) picks a free one. A restarted instance reuses its predecessor's. */
  readonly port?: number
  /**
   * The session options, built once the public URL (`http://localhost:<port>`) is known. The
   * instance owns the `store` it returns and closes it with itself.
   */
  readonly options: (
    publicUrl: string,
  ) =>
    | Omit<SessionAuthOptions, 'publicUrl' | 'cookies'>
    | Promise<Omit<SessionAuthOptions, 'publicUrl' | 'cookies'>>
}

/** Starts one instance: `/api/me` answers who is signed in (session or bearer), as JSON. */
export async function startRedisSessionApp(setup: RedisSessionAppSetup): Promise<RedisSessionApp> {
  const server: Server = createServer()
  server.listen(setup.port ?? 0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  const url = `http://localhost:${port}`
  let options: Omit<SessionAuthOptions, 'publicUrl' | 'cookies'>
  let auth: SessionAuth
  try {
    options = await setup.options(url)
    auth = createSessionAuth({
      ...options,
      publicUrl: url,
      cookies: { insecureHttpForLocalhost: true },
    })
  } catch (error) {
    server.close()
    throw error
  }
  const requests: string[] = []
  const me = withAuth(
    (_req, res, identity) => {
      res.setHeader('content-type', 'application/json')
      res.setHeader('cache-control', 'no-store')
      res.end(JSON.stringify({ subject: identity.subject, via: identity.via }))
    },
    { auth },
  )
  server.on('request', (req, res) => {
    requests.push(`${req.method ?? 'GET'} ${(req.url ?? '/').split('?')[0] ?? '/'}`)
    me(req, res).catch(() => {
      if (!res.headersSent) res.statusCode = 500
      res.end()
    })
  })
  return {
    url,
    port,
    auth,
    requests,
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
      await auth.close()
      await options.store?.close()
    },
  }
}

export interface FetchLogin {
  /** The app's cookies (the session cookie among them). */
  readonly app: CookieJar
  /** The provider's cookies (its single sign-on session), for a logout at the provider. */
  readonly idp: CookieJar
  /** The answer of the app's callback. */
  readonly callback: Response
}

/** Opens `<prefix>/login` on an instance; resolves to the provider's authorization URL. */
export async function beginLogin(
  base: string,
  app: CookieJar,
  returnTo = '/api/me',
): Promise<string> {
  const start = await app.fetch(`${base}/auth/login?returnTo=${encodeURIComponent(returnTo)}`)
  const authorizeUrl = start.headers.get('location')
  if (start.status !== 302 || authorizeUrl === null) {
    throw new Error(`${base}/auth/login answered ${start.status}, not a redirect`)
  }
  return authorizeUrl
}

/**
 * Fills in the provider's login form for an authorization started with `beginLogin`, then
 * follows the redirect to the app's callback (the instance named by its `redirect_uri`).
 */
export async function finishLogin(
  issuer: string,
  authorizeUrl: string,
  username: string,
  app: CookieJar,
): Promise<FetchLogin> {
  const { location, cookies } = await loginWithPassword({
    issuer,
    authorizeUrl,
    username,
    password: username,
  })
  const callback = await app.fetch(location)
  return { app, idp: cookies, callback }
}

/** Signs in on an instance the way a browser does: login route, provider form, callback. */
export async function fetchLogin(
  issuer: string,
  base: string,
  username: string,
  app: CookieJar = new CookieJar(),
): Promise<FetchLogin> {
  return finishLogin(issuer, await beginLogin(base, app), username, app)
}

/** `GET <base>/api/me` as a script on the page would call it (JSON, not a navigation). */
export async function me(
  base: string,
  jar: CookieJar,
  headers: Record<string, string> = {},
): Promise<{
  status: number
  response: Response
  body: { subject?: string; via?: string; error?: string }
}> {
  const response = await jar.fetch(`${base}/api/me`, {
    headers: { accept: 'application/json', ...headers },
  })
  const text = await response.text()
  const body =
    text === '' ? {} : (JSON.parse(text) as { subject?: string; via?: string; error?: string })
  return { status: response.status, response, body }
}
