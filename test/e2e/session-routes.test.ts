/**
 * The session routes (`/auth/...`) of a real `createSessionAuth`, served by each of the four
 * adapters over real HTTP: methods they do not serve, and bodies too big to read.
 */
import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
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

describe('session routes through every adapter', () => {
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
