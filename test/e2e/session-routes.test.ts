/**
 * The session routes (`/auth/...`) of a real `createSessionAuth`, served by each of the four
 * adapters over real HTTP: methods they do not serve, and bodies too big to read.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createSessionAuth, type SessionAuth } from '@ssokit/core'
import { startIdp, type RunningIdp } from '@ssokit/idp'
import {
  ADAPTERS,
  startAdapter,
  type AdapterName,
  type RunningAdapter,
} from '../support/adapters.js'

let idp: RunningIdp
let auth: SessionAuth
const servers = new Map<AdapterName, RunningAdapter>()

before(async () => {
  idp = await startIdp({ port: 0, log: false })
  auth = createSessionAuth({
    issuer: idp.issuer,
    clientId: 'demo-app',
    clientSecret: 'demo-app-secret',
    publicUrl: 'http://localhost:3000',
    secret: 'a-test-secret-of-at-least-32-characters',
    cookies: { insecureHttpForLocalhost: true },
    onEvent: () => {},
  })
  for (const name of ADAPTERS) servers.set(name, await startAdapter(name, auth))
})

after(async () => {
  for (const server of servers.values()) await server.close()
  await auth.close()
  await idp.close()
})

/** The status line and headers of a request sent as raw bytes (any method, any framing). */
function raw(url: string, head: string): Promise<{ status: number; headers: string }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(head))
    let text = ''
    socket.setEncoding('latin1')
    socket.on('data', (chunk: string) => {
      text += chunk
      const end = text.indexOf('\r\n\r\n')
      if (end === -1) return
      socket.destroy()
      const [statusLine = '', ...lines] = text.slice(0, end).split('\r\n')
      const headers = lines.map((line) => line.replace(/^[^:]+/, (name) => name.toLowerCase()))
      resolve({ status: Number(statusLine.split(' ')[1]), headers: headers.join('\n') })
    })
    socket.on('error', reject)
    socket.on('close', () => {
      reject(new Error(`closed without an answer: ${JSON.stringify(text)}`))
    })
  })
}

const LIMIT = 64 * 1024
/** What a client would send if nobody stopped it: far more than any server should read. */
const HUGE = 100 * 1024 * 1024

interface Overflow {
  status: number
  body: string
  connection: string | undefined
  /** Bytes of body sent before the server answered. */
  sentBeforeAnswer: number
  /** Bytes of body sent in all, when the server closed the connection. */
  sent: number
}

/**
 * POSTs 100 MB of body, the way a hostile client would: 16 KiB at a time, each as the connection
 * accepts it, until the server answers or closes the connection. The body is chunked, with no
 * length, unless `declare` announces the 100 MB in `Content-Length`. Only a server that reads
 * everything gets the whole body, and only then is the request ended (so such a server answers
 * too, and the test fails instead of waiting).
 */
async function overflow(
  url: string,
  declare: boolean,
  type = 'application/x-www-form-urlencoded',
): Promise<Overflow> {
  const req = httpRequest(url, {
    method: 'POST',
    agent: false,
    headers: {
      'content-type': type,
      ...(declare ? { 'content-length': String(HUGE) } : {}),
    },
  })
  // The server ending the connection mid-body is the expected end: writes then fail.
  req.on('error', () => undefined)
  let answer: IncomingMessage | undefined
  let body = ''
  req.once('response', (res: IncomingMessage) => {
    answer = res
    res.setEncoding('utf8')
    res.on('data', (text: string) => (body += text))
    res.on('error', () => undefined)
  })
  const closed = new Promise<void>((resolve) => req.once('close', resolve))
  const connection = { open: true }
  void closed.then(() => (connection.open = false))
  const chunk = Buffer.alloc(16 * 1024, 'a')
  let sent = 0
  let sentBeforeAnswer: number | undefined
  while (sent < HUGE && connection.open) {
    if (answer !== undefined) sentBeforeAnswer ??= sent
    sent += chunk.length
    if (!req.write(chunk)) await Promise.race([once(req, 'drain').catch(() => undefined), closed])
  }
  if (connection.open) req.end()
  await closed
  if (answer === undefined) throw new Error('the connection closed without an answer')
  return {
    status: answer.statusCode ?? 0,
    body,
    connection: answer.headers.connection,
    sentBeforeAnswer: sentBeforeAnswer ?? sent,
    sent,
  }
}

/** A form POST, sent in 8 KiB chunks without a length or in one piece with one. */
function post(
  url: string,
  form: string,
  chunked: boolean,
): Promise<{ status: number; error: unknown }> {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(form)
    const req = httpRequest(
      url,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          ...(chunked ? {} : { 'content-length': String(body.length) }),
        },
      },
      (res) => {
        let text = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => (text += chunk))
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            error: (JSON.parse(text) as { error?: unknown }).error,
          })
        })
      },
    )
    req.on('error', reject)
    for (let i = 0; i < body.length; i += 8192) req.write(body.subarray(i, i + 8192))
    req.end()
  })
}

describe('session routes through every adapter', () => {
  it('H01 a chunked body over the limit is 413, answered before it ends, and the connection is closed, not drained', async () => {
    for (const [name, server] of servers) {
      const answer = await overflow(`${server.url}/auth/backchannel-logout`, false)
      assert.equal(answer.status, 413, name)
      assert.equal(answer.connection, 'close', name)
      // Answered while the body was still coming, and the rest was refused, not read.
      assert.ok(answer.sentBeforeAnswer < HUGE, name)
      assert.ok(answer.sent < HUGE / 2, `${name}: ${answer.sent} bytes taken`)
    }
  })

  it('H01 a Content-Length over the limit is 413 before the body is read', async () => {
    for (const [name, server] of servers) {
      const answer = await overflow(`${server.url}/auth/backchannel-logout`, true)
      assert.equal(answer.status, 413, name)
      assert.ok(answer.sentBeforeAnswer < HUGE / 2, name)
      assert.ok(answer.sent < HUGE / 2, `${name}: ${answer.sent} bytes taken`)
    }
  })

  it('H01 a body the route does not read is not drained either: the connection is closed', async () => {
    for (const [name, server] of servers) {
      const answer = await overflow(`${server.url}/auth/backchannel-logout`, false, 'text/plain')
      assert.equal(answer.status, 400, name)
      assert.equal(answer.connection, 'close', name)
      assert.ok(answer.sentBeforeAnswer < HUGE, name)
      assert.ok(answer.sent < HUGE / 2, `${name}: ${answer.sent} bytes taken`)
    }
  })

  it('H01 a body within the limit is read whole, chunked or with a length', async () => {
    const form = `logout_token=not-a-token&pad=${'p'.repeat(LIMIT - 100)}`
    for (const [name, server] of servers) {
      for (const chunked of [false, true]) {
        const answer = await post(`${server.url}/auth/backchannel-logout`, form, chunked)
        // Read to its end and parsed: the token itself is what is refused.
        assert.deepEqual(
          answer,
          { status: 400, error: 'logout_token_invalid' },
          `${name} ${chunked}`,
        )
      }
      const over = await post(
        `${server.url}/auth/backchannel-logout`,
        `${form}${'p'.repeat(200)}`,
        true,
      )
      assert.deepEqual(over, { status: 413, error: 'body_too_large' }, name)
    }
  })

  it('H01 Fastify: a form parser of the app leaves the session routes their own body and limit', async () => {
    const server = await startAdapter('fastify', auth, { bodyParsersFirst: true })
    try {
      const form = `logout_token=x&pad=${'p'.repeat(1000)}`
      const url = `${server.url}/auth/backchannel-logout`
      assert.deepEqual(await post(url, form, true), { status: 400, error: 'logout_token_invalid' })
      const answer = await overflow(url, false)
      assert.equal(answer.status, 413)
      assert.ok(answer.sent < HUGE / 2, `${answer.sent} bytes taken`)
    } finally {
      await server.close()
    }
  })

  it('H01 Express: a body a parser mounted first has read is a 500 that says so, never an empty body', async () => {
    const server = await startAdapter('express', auth, { bodyParsersFirst: true })
    try {
      const res = await fetch(`${server.url}/auth/backchannel-logout`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'logout_token=x',
      })
      assert.equal(res.status, 500)
      assert.match(await res.text(), /mount authRouter\(\) before express.urlencoded\(\)/)
      // Requests without a body are not affected.
      const login = await fetch(`${server.url}/auth/login`, { redirect: 'manual' })
      assert.equal(login.status, 302)
    } finally {
      await server.close()
    }
  })

  it('H06 TRACE on a session route is 405 with the methods that route serves, never 500', async () => {
    const routes = {
      '/auth/login': 'GET',
      '/auth/callback': 'GET',
      '/auth/logout': 'GET, POST',
      '/auth/backchannel-logout': 'POST',
    }
    for (const [name, server] of servers) {
      for (const [path, allow] of Object.entries(routes)) {
        const answer = await raw(
          server.url,
          `TRACE ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
        )
        assert.equal(answer.status, 405, `${name} TRACE ${path}`)
        assert.match(answer.headers, new RegExp(`^allow: ${allow}$`, 'm'), `${name} ${path}`)
      }
    }
  })

  it('H06 other methods a route does not serve are 405 with Allow, as before', async () => {
    for (const [name, server] of servers) {
      for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
        const answer = await new Promise<{ status: number; allow: unknown }>((resolve, reject) => {
          const req = httpRequest(`${server.url}/auth/backchannel-logout`, { method }, (res) => {
            res.resume()
            resolve({ status: res.statusCode ?? 0, allow: res.headers.allow })
          })
          req.on('error', reject)
          req.end()
        })
        assert.deepEqual(answer, { status: 405, allow: 'POST' }, `${name} ${method}`)
      }
    }
  })
})
