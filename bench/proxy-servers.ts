/**
 * The Node servers of the proxy benchmark, each run in its own child process (pinned by
 * bench/proxy.ts) and printing `PORT <n>` once it listens:
 *
 *   upstream                          the application: a keep-alive hello on node:http
 *   ssokit <upstream> <issuer> <log> [redis]
 *                                     `ssokit proxy` itself (startProxy), memory or Redis store,
 *                                     its access log (on by default) written to the file <log>
 *   ssokit-no-assertion <upstream> <issuer> <log>
 *                                     the same without the signed assertion (headers.assertion: false)
 *   undici <upstream> <issuer>        the engine comparison: the same bearer check and one
 *   http-proxy-3 <upstream> <issuer>  identity header, forwarded with undici or http-proxy-3
 */
import { Agent, createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

import { createProxyServer } from 'http-proxy-3'
import { pino } from 'pino'
import { Pool } from 'undici'
import { createBearerAuthenticator, type BearerAuthenticator } from '@ssokit/core'
import { toRequestLike } from '@ssokit/node'
import { loadProxyConfig, startProxy } from '@ssokit/proxy'

import { freePort } from '../test/support/redis.js'
import { RedisSessionStore } from '@ssokit/redis'

const CLIENT_ID = 'demo-app'
const CLIENT_SECRET = 'demo-app-secret'
const SESSION_SECRET = 'bench-proxy-session-secret-0123456789abcdef'

function listening(server: ReturnType<typeof createServer>): void {
  server.listen(0, '127.0.0.1', () => {
    console.log(`PORT ${String((server.address() as AddressInfo).port)}`)
  })
}

function upstream(): void {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '6' })
    res.end('hello\n')
  })
  server.keepAliveTimeout = 60_000
  listening(server)
}

async function ssokit(
  origin: string,
  issuer: string,
  log: string,
  redisUrl: string | undefined,
  assertion = true,
) {
  const port = await freePort()
  const config = await loadProxyConfig({
    flags: {
      upstream: origin,
      issuer,
      'client-id': CLIENT_ID,
      'public-url': `http://localhost:${port}`,
      port,
      host: '127.0.0.1',
      ...(redisUrl === undefined ? {} : { 'redis-url': redisUrl }),
    },
    env: { OIDC_CLIENT_SECRET: CLIENT_SECRET, SSOKIT_SESSION_SECRET: SESSION_SECRET },
  })
  const store = redisUrl === undefined ? undefined : new RedisSessionStore({ url: redisUrl })
  const checked = assertion
    ? config
    : { ...config, headers: { ...config.headers, assertion: false as const } }
  const proxy = await startProxy(checked, {
    onEvent: () => {},
    // A file, as the front servers' access logs: not the pipe bench/proxy.ts reads the port from.
    // Written as the command writes stdout (packages/proxy/src/access-log.ts).
    accessLog: pino.destination({ dest: log, sync: false, minLength: 4096, periodicFlush: 1000 }),
    ...(store === undefined ? {} : { store }),
  })
  await proxy.auth.ready()
  console.log(`PORT ${String(proxy.port)}`)
}

type Forward = (req: IncomingMessage, res: ServerResponse, user: string) => Promise<void> | void

/** undici's Pool, as @ssokit/proxy uses it: keep-alive, the answer written by `stream` into `res`. */
function undiciForward(origin: string): Forward {
  const pool = new Pool(origin, { connections: 64 })
  return async (req, res, user) => {
    await pool.stream(
      {
        path: req.url ?? '/',
        method: req.method ?? 'GET',
        headers: { 'x-forwarded-user': user },
      },
      ({ statusCode, headers }) => {
        res.statusCode = statusCode
        for (const [name, value] of Object.entries(headers)) {
          if (value !== undefined && name !== 'connection' && name !== 'keep-alive')
            res.setHeader(name, value)
        }
        return res
      },
    )
  }
}

/** http-proxy-3 (the maintained successor of http-proxy) with a keep-alive agent. */
function httpProxy3Forward(origin: string): Forward {
  const proxy = createProxyServer({
    target: origin,
    agent: new Agent({ keepAlive: true, maxSockets: 64 }),
  })
  proxy.on('error', (_error, _req, res) => {
    if ('writeHead' in res && !res.headersSent) res.writeHead(502)
    res.end()
  })
  return (req, res, user) => {
    req.headers['x-forwarded-user'] = user
    delete req.headers.authorization
    proxy.web(req, res)
  }
}

function engine(forward: Forward, issuer: string): void {
  const auth: BearerAuthenticator = createBearerAuthenticator({
    issuer,
    clientId: CLIENT_ID,
    onEvent: () => {},
  })
  const server = createServer((req, res) => {
    auth
      .authenticate(toRequestLike(req, req.url ?? '/'))
      .then(
        (identity) => forward(req, res, identity.subject),
        () => {
          res.writeHead(401).end()
        },
      )
      .catch(() => {
        if (!res.headersSent) res.writeHead(502)
        res.end()
      })
  })
  listening(server)
}

const [kind = '', origin = '', issuer = '', ...rest] = process.argv.slice(2)
switch (kind) {
  case 'upstream':
    upstream()
    break
  case 'ssokit':
    await ssokit(origin, issuer, rest[0] ?? '/dev/null', rest[1])
    break
  case 'ssokit-no-assertion':
    await ssokit(origin, issuer, rest[0] ?? '/dev/null', undefined, false)
    break
  case 'undici':
    engine(undiciForward(origin), issuer)
    break
  case 'http-proxy-3':
    engine(httpProxy3Forward(origin), issuer)
    break
  default:
    console.error(`unknown server ${kind}`)
    process.exit(2)
}
