/**
 * WebSocket upgrades. A handshake goes through the same canonical path, rules, authentication
 * and header policy as any request (the caller's `admit` and `headers`), and only then reaches
 * the application, through undici's `upgrade`; the two sockets are then piped together
 * untouched. An open tunnel is authorised again every `recheckMs`, so a session that ends
 * (logout on any replica, back-channel logout, expiry) or a bearer token that expires does not
 * keep a socket open for ever.
 */
import { ServerResponse, type IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Identity, ResponseParts } from '@ssokit/core'
import { sendParts } from '@ssokit/node'
import { responseHeaders, type OutgoingHeaders } from './headers.js'
import { sendError } from './pages.js'
import type { Upstream, UpgradeFailure } from './upstream.js'

/** The outcome of the checks every request goes through. */
export type Admission =
  | { readonly ok: true; readonly identity: Identity | undefined }
  | { readonly ok: false; readonly parts: ResponseParts }

export interface UpgradeRequest {
  /** The canonical path and query to ask the upstream for. */
  readonly path: string
  /** Rules and authentication: what a plain request to the same path would get. */
  admit(): Promise<Admission>
  /** The headers to send upstream for this identity (stripped, with identity headers). */
  headers(identity: Identity | undefined): Promise<OutgoingHeaders>
}

/** How an upgrade ended, for metrics and the access log. */
export type UpgradeOutcome =
  | { readonly kind: 'upgraded'; readonly status: 101; readonly identity: Identity | undefined }
  | { readonly kind: 'refused'; readonly status: number; readonly identity: Identity | undefined }
  | {
      readonly kind: UpgradeFailure
      readonly status: 502 | 504
      readonly identity: Identity | undefined
    }

export interface TunnelOptions {
  /** Milliseconds between authorisation checks of an open tunnel. */
  readonly recheckMs: number
  /** Called when a tunnel opens or closes, with the number open. */
  readonly onCount?: (open: number) => void
}

function isWebSocket(req: IncomingMessage): boolean {
  return (req.headers.upgrade ?? '').trim().toLowerCase() === 'websocket'
}

/**
 * Answers on a socket that was handed over for an upgrade, through a real `ServerResponse` so
 * the answer is framed as any other; the connection closes after it.
 */
function answer(req: IncomingMessage, socket: Duplex, write: (res: ServerResponse) => void): void {
  const res = new ServerResponse(req)
  res.shouldKeepAlive = false
  res.assignSocket(socket as never)
  res.once('finish', () => {
    res.detachSocket(socket as never)
    socket.end()
  })
  write(res)
}

/** The 101 answer's head, from the upstream's headers minus hop-by-hop ones. */
function switchingHead(headers: Record<string, string | string[] | undefined>): string {
  let head = 'HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: websocket\r\n'
  for (const [name, value] of responseHeaders(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) head += `${name}: ${v}\r\n`
  }
  return `${head}\r\n`
}

export class Tunnels {
  readonly #upstream: Upstream
  readonly #options: TunnelOptions
  readonly #open = new Set<() => void>()

  constructor(upstream: Upstream, options: TunnelOptions) {
    this.#upstream = upstream
    this.#options = options
  }

  get size(): number {
    return this.#open.size
  }

  /** Refuses a handshake with the proxy's error answer for `status`. */
  refuse(req: IncomingMessage, socket: Duplex, status: number): void {
    socket.on('error', () => socket.destroy())
    answer(req, socket, (res) => {
      sendError(req, res, status)
    })
  }

  /**
   * Handles the server's `upgrade` event for `req`. Anything but a WebSocket `GET` is refused
   * (`Upgrade: h2c` would let a client talk past the proxy's checks); a refused or failed
   * handshake never reaches, or never stays connected to, the application.
   */
  async handle(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    request: UpgradeRequest,
  ): Promise<UpgradeOutcome> {
    if (!isWebSocket(req)) {
      this.refuse(req, socket, 501)
      return { kind: 'refused', status: 501, identity: undefined }
    }
    socket.on('error', () => socket.destroy())
    if (req.method !== 'GET') {
      answer(req, socket, (res) => {
        sendError(req, res, 405, { allow: 'GET' })
      })
      return { kind: 'refused', status: 405, identity: undefined }
    }
    const admission = await request.admit()
    if (!admission.ok) {
      answer(req, socket, (res) => {
        sendParts(res, admission.parts)
      })
      return { kind: 'refused', status: admission.parts.status, identity: undefined }
    }
    const { identity } = admission
    const abort = new AbortController()
    const onEarlyClose = () => {
      abort.abort()
    }
    socket.once('close', onEarlyClose)
    const result = await this.#upstream.upgrade(
      request.path,
      await request.headers(identity),
      abort.signal,
    )
    socket.off('close', onEarlyClose)
    if (!result.ok) {
      if (socket.destroyed) return { kind: result.failure, status: 502, identity }
      const status = result.failure === 'timeout' ? 504 : 502
      answer(req, socket, (res) => {
        sendError(req, res, status)
      })
      return { kind: result.failure, status, identity }
    }
    const upstream = result.socket
    if (socket.destroyed) {
      upstream.destroy()
      return { kind: 'refused', status: 499, identity }
    }
    this.#connect(
      socket,
      upstream,
      head,
      result.headers,
      identity === undefined ? undefined : request,
    )
    return { kind: 'upgraded', status: 101, identity }
  }

  #connect(
    client: Duplex,
    upstream: Duplex,
    head: Buffer,
    headers: Record<string, string | string[] | undefined>,
    recheck: UpgradeRequest | undefined,
  ): void {
    let timer: NodeJS.Timeout | undefined
    const close = () => {
      if (timer !== undefined) clearInterval(timer)
      if (!this.#open.delete(close)) return
      client.destroy()
      upstream.destroy()
      this.#options.onCount?.(this.#open.size)
    }
    this.#open.add(close)
    this.#options.onCount?.(this.#open.size)
    upstream.on('error', close)
    client.on('error', close)
    upstream.once('close', close)
    client.once('close', close)
    // Each side's end is passed on; the other side's close ends the tunnel.
    client.write(switchingHead(headers))
    if (head.length > 0) upstream.write(head)
    upstream.pipe(client)
    client.pipe(upstream)
    if (recheck !== undefined) {
      let checking = false
      timer = setInterval(() => {
        if (checking) return
        checking = true
        recheck.admit().then(
          (admission) => {
            checking = false
            // A store or provider outage (503) is not the end of a session: the tunnel stays.
            if (!admission.ok && admission.parts.status !== 503) close()
          },
          () => {
            checking = false
          },
        )
      }, this.#options.recheckMs)
      timer.unref()
    }
  }

  /** Ends every open tunnel (shutdown). */
  closeAll(): void {
    for (const close of [...this.#open]) close()
  }
}
