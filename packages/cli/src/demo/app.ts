/**
 * The application `ssokit demo` runs: plain `node:http`, browser sessions and bearer tokens
 * through one `createSessionAuth`, a page for everyone, a page for administrators and a JSON API.
 * It is the smallest honest picture of an app behind ssokit, so it uses only public APIs.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import {
  createSessionAuth,
  isSsoError,
  requireRoles,
  type Identity,
  type RequestLike,
  type SessionAuth,
  type SessionStore,
} from '@ssokit/core'
import { authRoutes, sendParts, toRequestLike } from '@ssokit/node'
import {
  adminPage,
  FAVICON_SVG,
  forbiddenPage,
  homePage,
  messagePage,
  pageHeaders,
  pagePolicy,
  sessionPage,
} from './pages.js'

/** The `demo-app` client of the development provider's built-in realm. */
export const DEMO_CLIENT_ID = 'demo-app'
export const DEMO_CLIENT_SECRET = 'demo-app-secret'
/** The demo realm's public client for `ssokit login`. */
export const DEMO_CLI_CLIENT_ID = 'demo-cli'

/**
 * DEMO ONLY. A session secret written in the source is public: anyone can forge this app's
 * cookies. A real application reads a long random secret from its environment. It is fixed here
 * so that every instance of the demo app sharing a Redis store opens the others' cookies.
 */
const DEMO_SESSION_SECRET = 'ssokit-demo-only-session-secret-never-use-in-production'

const ADMIN_ROLE = 'admin'

export interface DemoAppOptions {
  /** Port to listen on; `0` picks a free one. */
  readonly port: number
  /** Interface to listen on. Default `127.0.0.1`. */
  readonly host?: string
  /** The identity provider's issuer URL. */
  readonly issuer: string
  /** Where sessions live. Default: in memory, in this process. */
  readonly store?: SessionStore
  /** How the admin page names the store. Default: "In memory" or "Custom store". */
  readonly storeName?: string
  /** The app's external origin. Default `http://localhost:<bound port>`. */
  readonly publicUrl?: string
  /** Receives a line for each unexpected failure inside a request. Default: none. */
  readonly log?: (line: string) => void
}

export interface RunningDemoApp {
  /** The app's public origin, e.g. `http://localhost:3000`. */
  readonly url: string
  readonly port: number
  readonly auth: SessionAuth
  close(): Promise<void>
}

/** A browser loading a page, as opposed to a script or `fetch()` asking for data. */
function wantsHtml(req: IncomingMessage): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false
  if (req.headers['x-requested-with'] !== undefined) return false
  const mode = req.headers['sec-fetch-mode']
  if (mode !== undefined && mode !== 'navigate' && mode !== 'nested-navigate') return false
  return (req.headers.accept ?? '').toLowerCase().includes('text/html')
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, {
    'content-type': 'application/json',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  })
  res.end(JSON.stringify(body, null, 2))
}

function identityJson(identity: Identity): Record<string, unknown> {
  const claim = (name: string): unknown => identity.claims[name]
  return {
    subject: identity.subject,
    username: identity.username,
    name: identity.name ?? null,
    email: identity.email ?? null,
    roles: [...identity.roles].sort(),
    kind: identity.kind,
    via: identity.via,
    issuer: claim('iss') ?? null,
    client: claim('azp') ?? null,
  }
}

function listen(
  server: ReturnType<typeof createServer>,
  port: number,
  host: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const failed = (error: Error) => {
      reject(error)
    }
    server.once('error', failed)
    server.listen(port, host, () => {
      server.off('error', failed)
      resolve((server.address() as AddressInfo).port)
    })
  })
}

export async function startDemoApp(options: DemoAppOptions): Promise<RunningDemoApp> {
  const host = options.host ?? '127.0.0.1'
  const startedAt = new Date()
  let serve: (req: IncomingMessage, res: ServerResponse) => Promise<void> = (_req, res) => {
    res.writeHead(503, { 'retry-after': '1' })
    res.end()
    return Promise.resolve()
  }
  const server = createServer((req, res) => {
    void serve(req, res)
  })
  const port = await listen(server, options.port, host)

  let auth: SessionAuth
  let publicUrl: string
  try {
    publicUrl = new URL(options.publicUrl ?? `http://localhost:${port}`).origin
    auth = createSessionAuth({
      issuer: options.issuer,
      clientId: DEMO_CLIENT_ID,
      clientSecret: DEMO_CLIENT_SECRET,
      publicUrl,
      secret: DEMO_SESSION_SECRET,
      // The API also takes the tokens of the realm's own command-line client, as a Keycloak
      // audience mapper on demo-cli would arrange: `ssokit login --client-id demo-cli` then works.
      bearer: { audience: [DEMO_CLIENT_ID, DEMO_CLI_CLIENT_ID] },
      ...(options.store === undefined ? {} : { store: options.store }),
      // Plain http is allowed for a localhost publicUrl only; a real deployment uses https.
      cookies: { insecureHttpForLocalhost: publicUrl.startsWith('http:') },
      // A failed sign-in or a store outage looks like the rest of the demo.
      pages: {
        render: sessionPage,
        contentSecurityPolicy: pagePolicy(`${publicUrl} ${new URL(options.issuer).origin}`),
      },
    })
  } catch (error) {
    server.close()
    throw error
  }

  const issuerOrigin = new URL(options.issuer).origin
  const headers = pageHeaders(`${publicUrl} ${issuerOrigin}`)
  const storeName =
    options.storeName ?? (options.store === undefined ? 'In memory (this process only)' : 'Custom')
  const routes = authRoutes(auth, { publicUrl })
  const publicHost = new URL(publicUrl).host

  function page(res: ServerResponse, status: number, html: string): void {
    res.writeHead(status, headers)
    res.end(html)
  }

  /** The signed-in identity, or `undefined` once the rejection has been sent. */
  async function identify(
    res: ServerResponse,
    request: RequestLike,
  ): Promise<Identity | undefined> {
    try {
      return await auth.authenticate(request)
    } catch (error) {
      sendParts(res, auth.reject(error, request))
      return undefined
    }
  }

  async function home(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const request = toRequestLike(req)
    let identity: Identity | undefined
    try {
      identity = await auth.authenticate(request)
    } catch (error) {
      // Not signed in (or a stale cookie): the public page, dropping the stale cookie if any.
      if (!isSsoError(error) || error.status !== 401) {
        sendParts(res, auth.reject(error, request))
        return
      }
      const cookies = auth.reject(error, request).headers['set-cookie']
      if (cookies !== undefined) res.setHeader('set-cookie', cookies)
    }
    page(
      res,
      200,
      homePage({
        now: new Date(),
        identity,
        loginUrl: auth.loginUrl('/'),
        logoutUrl: auth.logoutUrl,
        publicUrl,
      }),
    )
  }

  async function whoami(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const identity = await identify(res, toRequestLike(req))
    if (identity !== undefined) sendJson(res, 200, identityJson(identity))
  }

  async function admin(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const request = toRequestLike(req)
    const identity = await identify(res, request)
    if (identity === undefined) return
    try {
      requireRoles(identity, [ADMIN_ROLE])
    } catch (error) {
      if (wantsHtml(req)) page(res, 403, forbiddenPage(identity, ADMIN_ROLE))
      else sendParts(res, auth.reject(error, request))
      return
    }
    page(
      res,
      200,
      adminPage({ now: new Date(), identity, issuer: options.issuer, store: storeName, startedAt }),
    )
  }

  serve = async (req, res) => {
    try {
      if (await routes(req, res)) return
      const path = new URL(req.url ?? '/', 'http://demo.invalid').pathname
      const method = req.method ?? 'GET'
      if (method !== 'GET' && method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'cache-control': 'no-store' })
        res.end()
        return
      }
      // Cookies belong to one host name: a browser that came in by another name for this same
      // server (127.0.0.1 instead of localhost) is sent to the public one before it signs in.
      if (
        options.publicUrl === undefined &&
        wantsHtml(req) &&
        req.headers.host !== undefined &&
        req.headers.host !== publicHost
      ) {
        res.writeHead(302, { location: `${publicUrl}${req.url ?? '/'}` })
        res.end()
        return
      }
      switch (path) {
        case '/':
          await home(req, res)
          return
        case '/api/whoami':
          await whoami(req, res)
          return
        case '/admin':
          await admin(req, res)
          return
        case '/favicon.svg':
          res.writeHead(200, {
            'content-type': 'image/svg+xml',
            'cache-control': 'public, max-age=86400',
          })
          res.end(FAVICON_SVG)
          return
        case '/favicon.ico':
          res.writeHead(302, { location: '/favicon.svg' })
          res.end()
          return
        default:
          if (wantsHtml(req))
            page(res, 404, messagePage('Page not found', 'There is no page at this address.'))
          else sendJson(res, 404, { error: 'not_found' })
      }
    } catch (error) {
      options.log?.(
        `demo app: ${req.method ?? 'GET'} ${req.url ?? '/'} failed: ${error instanceof Error ? error.message : String(error)}`,
      )
      if (res.headersSent) {
        res.destroy()
        return
      }
      page(
        res,
        500,
        messagePage('Something went wrong', 'The application hit an unexpected error.'),
      )
    }
  }

  let closing: Promise<void> | undefined
  return {
    url: publicUrl,
    port,
    auth,
    close() {
      closing ??= (async () => {
        const closed = new Promise<void>((resolve) => {
          server.close(() => {
            resolve()
          })
        })
        server.closeAllConnections()
        await closed
        await auth.close()
      })()
      return closing
    },
  }
}
