/**
 * The four ssokit adapters, each serving the same two routes over real HTTP on 127.0.0.1:
 * `GET /me` (authenticated) and `GET /admin` (role `admin`). Both answer the identity as JSON and
 * count their calls, so a test can prove a handler never ran for a rejected request. An
 * authenticator with routes of its own (sessions) has them mounted the way each framework's
 * documentation shows; Hono runs on `@hono/node-server`, as in production.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import {
  createServer,
  type IncomingMessage,
  type Server,
  type ServerOptions,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createAdaptorServer } from '@hono/node-server'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import {
  calculateJwkThumbprint,
  decodeJwt,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  SignJWT,
  type JWTPayload,
} from 'jose'
import { hasRoutes, type Authenticator, type Identity } from '@ssokit/core'
import { loginWithPassword, type RunningIdp } from '@ssokit/idp'
import * as ssokitExpress from '@ssokit/express'
import { ssokit as ssokitFastify, requireAuth as fastifyRequireAuth } from '@ssokit/fastify'
import * as ssokitHono from '@ssokit/hono'
import { withAuth } from '@ssokit/node'

export interface IdentityJson {
  subject: string
  username: string | null
  roles: string[]
}

export interface RunningAdapter {
  readonly name: string
  readonly url: string
  /** How many times a route handler has run. */
  readonly calls: () => number
  close(): Promise<void>
}

export type AdapterName = 'node' | 'express' | 'fastify' | 'hono'
export const ADAPTERS: readonly AdapterName[] = ['node', 'express', 'fastify', 'hono']

export interface AdapterOptions {
  /** Node's request header limit for the server, in bytes (`maxHeaderSize`). Default Node's. */
  readonly maxHeaderSize?: number
  /**
   * Body parsers set up before the session routes, the way many apps do at the top: Express's
   * `urlencoded()` and `json()`, a form parser for Fastify.
   */
  readonly bodyParsersFirst?: boolean
}

type Starter = (
  auth: Authenticator,
  count: () => void,
  options: AdapterOptions,
) => Promise<{ url: string; close: () => Promise<void> }>

function serverOptions(options: AdapterOptions): ServerOptions {
  return options.maxHeaderSize === undefined ? {} : { maxHeaderSize: options.maxHeaderSize }
}

export function identityJson(identity: Identity): IdentityJson {
  return {
    subject: identity.subject,
    username: identity.username,
    roles: [...identity.roles].sort(),
  }
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo
      resolve(`http://127.0.0.1:${port}`)
    })
  })
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections()
  return new Promise((resolve, reject) => {
    server.close((error) => {
      if (error) reject(error)
      else resolve()
    })
  })
}

function sendJson(res: ServerResponse, value: unknown): void {
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify(value))
}

const startNode: Starter = async (auth, count, options) => {
  const handler = (_req: IncomingMessage, res: ServerResponse, identity: Identity) => {
    count()
    sendJson(res, identityJson(identity))
  }
  const me = withAuth(handler, { auth })
  const admin = withAuth(handler, { auth, roles: ['admin'] })
  const server = createServer(serverOptions(options), (req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname
    // withAuth serves the authenticator's own routes (under its prefix) before the handler.
    const route =
      path === '/me' || (hasRoutes(auth) && path.startsWith(`${auth.prefix}/`))
        ? me
        : path === '/admin'
          ? admin
          : undefined
    if (route === undefined) {
      res.statusCode = 404
      res.end()
      return
    }
    void route(req, res)
  })
  return { url: await listen(server), close: () => closeServer(server) }
}

const startExpress: Starter = async (auth, count, options) => {
  const app = express()
  if (options.bodyParsersFirst === true) app.use(express.urlencoded(), express.json())
  if (hasRoutes(auth)) app.use(ssokitExpress.authRouter(auth))
  app.get('/me', ssokitExpress.requireAuth({ auth }), (req, res) => {
    count()
    res.json(identityJson(req.auth!))
  })
  app.get(
    '/admin',
    ssokitExpress.requireAuth({ auth }),
    ssokitExpress.requireRole('admin'),
    (req, res) => {
      count()
      res.json(identityJson(req.auth!))
    },
  )
  const server = createServer(serverOptions(options), app)
  return { url: await listen(server), close: () => closeServer(server) }
}

const startFastify: Starter = async (auth, count, options) => {
  const app = Fastify({ http: serverOptions(options) })
  if (options.bodyParsersFirst === true) {
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string' },
      (_request, body, done) => {
        done(null, new URLSearchParams(body as string))
      },
    )
  }
  await app.register(ssokitFastify, { auth })
  app.get('/me', { onRequest: fastifyRequireAuth() }, (request) => {
    count()
    return identityJson(request.auth!)
  })
  app.get('/admin', { config: { roles: ['admin'] } }, (request) => {
    count()
    return identityJson(request.auth!)
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, close: () => app.close() }
}

const startHono: Starter = async (auth, count, options) => {
  const app = new Hono()
  if (hasRoutes(auth)) app.use(ssokitHono.authRoutes(auth))
  app.get('/me', ssokitHono.requireAuth({ auth }), (c) => {
    count()
    return c.json(identityJson(c.get('auth')))
  })
  app.get('/admin', ssokitHono.requireAuth({ auth }), ssokitHono.requireRole('admin'), (c) => {
    count()
    return c.json(identityJson(c.get('auth')))
  })
  // Global Request and Response stay Node's own: other tests in this process use them.
  const server = createAdaptorServer({
    fetch: app.fetch,
    overrideGlobalObjects: false,
    serverOptions: serverOptions(options),
  }) as Server
  return { url: await listen(server), close: () => closeServer(server) }
}

const STARTERS: Record<AdapterName, Starter> = {
  node: startNode,
  express: startExpress,
  fastify: startFastify,
  hono: startHono,
}

export async function startAdapter(
  name: AdapterName,
  auth: Authenticator,
  options: AdapterOptions = {},
): Promise<RunningAdapter> {
  let calls = 0
  const running = await STARTERS[name](
    auth,
    () => {
      calls += 1
    },
    options,
  )
  return { name, url: running.url, calls: () => calls, close: running.close }
}

/**
 * Tokens for adapter tests: real ones issued by a started development provider, and negative ones
 * signed with that provider's own key (the test writes its key file, so it holds the private key)
 * or with a second, unknown key.
 */
export class TokenKit {
  /** Every token handed out, so a test can check that none is ever echoed. */
  readonly issued: string[] = []
  alice = ''
  bob = ''
  service = ''
  forged = ''
  expired = ''
  otherAudience = ''
  idToken = ''

  private constructor(
    readonly dir: string,
    readonly keysFile: string,
    private readonly idpKey: CryptoKey,
    private readonly kid: string,
    private readonly evilKey: CryptoKey,
  ) {}

  static async create(): Promise<TokenKit> {
    const dir = await mkdtemp(join(tmpdir(), 'ssokit-adapters-'))
    const { privateKey } = await generateKeyPair('RS256', { extractable: true })
    const jwk = await exportJWK(privateKey)
    const kid = await calculateJwkThumbprint(jwk)
    const keysFile = join(dir, 'keys.json')
    await writeFile(
      keysFile,
      JSON.stringify({ keys: [{ ...jwk, kid, alg: 'RS256', use: 'sig' }] }),
      {
        mode: 0o600,
      },
    )
    const evil = await generateKeyPair('RS256')
    return new TokenKit(dir, keysFile, privateKey, kid, evil.privateKey)
  }

  private keep(token: string): string {
    this.issued.push(token)
    return token
  }

  /** Fetches real tokens from `idp`, then derives the negative ones from a real token's claims. */
  async useIdp(idp: RunningIdp): Promise<void> {
    this.service = this.keep(await clientCredentialsToken(idp.issuer))
    this.alice = this.keep(await userToken(idp.issuer, 'alice', 'alice'))
    this.bob = this.keep(await userToken(idp.issuer, 'bob', 'bob'))
    const header = decodeProtectedHeader(this.alice)
    const claims = decodeJwt(this.alice)
    const now = Math.floor(Date.now() / 1000)
    const typ = header.typ ?? 'JWT'
    this.forged = this.keep(await this.sign(claims, typ, this.evilKey))
    this.expired = this.keep(await this.sign({ ...claims, iat: now - 7200, exp: now - 3600 }, typ))
    this.otherAudience = this.keep(
      await this.sign({ ...claims, aud: 'other-api', azp: 'other-api' }, typ),
    )
    this.idToken = this.keep(
      await this.sign({ ...claims, typ: 'ID', azp: 'demo-api', nonce: 'n' }, 'JWT'),
    )
  }

  sign(claims: JWTPayload, typ: string, key: CryptoKey = this.idpKey): Promise<string> {
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ, kid: this.kid }).sign(key)
  }

  /** A URL on 127.0.0.1 where nothing listens: connections are refused. */
  async refusingUrl(): Promise<string> {
    const server = createServer()
    const url = `${await listen(server)}/certs`
    await closeServer(server)
    return url
  }

  async dispose(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true })
  }
}

const REDIRECT_URI = 'http://127.0.0.1:9/callback'

function tokenEndpoint(issuer: string): string {
  return `${issuer}/protocol/openid-connect/token`
}

async function postToken(
  issuer: string,
  params: Record<string, string>,
): Promise<Record<string, unknown>> {
  const response = await fetch(tokenEndpoint(issuer), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  })
  const body = (await response.json()) as Record<string, unknown>
  if (!response.ok) throw new Error(`token endpoint: ${response.status} ${String(body.error)}`)
  return body
}

/** A service-account token of demo-app for the audience demo-api (client credentials). */
export async function clientCredentialsToken(
  issuer: string,
  audience = 'demo-api',
): Promise<string> {
  const body = await postToken(issuer, {
    grant_type: 'client_credentials',
    client_id: 'demo-app',
    client_secret: 'demo-app-secret',
    audience,
  })
  return String(body.access_token)
}

/**
 * A user's access token for demo-api, the way a web app gets one: an authorization-code login
 * of demo-app through the provider's login form (driven with fetch), then a token exchange for
 * the audience demo-api.
 */
export async function userToken(
  issuer: string,
  username: string,
  password: string,
): Promise<string> {
  const verifier = randomBytes(32).toString('base64url')
  const authorizeUrl = new URL(`${issuer}/protocol/openid-connect/auth`)
  authorizeUrl.search = new URLSearchParams({
    client_id: 'demo-app',
    response_type: 'code',
    redirect_uri: REDIRECT_URI,
    scope: 'openid profile email',
    state: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString()
  const { code, location } = await loginWithPassword({ issuer, authorizeUrl, username, password })
  if (code === undefined) throw new Error(`login of ${username} failed: ${location}`)
  const tokens = await postToken(issuer, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: REDIRECT_URI,
    code_verifier: verifier,
    client_id: 'demo-app',
    client_secret: 'demo-app-secret',
  })
  const exchanged = await postToken(issuer, {
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: String(tokens.access_token),
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    audience: 'demo-api',
    client_id: 'demo-app',
    client_secret: 'demo-app-secret',
  })
  return String(exchanged.access_token)
}
