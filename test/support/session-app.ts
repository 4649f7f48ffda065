/**
 * A small web application protected by browser sessions, served over real HTTP with
 * `@ssokit/node`: `/` greets the user, `/admin` needs the `admin` role, `/api/me` answers JSON
 * (and accepts bearer tokens), the session routes live under `/auth`.
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import type { AddressInfo } from 'node:net'

import { createSessionAuth, type SessionAuth, type SessionAuthOptions } from '@ssokit/core'
import { withAuth } from '@ssokit/node'

import type { TestCertificate } from './tls.js'

export interface SessionApp {
  /** `http://localhost:<port>`, or `https://<hostname>:<port>` when served over TLS */
  readonly url: string
  readonly port: number
  readonly auth: SessionAuth
  close(): Promise<void>
}

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/**
 * Starts the app. The listening port is known before the session options are built, so
 * `options` receives the public URL (`http://localhost:<port>`) and returns the rest (it may
 * start the provider first, e.g. to register the app's back-channel logout URI there).
 * With `tls`, the app is served over https as `https://<hostname>:<port>` with production
 * cookies (`Secure`, `__Host-`); the browser must map `hostname` to 127.0.0.1.
 */
export async function startSessionApp(
  options: (
    publicUrl: string,
  ) => Omit<SessionAuthOptions, 'publicUrl'> | Promise<Omit<SessionAuthOptions, 'publicUrl'>>,
  tls?: { readonly certificate: TestCertificate; readonly hostname: string },
): Promise<SessionApp> {
  const server: Server =
    tls === undefined ? createServer() : createTlsServer({ ...tls.certificate })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  const url = tls === undefined ? `http://localhost:${port}` : `https://${tls.hostname}:${port}`
  const auth = createSessionAuth({
    ...(await options(url)),
    publicUrl: url,
    ...(tls === undefined ? { cookies: { insecureHttpForLocalhost: true } } : {}),
  })

  const page = withAuth(
    (_req, res, identity) => {
      res.setHeader('content-type', 'text/html; charset=utf-8')
      res.end(
        `<!doctype html><title>Home</title><h1 id="user">${escape(identity.username)}</h1>` +
          `<p id="roles">${escape([...identity.roles].sort().join(','))}</p>` +
          `<form method="post" action="/auth/logout"><button id="logout" type="submit">Sign out</button></form>`,
      )
    },
    { auth },
  )
  const admin = withAuth(
    (_req, res) => {
      res.setHeader('content-type', 'text/html; charset=utf-8')
      res.end('<!doctype html><title>Admin</title><h1 id="admin">Admin area</h1>')
    },
    { auth, roles: ['admin'] },
  )
  const api = withAuth(
    (_req, res, identity) => {
      res.setHeader('content-type', 'application/json')
      res.setHeader('cache-control', 'no-store')
      res.end(
        JSON.stringify({
          subject: identity.subject,
          via: identity.via,
          exp: identity.claims.exp,
          roles: [...identity.roles],
        }),
      )
    },
    { auth },
  )

  server.on('request', (req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/'
    const handler = path.startsWith('/admin') ? admin : path.startsWith('/api/') ? api : page
    handler(req, res).catch(() => {
      if (!res.headersSent) res.statusCode = 500
      res.end()
    })
  })

  return {
    url,
    port,
    auth,
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
      await auth.close()
    },
  }
}
