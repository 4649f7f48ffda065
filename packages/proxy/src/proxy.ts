/**
 * The reverse proxy: every request is canonicalised, stripped of anything that could pass for
 * identity, checked against the rules, authenticated (session cookie or bearer token) when the
 * rules ask, and sent upstream with the proxy's identity headers. The proxy's own endpoints live
 * under one prefix and never reach the application.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import {
  accessTokenOf,
  createSessionAuth,
  stderrLogger,
  type Identity,
  type SessionAuth,
  type SessionStore,
  type SsoEventHandler,
} from '@ssokit/core'
import {
  isUnderPrefix,
  sendParts,
  sendWebResponse,
  toRequestLike,
  toWebRequest,
} from '@ssokit/node'
import { assertionKey, createAssertionSigner, type AssertionSigner } from './assertion.js'
import type { ProxyConfig } from './config.js'
import {
  attributeHeaderNames,
  forwardableHeaders,
  headerPolicy,
  toOutgoing,
  type HeaderPolicy,
  type HeaderPreset,
} from './headers.js'
import { continueTo, forwardAuth, loginSearch, type ForwardAuthSetup } from './forward-auth.js'
import { identityHeaders } from './identity-headers.js'
import { sendError } from './pages.js'
import { canonicalTarget, type CanonicalTarget } from './paths.js'
import { RedirectPolicy } from './redirects.js'
import { explainRefusal } from './refusal.js'
import { requireAccess, Rules } from './rules.js'
import { TrustedProxies } from './trusted-proxies.js'
import { createSamlProxyAuth } from './saml.js'
import { Upstream } from './upstream.js'
import { Tunnels, type Admission } from './websocket.js'
import { AccessLog, stdoutDestination } from './access-log.js'
import { ProxyMetrics, scrapeAllowed } from './metrics.js'
import { Observer, type RequestNote } from './observe.js'
import { Readiness } from './readiness.js'
import { drain } from './shutdown.js'
import { createProxyServer, startRedirectServer } from './tls.js'
import type { DestinationStream } from 'pino'

/** Cookie names of the session module: the proxy's own, never sent upstream. */
const OWN_COOKIE_PREFIXES = ['ssokit-', '__Host-ssokit-']
const REFUSED_METHODS: ReadonlySet<string> = new Set(['TRACE', 'TRACK'])

export interface ProxyOptions {
  /** Where sessions live; default: in memory (one process). The caller closes it. */
  readonly store?: SessionStore
  /** Receives the sign-in side's warnings and recoveries; default: stderr. */
  readonly onEvent?: SsoEventHandler
  /** Where access log lines go when the configuration turns them on; default: stdout. */
  readonly accessLog?: DestinationStream
}

export interface RunningProxy {
  /** `http://<host>:<port>` (`https` with TLS), where it listens. */
  readonly url: string
  readonly port: number
  /** The port of the HTTP-to-HTTPS redirect, when there is one. */
  readonly redirectPort: number | undefined
  readonly server: Server
  readonly auth: SessionAuth
  /** This proxy's metrics (its own registry, never prom-client's global one). */
  readonly metrics: ProxyMetrics
  /**
   * Graceful stop: no new connections, open WebSockets closed, requests in flight finish (up to
   * `shutdownTimeout` seconds), then everything is closed. Resolves `true` when all finished.
   */
  shutdown(): Promise<boolean>
  /** Stops at once: every connection closed, upstream connections and the authenticator too. */
  close(): Promise<void>
}

interface Handler {
  readonly config: ProxyConfig
  readonly auth: SessionAuth
  readonly rules: Rules
  readonly policy: HeaderPolicy
  readonly preset: HeaderPreset
  readonly signer: AssertionSigner | undefined
  readonly upstream: Upstream
  readonly forwardedHost: string
  readonly forwardedProto: string
  readonly trusted: TrustedProxies
  readonly forwardAuth: ForwardAuthSetup
  readonly metrics: ProxyMetrics
  readonly observer: Observer
  readonly readiness: Readiness
}

function isLoopbackUrl(url: URL): boolean {
  return ['localhost', '127.0.0.1', '[::1]'].includes(url.hostname)
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.statusCode = status
  res.setHeader('content-type', 'application/json')
  res.setHeader('cache-control', 'no-store')
  res.end(JSON.stringify(body))
}

/** `/_ssokit/...`: the proxy's endpoints and the session routes. Never forwarded. */
async function ownEndpoint(
  h: Handler,
  req: IncomingMessage,
  res: ServerResponse,
  target: CanonicalTarget,
): Promise<void> {
  const route = target.path.slice(h.config.prefix.length)
  if (route === '/auth') return forwardAuth(h.forwardAuth, req, res, target.search)
  if (route === '/continue' && (req.method === 'GET' || req.method === 'HEAD')) {
    continueTo(h.forwardAuth.redirects, h.config.publicUrl, res, target.search)
    return
  }
  if (route === '/metrics') return serveMetrics(h, req, res)
  if (route === '/healthz' || route === '/readyz' || route === '/jwks') {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(req, res, 405, { allow: 'GET, HEAD' })
    } else if (route === '/healthz') {
      sendJson(res, 200, { status: 'ok' })
    } else if (route === '/readyz') {
      const ready = await h.readiness.check()
      if (ready.retryAfter !== undefined) res.setHeader('retry-after', String(ready.retryAfter))
      sendJson(res, ready.status, ready.body)
    } else if (h.signer === undefined) {
      sendError(req, res, 404)
    } else {
      res.setHeader('content-type', 'application/jwk-set+json')
      res.setHeader('cache-control', 'public, max-age=300')
      res.end(JSON.stringify(h.signer.jwks))
    }
    return
  }
  const search =
    route === '/login' ? loginSearch(h.forwardAuth.redirects, req, target.search) : target.search
  const url = `${target.path}${search}`
  let response: Response | undefined
  try {
    response = await h.auth.handle(toWebRequest(req, { publicUrl: h.config.publicUrl, url }))
  } catch (error) {
    sendParts(res, h.auth.reject(error, toRequestLike(req, url)))
    return
  }
  if (response === undefined) {
    sendError(req, res, 404)
    return
  }
  if (route === '/callback') h.observer.callback(response.status)
  await sendWebResponse(res, response)
}

/**
 * `<prefix>/metrics`, for a Prometheus scraper holding the configured token: off (404) without
 * one, since the proxy faces the network and its traffic figures are nobody else's business.
 */
async function serveMetrics(h: Handler, req: IncomingMessage, res: ServerResponse) {
  const token = h.config.metricsToken
  if (token === undefined) {
    sendError(req, res, 404)
    return
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendError(req, res, 405, { allow: 'GET, HEAD' })
    return
  }
  if (!scrapeAllowed(req.headers.authorization, token)) {
    res.setHeader('www-authenticate', 'Bearer realm="metrics"')
    sendJson(res, 401, { error: 'unauthorized' })
    return
  }
  const { contentType, body } = await h.metrics.render()
  res.setHeader('content-type', contentType)
  res.setHeader('cache-control', 'no-store')
  res.end(body)
}

/** Printable ASCII without spaces: what a token may be to travel in a header. */
const TOKEN_VALUE = /^[\x21-\x7e]{1,16384}$/

/** The identity headers, signed assertion and (when asked for) access token of a request. */
async function identityPairs(
  config: ProxyConfig,
  preset: HeaderPreset,
  signer: AssertionSigner | undefined,
  identity: Identity,
): Promise<[string, string][]> {
  const pairs = identityHeaders(identity, preset)
  if (signer !== undefined && config.headers.assertion !== false) {
    pairs.push([config.headers.assertion.toLowerCase(), await signer.sign(identity)])
  }
  if (config.passAccessToken) {
    const token = accessTokenOf(identity)
    if (token !== undefined && TOKEN_VALUE.test(token)) {
      pairs.push([config.headers.accessToken.toLowerCase(), token])
    }
  }
  return pairs
}

async function outgoingHeaders(
  h: Handler,
  req: IncomingMessage,
  identity: Identity | undefined,
): Promise<Record<string, string | string[]>> {
  const pairs = forwardableHeaders(req.rawHeaders, h.policy)
  const client = h.trusted.clientAddress(req.socket.remoteAddress, (name) =>
    toRequestLike(req).header(name),
  )
  pairs.push(
    ['x-forwarded-for', client],
    ['x-forwarded-host', h.forwardedHost],
    ['x-forwarded-proto', h.forwardedProto],
  )
  if (identity !== undefined) {
    pairs.push(...(await identityPairs(h.config, h.preset, h.signer, identity)))
  }
  return toOutgoing(pairs)
}

/** The rules, then the credentials when the rules ask for them: the same for every request. */
async function admit(
  h: Handler,
  req: IncomingMessage,
  target: CanonicalTarget,
): Promise<Admission> {
  const decision = h.rules.decide(target.path)
  if (decision.public) return { ok: true, identity: undefined }
  const request = toRequestLike(req, `${target.path}${target.search}`)
  try {
    const identity = await h.auth.authenticate(request)
    requireAccess(identity, decision)
    return { ok: true, identity }
  } catch (error) {
    return { ok: false, parts: explainRefusal(error, h.auth.reject(error, request)) }
  }
}

async function handleRequest(
  h: Handler,
  req: IncomingMessage,
  res: ServerResponse,
  note: RequestNote,
) {
  const target = canonicalTarget(req.url ?? '/')
  if (typeof target === 'string') {
    sendError(req, res, 400)
    return
  }
  note.path = target.path
  if (REFUSED_METHODS.has((req.method ?? '').toUpperCase())) {
    sendError(req, res, 405)
    return
  }
  if (isUnderPrefix(target.path, h.config.prefix)) {
    note.outcome = 'endpoint'
    return ownEndpoint(h, req, res, target)
  }
  const admission = await admit(h, req, target)
  if (!admission.ok) {
    sendParts(res, admission.parts)
    return
  }
  note.identity = admission.identity
  const headers = await outgoingHeaders(h, req, admission.identity)
  const path = `${target.encodedPath}${target.search}`
  await h.upstream.forward(req, res, path, headers, (result) => {
    h.observer.forwarded(note, result)
  })
}

/** A WebSocket handshake: refused, or checked like any request and tunnelled upstream. */
async function handleUpgrade(
  h: Handler,
  tunnels: Tunnels,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  const target = canonicalTarget(req.url ?? '/')
  if (typeof target === 'string') {
    tunnels.refuse(req, socket, 400)
    return
  }
  // Nothing under the prefix upgrades.
  if (isUnderPrefix(target.path, h.config.prefix)) {
    tunnels.refuse(req, socket, 404)
    return
  }
  const started = performance.now()
  const outcome = await tunnels.handle(req, socket, head, {
    path: `${target.encodedPath}${target.search}`,
    admit: () => admit(h, req, target),
    headers: (identity) => outgoingHeaders(h, req, identity),
  })
  h.observer.upgrade(req, target.path, outcome, performance.now() - started)
}

/** Sign-in through the OpenID Connect provider of the configuration. */
function oidcAuth(
  config: ProxyConfig,
  options: ProxyOptions,
  localHttp: boolean,
  onEvent: SsoEventHandler,
): SessionAuth {
  return createSessionAuth({
    issuer: config.issuer,
    clientId: config.clientId,
    clientSecret: config.clientSecret,
    publicUrl: config.publicUrl,
    // Without a configured secret, sessions last as long as this process.
    secret: config.sessionSecrets ?? randomBytes(32).toString('base64url'),
    prefix: config.prefix,
    ...(options.store === undefined ? {} : { store: options.store }),
    ...(config.sessionLifetime === undefined ? {} : { sessionLifetime: config.sessionLifetime }),
    onEvent,
    ...(localHttp ? { cookies: { insecureHttpForLocalhost: true } } : {}),
  })
}

/**
 * Starts the proxy with a checked configuration (`loadProxyConfig`). Resolves once it listens;
 * a port in use rejects, with nothing left running.
 */
export async function startProxy(
  config: ProxyConfig,
  options: ProxyOptions = {},
): Promise<RunningProxy> {
  const publicUrl = new URL(config.publicUrl)
  const metrics = new ProxyMetrics()
  const report = options.onEvent ?? stderrLogger()
  const accessLog = config.accessLog
    ? new AccessLog(options.accessLog ?? stdoutDestination())
    : undefined
  const observer = new Observer(metrics, accessLog)
  const localHttp = publicUrl.protocol === 'http:' && isLoopbackUrl(publicUrl)
  const auth =
    config.saml === undefined
      ? oidcAuth(config, options, localHttp, (event) => {
          metrics.onEvent(event)
          report(event)
        })
      : await createSamlProxyAuth(config, config.saml, options.store, localHttp)
  const names = config.headers.names
  const injected = [
    ...Object.values(names),
    ...attributeHeaderNames(config.headers.attributes),
    ...(config.headers.assertion === false ? [] : [config.headers.assertion]),
    // Removed from every request even when no token is passed on.
    config.headers.accessToken,
  ]
  const upstream = new Upstream(config.upstream, { timeoutMs: config.upstreamTimeout * 1000 })
  const rules = new Rules(config.rules)
  const preset: HeaderPreset = {
    names,
    separator: config.headers.separator,
    ...(config.headers.attributes === undefined ? {} : { attributes: config.headers.attributes }),
  }
  const signer =
    config.headers.assertion === false
      ? undefined
      : await createAssertionSigner(
          config.publicUrl,
          config.upstream,
          config.assertionKey === undefined ? undefined : await assertionKey(config.assertionKey),
        )
  const trusted = new TrustedProxies(config.trustedProxies)
  const handler: Handler = {
    config,
    auth,
    rules,
    policy: headerPolicy(injected, OWN_COOKIE_PREFIXES),
    preset,
    signer,
    upstream,
    forwardedHost: publicUrl.host,
    forwardedProto: publicUrl.protocol.slice(0, -1),
    trusted,
    forwardAuth: {
      prefix: config.prefix,
      publicUrl: config.publicUrl,
      auth,
      rules,
      trusted,
      redirects: new RedirectPolicy(config.publicUrl, config.allowedRedirectDomains, config.prefix),
      // The access-token header is answered only when tokens are passed on.
      headerNames: config.passAccessToken
        ? injected
        : injected.filter((name) => name !== config.headers.accessToken),
      identityHeaders: (identity) => identityPairs(config, preset, signer, identity),
    },
    metrics,
    observer,
    readiness: new Readiness(auth, config.issuer),
  }
  const server = createProxyServer(config.tls, config.maxHeaderSize, (req, res) => {
    const note = observer.start(req, res)
    handleRequest(handler, req, res, note).catch(() => {
      if (!res.headersSent) sendError(req, res, 502)
      else res.destroy()
    })
  })
  const tunnels = new Tunnels(upstream, {
    recheckMs: config.websocketRecheck * 1000,
    onCount: (open) => {
      metrics.websockets(open)
    },
  })
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    handleUpgrade(handler, tunnels, req, socket, head).catch(() => socket.destroy())
  })
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable) {
      socket.destroy()
      return
    }
    observer.clientError(error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400)
    socket.end(
      error.code === 'HPE_HEADER_OVERFLOW'
        ? 'HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'
        : 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n',
    )
  })
  let redirect: Server | undefined
  try {
    server.listen(config.port, config.host)
    await once(server, 'listening')
    if (config.httpRedirectPort !== undefined) {
      redirect = await startRedirectServer(config.publicUrl, config.host, config.httpRedirectPort)
    }
  } catch (error) {
    if (server.listening) server.close()
    await Promise.allSettled([upstream.close(), auth.close()])
    throw error
  }
  const port = (server.address() as AddressInfo).port
  const host = config.host.includes(':') ? `[${config.host}]` : config.host
  let stopping: Promise<boolean> | undefined
  const stop = (timeoutMs: number): Promise<boolean> => {
    stopping ??= (async () => {
      tunnels.closeAll()
      redirect?.closeAllConnections()
      redirect?.close()
      const finished = await drain(server, timeoutMs)
      await Promise.allSettled([upstream.close(), auth.close(), accessLog?.flush()])
      return finished
    })()
    return stopping
  }
  const redirectAddress = redirect?.address()
  return {
    url: `${config.tls === undefined ? 'http' : 'https'}://${host}:${port}`,
    port,
    redirectPort:
      typeof redirectAddress === 'object' && redirectAddress !== null
        ? redirectAddress.port
        : undefined,
    server,
    auth,
    metrics,
    shutdown: () => stop(config.shutdownTimeout * 1000),
    async close() {
      await stop(0)
    },
  }
}
