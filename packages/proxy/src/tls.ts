/**
 * TLS termination: the same request handler behind `https.createServer` (TLS 1.2 at least,
 * Node's default ciphers), and an optional plain-HTTP listener that answers everything with a
 * 308 to the public URL, so the proxy can stand where Apache with mod_ssl stood.
 */
import { once } from 'node:events'
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http'
import { createServer as createHttpsServer } from 'node:https'

type Listener = (req: IncomingMessage, res: ServerResponse) => void

export interface ServerTls {
  readonly cert: string
  readonly key: string
}

/** An http server, or an https one when `tls` is given; both take `maxHeaderSize`. */
export function createProxyServer(
  tls: ServerTls | undefined,
  maxHeaderSize: number,
  listener: Listener,
): Server {
  if (tls === undefined) return createHttpServer({ maxHeaderSize }, listener)
  return createHttpsServer(
    {
      cert: tls.cert,
      key: tls.key,
      minVersion: 'TLSv1.2',
      maxHeaderSize,
      // TLS handshakes that never finish must not hold sockets for ever.
      handshakeTimeout: 10_000,
    },
    listener,
  )
}

/**
 * Answers every plain-HTTP request with `308` to the same path and query on `publicUrl`, never
 * to a host the client names (the `Host` header is not used), and serves nothing else.
 */
export async function startRedirectServer(
  publicUrl: string,
  host: string,
  port: number,
): Promise<Server> {
  const server = createHttpServer((req, res) => {
    const target = req.url ?? '/'
    // Only an origin-form target is kept; an absolute-form or `*` target goes to the root.
    const path = target.startsWith('/') ? target : '/'
    res.statusCode = 308
    res.setHeader('location', `${publicUrl}${path}`)
    res.setHeader('cache-control', 'no-store')
    res.setHeader('connection', 'close')
    res.end()
    req.resume()
  })
  server.listen(port, host)
  await once(server, 'listening')
  return server
}
