/**
 * WebSockets in forward-auth mode behind real nginx: the documented `auth_request` block with the
 * WebSocket lines docs/proxy.md adds to it. nginx asks `ssokit proxy` about the handshake like
 * any request and proxies the upgrade itself: a handshake with a valid bearer token reaches a
 * real WebSocket application with the identity headers, one without is refused by nginx.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { startIdp, type RunningIdp } from '@ssokit/idp'
import { loadProxyConfig, startProxy, type RunningProxy } from '@ssokit/proxy'
import { WebSocket, WebSocketServer } from 'ws'
import { freePort, serviceToken } from '../../packages/proxy/test/support.js'
import {
  documentedSnippet,
  frontPort,
  nginxConfig,
  startFrontServer,
  withPorts,
  type FrontServer,
} from '../support/front-servers.js'
import { tempDir } from '../support/redis.js'

/** What docs/proxy.md says to add to `location /` for WebSockets, and the map it uses. */
const WEBSOCKET_LINES = [
  'proxy_http_version 1.1;',
  'proxy_set_header Upgrade $http_upgrade;',
  'proxy_set_header Connection $connection_upgrade;',
]
const UPGRADE_MAP = "map $http_upgrade $connection_upgrade { default upgrade; '' close; }"

/** Handshake headers as the application received them, lower-cased names. */
function headerValues(rawHeaders: readonly string[], name: string): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase() === name) out.push(rawHeaders[i + 1] ?? '')
  }
  return out
}

function open(url: string, headers: Record<string, string>): Promise<WebSocket | number> {
  const socket = new WebSocket(url, { headers })
  return new Promise((resolve, reject) => {
    socket.once('open', () => {
      resolve(socket)
    })
    socket.once('unexpected-response', (_req, res: IncomingMessage) => {
      res.resume()
      socket.terminate()
      resolve(res.statusCode ?? 0)
    })
    socket.once('error', reject)
  })
}

describe('forward auth behind real nginx: WebSocket upgrades', () => {
  let idp: RunningIdp
  let app: Server
  let wss: WebSocketServer
  const handshakes: string[][] = []
  let proxy: RunningProxy
  let front: FrontServer

  before(async () => {
    idp = await startIdp({ port: 0, log: false })
    app = createServer((_req, res) => res.end('plain http'))
    wss = new WebSocketServer({ server: app })
    app.prependListener('upgrade', (req: IncomingMessage) => {
      handshakes.push([...req.rawHeaders])
    })
    wss.on('connection', (socket) => {
      socket.on('message', (data) => {
        socket.send(`echo:${Buffer.from(data as Buffer).toString()}`)
      })
    })
    app.listen(0, '127.0.0.1')
    await once(app, 'listening')
    const appPort = (app.address() as AddressInfo).port
    const snippet = await documentedSnippet('nginx')
    const port = await frontPort()
    const config = await loadProxyConfig({
      flags: {
        upstream: `http://127.0.0.1:${appPort}`,
        issuer: idp.issuer,
        'client-id': 'demo-app',
        'public-url': `http://localhost:${port}`,
        port: await freePort(),
        host: '127.0.0.1',
        'trusted-proxies': '127.0.0.1',
      },
      env: { OIDC_CLIENT_SECRET: 'demo-app-secret' },
    })
    proxy = await startProxy(config, { onEvent: () => {} })
    const filled = withPorts(snippet, { front: port, proxy: proxy.port, app: appPort }).replace(
      `proxy_pass http://127.0.0.1:${appPort};`,
      `${WEBSOCKET_LINES.join('\n        ')}\n        proxy_pass http://127.0.0.1:${appPort};`,
    )
    assert.ok(filled.includes('$connection_upgrade'), 'the WebSocket lines went into location /')
    front = await startFrontServer({
      kind: 'nginx',
      port,
      config: nginxConfig(tempDir('ssokit-nginx-ws-conf-'), `${UPGRADE_MAP}\n${filled}`),
      ready: async () => {
        try {
          const answer = await fetch(`http://localhost:${port}/_ssokit/healthz`)
          return answer.status === 200
        } catch {
          return false
        }
      },
    })
  })
  after(async () => {
    await front.stop()
    await proxy.close()
    for (const client of wss.clients) client.terminate()
    wss.close()
    app.closeAllConnections()
    app.close()
    await idp.close()
  })

  it('C17 lets a handshake with a valid bearer token through, with identity and without the token', async () => {
    const token = await serviceToken(idp.issuer)
    const socket = await open(`ws://localhost:${front.port}/chat`, {
      authorization: `Bearer ${token}`,
      'x-forwarded-user': 'mallory',
    })
    if (typeof socket === 'number') assert.fail(`the handshake answered ${socket}`)
    const reply = once(socket, 'message')
    socket.send('through nginx')
    assert.equal(String((await reply)[0]), 'echo:through nginx')
    socket.close()
    const handshake = handshakes.at(-1) ?? assert.fail('no handshake reached the application')
    assert.deepEqual(headerValues(handshake, 'x-forwarded-user'), ['service-account-demo-app'])
    assert.deepEqual(headerValues(handshake, 'authorization'), [])
  })

  it('C17 refuses a handshake without credentials: nothing reaches the application', async () => {
    const seen = handshakes.length
    const refused = await open(`ws://localhost:${front.port}/chat`, {})
    assert.equal(refused, 401)
    assert.equal(handshakes.length, seen)
  })
})
