/**
 * The servers of the session benchmark, each run in its own child process: `GET /api` behind a
 * session, on `node:http` and on Express, with ssokit (memory store, Redis store) and, on the
 * same Express handler, with express-openid-connect (its stateless encrypted cookie, and with
 * an express-session store, connect-redis).
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

import RedisStore from 'connect-redis'
import express from 'express'
import openidConnectPackage from 'express-openid-connect'
import { Redis } from 'ioredis'
import { createSessionAuth, type SessionAuth } from '@ssokit/core'
import { authRouter, requireAuth } from '@ssokit/express'
import { withAuth } from '@ssokit/node'
import { RedisSessionStore } from '@ssokit/redis'

import { answerRefusals } from './express-refusals.js'
import { profileBetweenSignals } from './profile.js'

export const SESSION_SERVERS = {
  open: 'node',
  memory: 'node',
  redis: 'node',
  'redis-read': 'node',
  'express open': 'express',
  'express memory': 'express',
  'express redis': 'express',
  'express-openid-connect': 'express',
  'express-openid-connect + connect-redis': 'express',
} as const
export type SessionServer = keyof typeof SESSION_SERVERS

export const CLIENT_ID = 'demo-app'
export const CLIENT_SECRET = 'demo-app-secret'
export const SESSION_COOKIE = 'ssokit-session'
const SECRET = 'bench-session-secret-0123456789abcdef'

/** The cookie each server's session lives in, which wrk sends on every request. */
export function sessionCookieOf(server: SessionServer): string {
  return server.startsWith('express-openid-connect') ? 'appSession' : SESSION_COOKIE
}

function ssokitAuth(issuer: string, port: number, redisUrl: string | undefined): SessionAuth {
  return createSessionAuth({
    issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    secret: SECRET,
    publicUrl: `http://localhost:${port}`,
    cookies: { insecureHttpForLocalhost: true },
    ...(redisUrl !== undefined ? { store: new RedisSessionStore({ url: redisUrl }) } : {}),
  })
}

// A CommonJS package: its named exports are properties of the default one under Node's ESM.
const { auth: openidConnect, requiresAuth } = openidConnectPackage

/**
 * connect-redis's methods take an optional callback and resolve to what the callback returns,
 * so express-openid-connect, which awaits them when no callback is declared, reads every session
 * as missing. Resolving to the callback's value joins the two as express-session would.
 */
function promiseStore(store: RedisStore) {
  const call =
    <T>(run: (done: (error: unknown, value?: T) => void) => unknown) =>
    () =>
      new Promise<T | undefined>((resolve, reject) => {
        void run((error, value) => {
          if (error) reject(error instanceof Error ? error : new Error('the session store failed'))
          else resolve(value)
        })
      })
  // Declared `async`: express-openid-connect awaits an async method and gives any other one a
  // callback it would wait for.
  return {
    async get(id: string) {
      return call((done) => store.get(id, done))()
    },
    async set(id: string, session: never) {
      return call((done) => store.set(id, session, done))()
    },
    async destroy(id: string) {
      return call((done) => store.destroy(id, done))()
    },
  }
}

const body = (subject: string | undefined) => JSON.stringify({ subject })

/** Starts one server; resolves to its port. */
export async function serveSession(
  name: SessionServer,
  issuer: string,
  redisUrl: string,
): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  switch (name) {
    case 'open':
      server.on('request', (_req, res) => {
        res.setHeader('content-type', 'application/json')
        res.end(body('anonymous'))
      })
      break
    case 'redis-read': {
      // The floor of any design that reads Redis on every request: the session id taken from the
      // cookie without its MAC check, one store read, the record parsed.
      const store = new RedisSessionStore({ url: redisUrl, cache: false })
      const prefix = `${SESSION_COOKIE}=`
      server.on('request', (req, res) => {
        const cookie =
          (req.headers.cookie ?? '').split('; ').find((c) => c.startsWith(prefix)) ?? ''
        const id = cookie.slice(prefix.length, cookie.lastIndexOf('.'))
        void store.get(id).then((stored) => {
          const record =
            stored === undefined ? undefined : (JSON.parse(stored.data) as { sub: string })
          res.statusCode = record === undefined ? 401 : 200
          res.setHeader('content-type', 'application/json')
          res.end(body(record?.sub))
        })
      })
      break
    }
    case 'memory':
    case 'redis': {
      const handler = withAuth(
        (_req, res, identity) => {
          res.setHeader('content-type', 'application/json')
          res.end(body(identity.subject))
        },
        { auth: ssokitAuth(issuer, port, name === 'redis' ? redisUrl : undefined) },
      )
      server.on('request', (req, res) => void handler(req, res))
      break
    }
    case 'express open':
    case 'express memory':
    case 'express redis':
    case 'express-openid-connect':
    case 'express-openid-connect + connect-redis': {
      const app = express()
      if (name === 'express open') {
        app.get('/api', (_req, res) => {
          res.json({ subject: 'anonymous' })
        })
      } else if (name.startsWith('express-openid-connect')) {
        const store =
          name === 'express-openid-connect + connect-redis'
            ? promiseStore(new RedisStore({ client: new Redis(redisUrl), prefix: 'eoc:' }))
            : undefined
        app.use(
          openidConnect({
            issuerBaseURL: issuer,
            baseURL: `http://localhost:${port}`,
            clientID: CLIENT_ID,
            clientSecret: CLIENT_SECRET,
            secret: SECRET,
            authRequired: false,
            idpLogout: false,
            authorizationParams: { response_type: 'code', scope: 'openid profile email' },
            ...(store === undefined ? {} : { session: { store } }),
          }),
        )
        app.get('/api', requiresAuth(), (req, res) => {
          res.json({ subject: req.oidc.user?.sub as string | undefined })
        })
      } else {
        const auth = ssokitAuth(issuer, port, name === 'express redis' ? redisUrl : undefined)
        app.use(authRouter(auth))
        app.get('/api', requireAuth({ auth }), (req, res) => {
          res.json({ subject: req.auth?.subject })
        })
      }
      answerRefusals(app)
      server.on('request', app)
      break
    }
  }
  return port
}

// Child-process entry: `session-servers.ts <server name> <issuer> <redis url>` prints `PORT <n>`.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const name = process.argv[2] as SessionServer
  if (!(name in SESSION_SERVERS)) throw new Error(`unknown server ${name}`)
  const port = await serveSession(name, process.argv[3] ?? '', process.argv[4] ?? '')
  const profilePath = process.env.BENCH_PROFILE
  if (profilePath !== undefined) profileBetweenSignals(profilePath)
  console.log(`PORT ${port}`)
}
