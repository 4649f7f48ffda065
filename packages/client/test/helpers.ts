import { createHash, randomBytes } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { loginWithPassword, type RunningIdp } from '@ssokit/idp'

export const DEMO_APP = { clientId: 'demo-app', clientSecret: 'demo-app-secret' }

const created: string[] = []

export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ssokit-client-'))
  created.push(dir)
  return dir
}

/** Deletes every folder `tempDir` made. */
export async function removeTempDirs(): Promise<void> {
  await Promise.all(created.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
}

export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >
}

/** Alice's access token for demo-app: the login form, then the code exchange. */
export async function userToken(idp: RunningIdp): Promise<string> {
  const verifier = randomBytes(32).toString('base64url')
  const redirectUri = 'http://localhost:7777/callback'
  const url = new URL(`${idp.issuer}/protocol/openid-connect/auth`)
  url.search = new URLSearchParams({
    client_id: 'demo-app',
    response_type: 'code',
    redirect_uri: redirectUri,
    scope: 'openid profile',
    state: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString()
  const { code } = await loginWithPassword({
    issuer: idp.issuer,
    authorizeUrl: url,
    username: 'alice',
    password: 'alice',
  })
  const response = await fetch(`${idp.issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { authorization: `Basic ${btoa('demo-app:demo-app-secret')}` },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code: code ?? '',
      redirect_uri: redirectUri,
      code_verifier: verifier,
    }),
  })
  const body = (await response.json()) as { access_token: string }
  return body.access_token
}

export interface Fixture {
  readonly url: string
  readonly requests: { path: string; headers: IncomingMessage['headers']; body: string }[]
  close(): Promise<void>
}

/**
 * A tiny provider for faults the real one cannot produce: discovery as given, and every other
 * request answered by `handle`.
 */
export async function startFixture(
  handle: (req: IncomingMessage, res: ServerResponse, body: string) => void,
  discovery: (origin: string) => Record<string, unknown> = (origin) => ({
    issuer: origin,
    token_endpoint: `${origin}/token`,
  }),
): Promise<Fixture> {
  const requests: Fixture['requests'] = []
  let origin = ''
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (body += chunk))
    req.on('end', () => {
      requests.push({ path: req.url ?? '', headers: req.headers, body })
      if (req.url === '/.well-known/openid-configuration') {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(discovery(origin)))
        return
      }
      handle(req, res, body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url: origin,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => {
          resolve()
        })
      }),
  }
}

export function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(value))
}

/** An unsigned JWT with these claims: enough for a client, which never verifies. */
export function fakeJwt(claims: Record<string, unknown>): string {
  const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part(claims)}.${randomBytes(16).toString('base64url')}`
}
