import assert from 'node:assert/strict'
import { once } from 'node:events'
import {
  createServer,
  IncomingMessage,
  request as httpRequest,
  type Server,
  type ServerResponse,
} from 'node:http'
import { connect, Socket, type AddressInfo } from 'node:net'
import { after, describe, it } from 'node:test'
import { createBearerAuthenticator, SsoError, type Authenticator } from '@ssokit/core'
import { sendParts, sendWebResponse, toRequestLike, toWebRequest, withAuth } from '@ssokit/node'
import { withTestRoutes } from '../../../test/support/routes.js'

const servers: Server[] = []
after(async () => {
  for (const server of servers) {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  }
})

async function serve(
  handler: (req: IncomingMessage, res: ServerResponse) => unknown,
): Promise<string> {
  const server = createServer((req, res) => void handler(req, res))
  servers.push(server)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** Sends raw HTTP/1.1 bytes and resolves to the raw answer. */
async function raw(base: string, text: string): Promise<string> {
  const { port } = new URL(base)
  const socket = connect(Number(port), '127.0.0.1')
  await once(socket, 'connect')
  socket.end(text)
  let out = ''
  socket.setEncoding('utf8')
  for await (const chunk of socket) out += chunk as string
  return out
}

// Built without contacting the provider: construction never fetches anything.
const bearer = createBearerAuthenticator({
  issuer: 'https://idp.example.org/realms/x',
  clientId: 'api',
})

describe('toRequestLike', () => {
  it('keeps both Authorization headers that Node itself would merge away', async () => {
    let seen: readonly string[] = []
    const url = await serve((req, res) => {
      seen = toRequestLike(req).header('authorization')
      res.end()
    })
    await raw(
      url,
      'GET /x?y=1 HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\nConnection: close\r\n\r\n',
    )
    assert.deepEqual(seen, ['Bearer a', 'Bearer b'])
  })

  it('reports method, target and absent headers', async () => {
    let method = ''
    let target = ''
    let missing: readonly string[] = ['x']
    const url = await serve((req, res) => {
      const request = toRequestLike(req)
      method = request.method
      target = request.url
      missing = request.header('x-none')
      res.end()
    })
    await fetch(`${url}/a/b?c=d`, { method: 'DELETE' })
    assert.equal(method, 'DELETE')
    assert.equal(target, '/a/b?c=d')
    assert.deepEqual(missing, [])
  })
})

describe('toWebRequest', () => {
  it('streams the body: the Request exists before the body has arrived', async () => {
    let created!: () => void
    const requestCreated = new Promise<void>((resolve) => (created = resolve))
    let received = ''
    const url = await serve((req, res) => {
      const request = toWebRequest(req)
      created()
      void request.text().then((text) => {
        received = text
        res.end('done')
      })
    })
    const req = httpRequest(`${url}/auth/back`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
    })
    req.flushHeaders()
    await requestCreated
    req.end('logout_token=abc')
    const [res] = (await once(req, 'response')) as [IncomingMessage]
    res.resume()
    await once(res, 'end')
    assert.equal(received, 'logout_token=abc')
  })

  it('builds the URL from Host, X-Forwarded-* only when trusted, or the public URL', async () => {
    const urls: string[] = []
    const url = await serve((req, res) => {
      urls.push(toWebRequest(req).url)
      urls.push(toWebRequest(req, { trustProxy: true }).url)
      urls.push(toWebRequest(req, { publicUrl: 'https://app.example.org/ignored' }).url)
      urls.push(toWebRequest(req, { url: '/original?q=1' }).url)
      res.end()
    })
    await fetch(`${url}/p?q=1`, {
      headers: { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'public.example.org' },
    })
    const host = new URL(url).host
    assert.deepEqual(urls, [
      `http://${host}/p?q=1`,
      'https://public.example.org/p?q=1',
      'https://app.example.org/p?q=1',
      `http://${host}/original?q=1`,
    ])
  })

  it('H06 keeps a method the Request constructor refuses (TRACE, TRACK, CONNECT), without its body', () => {
    for (const method of ['TRACE', 'TRACK', 'CONNECT']) {
      const req = new IncomingMessage(new Socket())
      req.method = method
      req.url = '/auth/login'
      req.headers = { 'content-length': '5' }
      const request = toWebRequest(req, { publicUrl: 'https://app.example.org' })
      assert.equal(request.method, method)
      assert.equal(request.body, null)
      assert.equal(request.url, 'https://app.example.org/auth/login')
    }
  })
})

describe('sending answers', () => {
  it('sendWebResponse keeps every Set-Cookie and streams the body', async () => {
    const url = await serve((_req, res) => {
      const headers = new Headers({ 'content-type': 'text/plain' })
      headers.append('set-cookie', 'a=1; Path=/')
      headers.append('set-cookie', 'b=2; Path=/')
      const body = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('one,'))
          controller.enqueue(new TextEncoder().encode('two'))
          controller.close()
        },
      })
      void sendWebResponse(res, new Response(body, { status: 202, headers }))
    })
    const response = await fetch(url)
    assert.equal(response.status, 202)
    assert.deepEqual(response.headers.getSetCookie(), ['a=1; Path=/', 'b=2; Path=/'])
    assert.equal(await response.text(), 'one,two')
  })

  it('sendParts copies a rejection as it is', async () => {
    const url = await serve((req, res) => {
      sendParts(res, bearer.reject(new SsoError('token_missing', 'No token.'), toRequestLike(req)))
    })
    const response = await fetch(url)
    assert.equal(response.status, 401)
    assert.equal(response.headers.get('www-authenticate'), 'Bearer realm="api"')
    assert.deepEqual(await response.json(), { error: 'token_missing' })
  })
})

describe('withAuth', () => {
  it('refuses bad options when constructed', () => {
    const handler = () => undefined
    assert.throws(() => withAuth('x' as unknown as typeof handler), {
      name: 'TypeError',
      code: 'ERR_INVALID_ARG_TYPE',
    })
    assert.throws(
      () => withAuth(handler, { auth: bearer, roles: 'admin' as unknown as string[] }),
      {
        code: 'ERR_INVALID_ARG_TYPE',
      },
    )
    assert.throws(() => withAuth(handler, { auth: bearer, roles: [''] }), {
      code: 'ERR_INVALID_ARG_VALUE',
    })
    assert.throws(() => withAuth(handler, { auth: 42 as unknown as Authenticator }), {
      code: 'ERR_INVALID_ARG_TYPE',
    })
  })

  it('without options reads OIDC_* variables at construction and says what is missing', () => {
    const saved = process.env.OIDC_CLIENT_ID
    delete process.env.OIDC_CLIENT_ID
    try {
      assert.throws(() => withAuth(() => undefined), {
        code: 'ERR_MISSING_OPTION',
        message: /OIDC_CLIENT_ID/,
      })
    } finally {
      if (saved !== undefined) process.env.OIDC_CLIENT_ID = saved
    }
  })

  it('catches thrown non-Error values and rejections: 500, handler not called (A30)', async () => {
    let calls = 0
    const failing: Authenticator = {
      realm: 'api',
      authenticate(request) {
        // eslint-disable-next-line @typescript-eslint/only-throw-error
        if (request.url.includes('sync')) throw 'not an error'
        return Promise.reject(new Error('boom'))
      },
      reject: (error, request) => bearer.reject(error, request),
    }
    const url = await serve(withAuth(() => void (calls += 1), { auth: failing }))
    for (const path of ['/sync', '/async']) {
      const response = await fetch(url + path)
      assert.equal(response.status, 500)
      assert.deepEqual(await response.json(), { error: 'internal_error' })
    }
    assert.equal(calls, 0)
  })

  it('hands requests under the prefix to the session routes, streaming their bodies', async () => {
    let calls = 0
    const withRoutes = withTestRoutes(bearer, async (request, pathname) =>
      pathname === '/auth/echo'
        ? new Response(`${request.method} ${request.url} ${await request.text()}`, {
            headers: [
              ['set-cookie', 's=1'],
              ['set-cookie', 't=2'],
            ],
          })
        : undefined,
    )
    const url = await serve(
      withAuth(() => void (calls += 1), { auth: withRoutes, publicUrl: 'https://app.example.org' }),
    )
    const echo = await fetch(`${url}/auth/echo?x=1`, { method: 'POST', body: 'a=b' })
    assert.equal(await echo.text(), 'POST https://app.example.org/auth/echo?x=1 a=b')
    assert.deepEqual(echo.headers.getSetCookie(), ['s=1', 't=2'])
    assert.equal((await fetch(`${url}/auth/fail`)).status, 400)
    // Not served by the routes: authentication applies.
    assert.equal((await fetch(`${url}/auth/other`)).status, 401)
    assert.equal((await fetch(`${url}/authx/echo`)).status, 401)
    assert.equal(calls, 0)
  })
})
