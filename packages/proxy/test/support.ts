/**
 * The rig of the proxy tests: a real development provider, a real upstream echo server that
 * records exactly what it received, and the real proxy between them, all on loopback ports.
 */
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { connect, createServer as createTcpServer, type AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import type { SsoEventHandler } from '@ssokit/core'
import { CookieJar, startIdp, type IdpConfig, type RunningIdp } from '@ssokit/idp'
import { loadProxyConfig, startProxy, type RunningProxy } from '@ssokit/proxy'
import { finishLogin } from '../../../test/support/session-redis.js'

export interface Received {
  readonly method: string
  readonly url: string
  /** As received: original spelling, every occurrence. */
  readonly rawHeaders: readonly string[]
  readonly body: Buffer
}

export interface Echo {
  readonly origin: string
  readonly received: Received[]
  /** Paths whose requests get no answer at all (for timeouts). */
  readonly silent: Set<string>
  close(): Promise<void>
}

/** The values of one header (case-insensitive, exact name) the upstream received. */
export function headerOf(received: Received, name: string): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < received.rawHeaders.length; i += 2) {
    if (received.rawHeaders[i]?.toLowerCase() === name.toLowerCase())
      out.push(received.rawHeaders[i + 1] ?? '')
  }
  return out
}

/** Every header name the upstream received, lower case. */
export function namesOf(received: Received): string[] {
  return received.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
}

export async function startEcho(): Promise<Echo> {
  const received: Received[] = []
  const silent = new Set<string>()
  const server: Server = createServer(
    { maxHeaderSize: 256 * 1024 },
    (req: IncomingMessage, res) => {
      const chunks: Buffer[] = []
      req.on('data', (chunk: Buffer) => chunks.push(chunk))
      req.on('end', () => {
        const body = Buffer.concat(chunks)
        received.push({
          method: req.method ?? '',
          url: req.url ?? '',
          rawHeaders: [...req.rawHeaders],
          body,
        })
        if (silent.has((req.url ?? '').split('?')[0] ?? '')) return
        res.setHeader('content-type', 'application/octet-stream')
        res.setHeader('x-upstream', 'echo')
        res.setHeader('set-cookie', ['app=1; Path=/', 'other=2; Path=/'])
        res.end(body.length > 0 ? body : `${req.method ?? ''} ${req.url ?? ''}`)
      })
    },
  )
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    received,
    silent,
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}

/** A loopback port that was free a moment ago (the proxy needs its public URL before listening). */
export async function freePort(): Promise<number> {
  const probe = createTcpServer()
  probe.listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as AddressInfo
  probe.close()
  await once(probe, 'close')
  return port
}

/** A loopback port nothing listens on: "the upstream is down". */
export const closedPort = freePort

export interface Rig {
  readonly idp: RunningIdp
  readonly echo: Echo
  readonly proxy: RunningProxy
  /** `http://localhost:<port>`, the proxy's public URL. */
  readonly base: string
  close(): Promise<void>
}

export interface RigOptions {
  readonly file?: string
  readonly flags?: Readonly<Record<string, string | number>>
  readonly env?: Readonly<Record<string, string>>
  readonly idpConfig?: IdpConfig
  /** Use this upstream instead of the echo server. */
  readonly upstream?: string
  /** Where the access log goes; default: nowhere, so test output stays readable. */
  readonly accessLog?: Writable
  readonly onEvent?: SsoEventHandler
}

/** A stream that drops what it is given. */
export function sink(): Writable {
  return new Writable({
    write(_chunk, _encoding, done) {
      done()
    },
  })
}

export async function startRig(options: RigOptions = {}): Promise<Rig> {
  const idp = await startIdp({
    port: 0,
    log: false,
    ...(options.idpConfig ? { config: options.idpConfig } : {}),
  })
  const echo = await startEcho()
  const port = await freePort()
  const base = `http://localhost:${port}`
  const config = await loadProxyConfig({
    flags: {
      upstream: options.upstream ?? echo.origin,
      issuer: idp.issuer,
      'client-id': 'demo-app',
      'public-url': base,
      port,
      host: '127.0.0.1',
      ...options.flags,
    },
    env: { OIDC_CLIENT_SECRET: 'demo-app-secret', ...options.env },
    ...(options.file === undefined ? {} : { file: options.file }),
  })
  const proxy = await startProxy(config, {
    onEvent: options.onEvent ?? (() => {}),
    accessLog: options.accessLog ?? sink(),
  })
  return {
    idp,
    echo,
    proxy,
    base,
    async close() {
      await proxy.close()
      await echo.close()
      await idp.close()
    },
  }
}

/** Signs `username` in through the proxy's login route; the jar then holds the session cookie. */
export async function signIn(
  rig: Rig,
  username: string,
  jar = new CookieJar(),
): Promise<CookieJar> {
  const start = await jar.fetch(`${rig.base}/_ssokit/login?returnTo=/`)
  const authorizeUrl = start.headers.get('location')
  if (start.status !== 302 || authorizeUrl === null) {
    throw new Error(`login answered ${start.status}`)
  }
  const { callback } = await finishLogin(rig.idp.issuer, authorizeUrl, username, jar)
  if (callback.status !== 302) throw new Error(`callback answered ${callback.status}`)
  return jar
}

export interface RawAnswer {
  readonly status: number
  readonly head: string
  readonly body: string
}

/** Sends exactly `lines` (a request head, CRLF-joined) and reads the whole answer. */
export async function rawRequest(
  port: number,
  lines: readonly string[],
  body = '',
): Promise<RawAnswer> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(`${[...lines, 'Connection: close'].join('\r\n')}\r\n\r\n${body}`)
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  await once(socket, 'close')
  const text = Buffer.concat(chunks).toString('latin1')
  const split = text.indexOf('\r\n\r\n')
  const head = split === -1 ? text : text.slice(0, split)
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0),
    head,
    body: split === -1 ? '' : text.slice(split + 4),
  }
}

/** A client-credentials access token from the development provider. */
export async function serviceToken(
  issuer: string,
  clientId = 'demo-app',
  secret = 'demo-app-secret',
): Promise<string> {
  const response = await fetch(`${issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: secret,
    }),
  })
  const body = (await response.json()) as { access_token?: string }
  if (body.access_token === undefined) throw new Error(`no token for ${clientId}`)
  return body.access_token
}
