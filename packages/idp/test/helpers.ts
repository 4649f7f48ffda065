import { createHash, randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { loginWithPassword, type CookieJar, type RunningIdp } from '@ssokit/idp'

export const DEMO_APP = { id: 'demo-app', secret: 'demo-app-secret' }
export const DEMO_API = { id: 'demo-api', secret: 'demo-api-secret' }
export const REDIRECT = 'http://localhost:7777/callback'
export const oidc = (idp: RunningIdp, path: string) =>
  `${idp.issuer}/protocol/openid-connect/${path}`

export function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url')
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') }
}

export interface Jwt {
  header: Record<string, unknown>
  payload: Record<string, unknown>
}

export function decode(token: string): Jwt {
  const [h = '', p = ''] = token.split('.')
  return {
    header: JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>,
  }
}

export type TokenBody = Record<string, unknown> & {
  access_token?: string
  refresh_token?: string
  id_token?: string
  error?: string
}

/** POSTs a form to one of the idp's endpoints; `auth` is `[clientId, secret]` for Basic. */
export async function post(
  url: string,
  form: Record<string, string>,
  auth?: readonly [string, string],
): Promise<{ status: number; body: TokenBody }> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' }
  if (auth) headers.authorization = basic(auth[0], auth[1])
  const res = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(form) })
  const text = await res.text()
  return { status: res.status, body: text ? (JSON.parse(text) as TokenBody) : {} }
}

export function authorizeUrl(
  idp: RunningIdp,
  params: {
    clientId: string
    redirectUri?: string
    scope?: string
    challenge?: string
    state?: string
  },
): string {
  const url = new URL(oidc(idp, 'auth'))
  const q = url.searchParams
  q.set('client_id', params.clientId)
  q.set('response_type', 'code')
  q.set('redirect_uri', params.redirectUri ?? REDIRECT)
  q.set('scope', params.scope ?? 'openid profile email')
  q.set('state', params.state ?? randomBytes(8).toString('hex'))
  if (params.challenge !== undefined) {
    q.set('code_challenge', params.challenge)
    q.set('code_challenge_method', 'S256')
  }
  return url.href
}

export interface CodeLogin {
  tokens: TokenBody
  cookies: CookieJar
}

/** Full authorization code + PKCE login through the form, then the code exchange. */
export async function codeLogin(
  idp: RunningIdp,
  options: {
    username?: string
    password?: string
    scope?: string
    client?: { id: string; secret?: string }
    redirectUri?: string
    cookies?: CookieJar
  } = {},
): Promise<CodeLogin> {
  const client = options.client ?? DEMO_APP
  const redirectUri = options.redirectUri ?? REDIRECT
  const { verifier, challenge } = pkce()
  const login = await loginWithPassword({
    issuer: idp.issuer,
    authorizeUrl: authorizeUrl(idp, {
      clientId: client.id,
      redirectUri,
      challenge,
      ...(options.scope === undefined ? {} : { scope: options.scope }),
    }),
    username: options.username ?? 'alice',
    password: options.password ?? 'alice',
    ...(options.cookies === undefined ? {} : { cookies: options.cookies }),
  })
  if (login.code === undefined) throw new Error(`no code in ${login.location}`)
  const form: Record<string, string> = {
    grant_type: 'authorization_code',
    code: login.code,
    redirect_uri: redirectUri,
    code_verifier: verifier,
  }
  const { body } =
    client.secret === undefined
      ? await post(oidc(idp, 'token'), { ...form, client_id: client.id })
      : await post(oidc(idp, 'token'), form, [client.id, client.secret])
  return { tokens: body, cookies: login.cookies }
}

/** A small receiver recording back-channel logout tokens POSTed to it. */
export interface Receiver {
  url: string
  readonly tokens: string[]
  next(): Promise<string>
  close(): Promise<void>
}

export async function startReceiver(): Promise<Receiver> {
  const tokens: string[] = []
  const waiters: ((token: string) => void)[] = []
  const server: Server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => (body += chunk))
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token')
      if (token !== null) {
        tokens.push(token)
        waiters.shift()?.(token)
      }
      res.writeHead(200).end()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/backchannel-logout`,
    tokens,
    next: () =>
      tokens.length > 0
        ? Promise.resolve(tokens[tokens.length - 1]!)
        : new Promise<string>((resolve) => waiters.push(resolve)),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => {
          resolve()
        })
        server.closeAllConnections()
      }),
  }
}
