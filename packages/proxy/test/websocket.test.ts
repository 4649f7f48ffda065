import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { connect, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { DEFAULT_IDP_CONFIG, type CookieJar } from '@ssokit/idp'
import { WebSocket, WebSocketServer } from 'ws'
import { rawRequest, signIn, startRig, type Rig } from './support.js'

/** A real WebSocket echo server that records every handshake it accepted. */
interface WsUpstream {
  readonly origin: string
  /** Handshakes that reached the upstream: URL and raw headers. */
  readonly handshakes: { url: string; rawHeaders: string[] }[]
  close(): Promise<void>
}

async function startWsUpstream(): Promise<WsUpstream> {
  const handshakes: { url: string; rawHeaders: string[] }[] = []
  const server: Server = createServer((_req, res) => {
    res.end('plain http')
  })
  const wss = new WebSocketServer({
    server,
    // "/refuse" answers the handshake with 403: the proxy must not report a tunnel.
    verifyClient: (info: { req: IncomingMessage }) => !(info.req.url ?? '').startsWith('/refuse'),
  })
  server.prependListener('upgrade', (req: IncomingMessage) => {
    handshakes.push({ url: req.url ?? '', rawHeaders: [...req.rawHeaders] })
  })
  wss.on('connection', (socket) => {
    socket.on('message', (data, binary) => {
      socket.send(binary ? data : `echo:${Buffer.from(data as Buffer).toString()}`, { binary })
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    handshakes,
    async close() {
      for (const client of wss.clients) client.terminate()
      wss.close()
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}

function headersOf(rawHeaders: readonly string[], name: string): string[] {
  const out: string[] = []
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    if (rawHeaders[i]?.toLowerCase().replaceAll('_', '-') === name)
      out.push(rawHeaders[i + 1] ?? '')
  }
  return out
}

/** Opens a WebSocket; resolves with it once open, or with the HTTP status it was refused with. */
async function connectWs(
  url: string,
  headers: Record<string, string>,
): Promise<{ socket: WebSocket; status: 101 } | { socket: undefined; status: number }> {
  const socket = new WebSocket(url, { headers })
  return new Promise((resolve, reject) => {
    socket.once('open', () => {
      resolve({ socket, status: 101 })
    })
    socket.once('unexpected-response', (_req, res: IncomingMessage) => {
      res.resume()
      socket.terminate()
      resolve({ socket: undefined, status: res.statusCode ?? 0 })
    })
    socket.once('error', reject)
  })
}

async function roundTrip(socket: WebSocket, text: string): Promise<string> {
  const reply = once(socket, 'message')
  socket.send(text)
  const [data] = (await reply) as [Buffer]
  return String(data)
}

/** Sends a raw handshake and returns the answer's head; the connection is then dropped. */
async function rawHandshake(port: number, lines: readonly string[]): Promise<string> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  socket.write(`${lines.join('\r\n')}\r\n\r\n`)
  let text = ''
  for await (const chunk of socket as AsyncIterable<Buffer>) {
    text += chunk.toString('latin1')
    if (text.includes('\r\n\r\n')) break
  }
  socket.destroy()
  return text.slice(0, text.indexOf('\r\n\r\n'))
}

function cookieOf(jar: CookieJar, base: string): string {
  return jar.header(`${base}/`)
}

async function bearerToken(rig: Rig): Promise<string> {
  const response = await fetch(`${rig.idp.issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'demo-app',
      client_secret: 'demo-app-secret',
    }),
  })
  const body = (await response.json()) as { access_token?: string }
  assert.ok(body.access_token)
  return body.access_token
}

describe('ssokit proxy: WebSocket upgrades (C17)', () => {
  let dir: string
  let upstream: WsUpstream
  let rig: Rig
  let alice: CookieJar
  let bob: CookieJar
  let wsBase: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-ws-'))
    const file = join(dir, 'proxy.yaml')
    await writeFile(
      file,
      [
        'rules:',
        '  - path: /public',
        '    public: true',
        '  - path: /admin',
        '    roles: [admin]',
      ].join('\n'),
    )
    upstream = await startWsUpstream()
    rig = await startRig({ file, upstream: upstream.origin, flags: { 'websocket-recheck': 1 } })
    wsBase = rig.base.replace(/^http/, 'ws')
    alice = await signIn(rig, 'alice')
    bob = await signIn(rig, 'bob')
  })
  after(async () => {
    await rig.close()
    await upstream.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('C17 refuses an upgrade without a session with 401, before anything reaches the upstream', async () => {
    const count = upstream.handshakes.length
    const anonymous = await connectWs(`${wsBase}/chat`, {})
    assert.equal(anonymous.status, 401)
    const forged = await connectWs(`${wsBase}/chat`, {
      cookie: '__Host-ssokit-session=forged',
      'x-forwarded-user': 'mallory',
    })
    assert.equal(forged.status, 401)
    const badBearer = await connectWs(`${wsBase}/chat`, { authorization: 'Bearer not-a-jwt' })
    assert.equal(badBearer.status, 401)
    assert.equal(upstream.handshakes.length, count, 'no handshake reached the upstream')
  })

  it('C17 tunnels a signed-in upgrade with identity headers set and spoofed ones removed', async () => {
    const cookie = `theme=dark; ${cookieOf(alice, rig.base)}`
    const opened = await connectWs(`${wsBase}/chat?room=1`, {
      cookie,
      'x-forwarded-user': 'mallory',
      X_Forwarded_Email: 'mallory@evil.example',
      'adfs-login': 'mallory',
      'x-ssokit-assertion': 'forged',
    })
    assert.equal(opened.status, 101)
    assert.ok(opened.socket)
    assert.equal(await roundTrip(opened.socket, 'hello'), 'echo:hello')
    const seen = upstream.handshakes.at(-1)
    assert.ok(seen)
    assert.equal(seen.url, '/chat?room=1')
    const raw = seen.rawHeaders
    assert.equal(headersOf(raw, 'x-forwarded-preferred-username')[0], 'alice')
    assert.notEqual(headersOf(raw, 'x-forwarded-user')[0], 'mallory')
    assert.equal(headersOf(raw, 'x-forwarded-user').length, 1)
    assert.deepEqual(headersOf(raw, 'x-forwarded-email'), ['alice@example.org'])
    assert.deepEqual(headersOf(raw, 'adfs-login'), [])
    assert.equal(headersOf(raw, 'x-ssokit-assertion').length, 1)
    assert.notEqual(headersOf(raw, 'x-ssokit-assertion')[0], 'forged')
    // The application's cookie passes, the proxy's never does.
    assert.deepEqual(headersOf(raw, 'cookie'), ['theme=dark'])
    assert.deepEqual(headersOf(raw, 'authorization'), [])
    assert.equal(headersOf(raw, 'upgrade')[0]?.toLowerCase(), 'websocket')
    assert.equal(headersOf(raw, 'sec-websocket-version')[0], '13')
    opened.socket.close()
    await once(opened.socket, 'close')
    // A header named in Connection is hop-by-hop: dropped, even on a handshake.
    const nominated = await rawHandshake(rig.proxy.port, [
      'GET /chat HTTP/1.1',
      'Host: localhost',
      `Cookie: ${cookieOf(alice, rig.base)}`,
      'Connection: Upgrade, X-Remote',
      'Upgrade: websocket',
      'X-Remote: kept',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    ])
    assert.match(nominated, /^HTTP\/1\.1 101 /)
    assert.match(nominated, /^sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=$/im)
    assert.deepEqual(headersOf(upstream.handshakes.at(-1)?.rawHeaders ?? [], 'x-remote'), [])
  })

  it('C17 tunnels an upgrade with a bearer token, which never reaches the upstream', async () => {
    const opened = await connectWs(`${wsBase}/api/stream`, {
      authorization: `Bearer ${await bearerToken(rig)}`,
    })
    assert.equal(opened.status, 101)
    assert.ok(opened.socket)
    assert.equal(await roundTrip(opened.socket, 'ping'), 'echo:ping')
    const raw = upstream.handshakes.at(-1)?.rawHeaders ?? []
    assert.deepEqual(headersOf(raw, 'authorization'), [])
    assert.deepEqual(headersOf(raw, 'x-forwarded-user'), ['service-account-demo-app'])
    opened.socket.close()
    await once(opened.socket, 'close')
  })

  it('C17 applies the rules: a missing role is 403, a public path upgrades without identity', async () => {
    const count = upstream.handshakes.length
    const denied = await connectWs(`${wsBase}/admin/live`, { cookie: cookieOf(bob, rig.base) })
    assert.equal(denied.status, 403)
    assert.equal(upstream.handshakes.length, count)
    const allowed = await connectWs(`${wsBase}/admin/live`, { cookie: cookieOf(alice, rig.base) })
    assert.equal(allowed.status, 101)
    allowed.socket?.close()
    const open = await connectWs(`${wsBase}/public/feed`, { 'x-forwarded-user': 'mallory' })
    assert.equal(open.status, 101)
    assert.ok(open.socket)
    const raw = upstream.handshakes.at(-1)?.rawHeaders ?? []
    assert.deepEqual(headersOf(raw, 'x-forwarded-user'), [])
    assert.deepEqual(headersOf(raw, 'x-ssokit-assertion'), [])
    // Binary frames pass untouched.
    const reply = once(open.socket, 'message')
    open.socket.send(Buffer.from([0, 1, 2, 255]))
    const [data] = (await reply) as [Buffer]
    assert.deepEqual([...data], [0, 1, 2, 255])
    open.socket.close()
  })

  it('refuses other upgrades (h2c), ambiguous paths and the proxy prefix; a refusing upstream is 502', async () => {
    const count = upstream.handshakes.length
    const port = rig.proxy.port
    const h2c = await rawRequest(port, [
      'GET /public/x HTTP/1.1',
      'Host: localhost',
      'Connection: Upgrade, HTTP2-Settings',
      'Upgrade: h2c',
      'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA',
    ])
    assert.equal(h2c.status, 501)
    const ambiguous = await connectWs(`${wsBase}/public/%2e%2e/admin`, {})
    assert.equal(ambiguous.status, 401)
    const encoded = await connectWs(`${wsBase}/public/a%2fb`, {})
    assert.equal(encoded.status, 400)
    const own = await connectWs(`${wsBase}/_ssokit/healthz`, {})
    assert.equal(own.status, 404)
    const post = await rawRequest(port, [
      'POST /public/x HTTP/1.1',
      'Host: localhost',
      'Connection: Upgrade',
      'Upgrade: websocket',
      'Sec-WebSocket-Version: 13',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Content-Length: 0',
    ])
    assert.equal(post.status, 405)
    assert.equal(upstream.handshakes.length, count, 'none of them reached the upstream')
    const refused = await connectWs(`${wsBase}/refuse`, { cookie: cookieOf(alice, rig.base) })
    assert.equal(refused.status, 502)
  })

  it(
    'C17 closes an open WebSocket once its session has ended (logout)',
    { timeout: 20_000 },
    async () => {
      const carol = await signIn(rig, 'alice')
      const opened = await connectWs(`${wsBase}/chat`, { cookie: cookieOf(carol, rig.base) })
      assert.ok(opened.socket)
      const socket = opened.socket
      const closed = once(socket, 'close')
      // Several authorisation checks pass while the session lasts.
      await new Promise((resolve) => setTimeout(resolve, 2500))
      assert.equal(socket.readyState, WebSocket.OPEN)
      assert.equal(await roundTrip(socket, 'still here'), 'echo:still here')
      const logout = await carol.fetch(`${rig.base}/_ssokit/logout`, {
        method: 'POST',
        headers: { origin: rig.base, 'sec-fetch-site': 'same-origin' },
      })
      assert.ok(logout.status === 302 || logout.status === 303, String(logout.status))
      await closed
      assert.equal(socket.readyState, WebSocket.CLOSED)
    },
  )
})

describe('ssokit proxy: WebSocket with a bearer token that expires (C17)', () => {
  let upstream: WsUpstream
  let rig: Rig

  before(async () => {
    upstream = await startWsUpstream()
    rig = await startRig({
      upstream: upstream.origin,
      flags: { 'websocket-recheck': 1 },
      idpConfig: { ...DEFAULT_IDP_CONFIG, access_token_ttl: 1 },
    })
  })
  after(async () => {
    await rig.close()
    await upstream.close()
  })

  it(
    'C17 closes the tunnel once its bearer token has expired, and refuses the token after',
    { timeout: 180_000 },
    async () => {
      const token = await bearerToken(rig)
      const wsBase = rig.base.replace(/^http/, 'ws')
      const opened = await connectWs(`${wsBase}/chat`, { authorization: `Bearer ${token}` })
      assert.ok(opened.socket, `upgrade answered ${opened.status}`)
      const socket = opened.socket
      const closed = once(socket, 'close')
      assert.equal(await roundTrip(socket, 'before expiry'), 'echo:before expiry')
      // Rechecked every second: the token stops passing once its exp (plus the verifier's
      // clock tolerance) is behind, and the tunnel goes with it.
      await closed
      assert.equal(socket.readyState, WebSocket.CLOSED)
      const again = await connectWs(`${wsBase}/chat`, { authorization: `Bearer ${token}` })
      assert.equal(again.status, 401)
    },
  )
})
