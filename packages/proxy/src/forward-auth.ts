/**
 * Forward auth: `<prefix>/auth` answers a front server that already exists (nginx
 * `auth_request`, Traefik `forwardAuth`, Caddy `forward_auth`) whether the request it holds may
 * pass. The same rules and identity headers as the reverse proxy apply, to the ORIGINAL method
 * and URI, which the front server sends in `X-Forwarded-Method`/`-Uri` or
 * `X-Original-Method`/`-URI`. Those headers are believed only from a trusted proxy; without them,
 * or from anyone else, the answer is a refusal, never a pass.
 *
 * The answers: 200 with the identity headers (the front server copies them upstream); 401 for a
 * request without credentials (with `WWW-Authenticate`, and for a browser the sign-in address in
 * `X-Ssokit-Login`), or with `?redirect=true` a 302 to sign in for a browser, for front servers
 * that relay the answer (Traefik, Caddy); 403 when a rule's roles are missing; 5xx when the
 * provider or the session store fails.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { type Identity, type RequestLike, type ResponseParts, type SessionAuth } from '@ssokit/core'
import { isUnderPrefix, sendParts, toRequestLike } from '@ssokit/node'
import { canonicalTarget } from './paths.js'
import type { RedirectPolicy } from './redirects.js'
import { explainRefusal } from './refusal.js'
import { requireAccess, type Rules } from './rules.js'
import type { TrustedProxies } from './trusted-proxies.js'

/** The response header carrying the sign-in address of a refused browser request. */
export const LOGIN_HEADER = 'X-Ssokit-Login'

/** Why a forward-auth request was refused before any credential was looked at. */
export type ForwardAuthProblem =
  'untrusted_peer' | 'missing_metadata' | 'conflicting_metadata' | 'invalid_metadata'

const PROBLEM_MESSAGES: Readonly<Record<ForwardAuthProblem, string>> = {
  untrusted_peer:
    'Forward auth answers only trusted proxies: add the front server to trustedProxies (--trusted-proxies).',
  missing_metadata:
    'The front server did not say which request to check: send X-Forwarded-Method and X-Forwarded-Uri (or X-Original-Method and X-Original-URI).',
  conflicting_metadata:
    'The request to check is named more than once, differently (repeated or disagreeing X-Forwarded-*, X-Original-* or Forwarded headers).',
  invalid_metadata: 'The request to check has a method, URI, host or scheme that cannot be used.',
}

const REFUSED_METHODS: ReadonlySet<string> = new Set(['TRACE', 'TRACK'])
const METHOD = /^[A-Za-z]{1,32}$/
const HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

export interface ForwardAuthSetup {
  readonly prefix: string
  readonly publicUrl: string
  readonly auth: SessionAuth
  readonly rules: Rules
  readonly trusted: TrustedProxies
  readonly redirects: RedirectPolicy
  /** Every identity header name configured, the assertion's included. */
  readonly headerNames: readonly string[]
  /** The identity headers (and assertion) of an allowed request, lower-case names. */
  identityHeaders(identity: Identity): Promise<[string, string][]>
}

/** The request the front server asks about. */
interface Original {
  readonly method: string
  readonly uri: string
  readonly host: string | undefined
  readonly proto: string | undefined
}

/** Every value of every header in `names`, from `rawHeaders` (each occurrence kept). */
function valuesOf(req: IncomingMessage, names: readonly string[]): string[] {
  const out: string[] = []
  const raw = req.rawHeaders
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (names.includes((raw[i] ?? '').toLowerCase())) out.push((raw[i + 1] ?? '').trim())
  }
  return out
}

/** A parameter (`host`, `proto`) of the last `Forwarded` element: the one the peer added. */
function forwardedParameter(req: IncomingMessage, name: string): string[] {
  const elements = valuesOf(req, ['forwarded']).flatMap((value) => value.split(','))
  const last = elements.at(-1)
  if (last === undefined) return []
  for (const pair of last.split(';')) {
    const eq = pair.indexOf('=')
    if (eq !== -1 && pair.slice(0, eq).trim().toLowerCase() === name) {
      return [
        pair
          .slice(eq + 1)
          .trim()
          .replace(/^"(.*)"$/, '$1'),
      ]
    }
  }
  return []
}

const CONFLICT: unique symbol = Symbol('conflict')

/** One value from all its spellings; several that disagree are a conflict. */
function agreed(values: readonly string[]): string | undefined | typeof CONFLICT {
  if (values.length === 0) return undefined
  const first = values[0] ?? ''
  return values.every((v) => v === first) ? first : CONFLICT
}

function readOriginal(req: IncomingMessage): Original | ForwardAuthProblem {
  // Each of these header names may occur once; the same item under two names must agree.
  for (const name of [
    'x-forwarded-method',
    'x-original-method',
    'x-forwarded-uri',
    'x-original-uri',
    'x-forwarded-host',
    'x-forwarded-proto',
  ]) {
    if (valuesOf(req, [name]).length > 1) return 'conflicting_metadata'
  }
  const method = agreed(valuesOf(req, ['x-forwarded-method', 'x-original-method']))
  const uri = agreed(valuesOf(req, ['x-forwarded-uri', 'x-original-uri']))
  const host = agreed([...valuesOf(req, ['x-forwarded-host']), ...forwardedParameter(req, 'host')])
  const proto = agreed([
    ...valuesOf(req, ['x-forwarded-proto']).map((p) => p.toLowerCase()),
    ...forwardedParameter(req, 'proto').map((p) => p.toLowerCase()),
  ])
  if (method === CONFLICT || uri === CONFLICT || host === CONFLICT || proto === CONFLICT) {
    return 'conflicting_metadata'
  }
  if (method === undefined || uri === undefined) return 'missing_metadata'
  if (!METHOD.test(method)) return 'invalid_metadata'
  if (host !== undefined && !HOST.test(host)) return 'invalid_metadata'
  if (proto !== undefined && proto !== 'http' && proto !== 'https') return 'invalid_metadata'
  return { method: method.toUpperCase(), uri, host, proto }
}

function refuse(res: ServerResponse, status: number, error: string, message?: string): void {
  res.statusCode = status
  res.setHeader('content-type', 'application/json')
  res.setHeader('cache-control', 'no-store')
  res.end(JSON.stringify(message === undefined ? { error } : { error, message }))
}

/** The original request as the authenticator reads it: its method and URI, the peer's headers. */
function originalRequest(req: IncomingMessage, method: string, url: string): RequestLike {
  const headers = toRequestLike(req, url)
  return { method, url, header: (name) => headers.header(name) }
}

function withoutLocation(parts: ResponseParts): Record<string, string | readonly string[]> {
  const headers: Record<string, string | readonly string[]> = {}
  for (const [name, value] of Object.entries(parts.headers)) {
    if (name.toLowerCase() !== 'location') headers[name] = value
  }
  return headers
}

/** `<prefix>/auth`: whether the front server may let the original request through. */
export async function forwardAuth(
  setup: ForwardAuthSetup,
  req: IncomingMessage,
  res: ServerResponse,
  search: string,
): Promise<void> {
  // The check never reads a body; one that was sent anyway closes the connection.
  if (req.headers['content-length'] !== undefined || req.headers['transfer-encoding']) {
    res.setHeader('connection', 'close')
  }
  if (!setup.trusted.trusts(req.socket.remoteAddress)) {
    refuse(res, 400, 'untrusted_peer', PROBLEM_MESSAGES.untrusted_peer)
    return
  }
  const original = readOriginal(req)
  if (typeof original === 'string') {
    refuse(res, 400, original, PROBLEM_MESSAGES[original])
    return
  }
  // nginx sends `$request_uri`: the path as received, query included. Rules see the path only.
  const target = canonicalTarget(original.uri)
  if (typeof target === 'string') {
    refuse(res, 400, 'invalid_request', 'The URI to check is ambiguous and cannot be served.')
    return
  }
  if (REFUSED_METHODS.has(original.method)) {
    refuse(res, 405, 'method_not_allowed')
    return
  }
  const allow = (pairs: readonly [string, string][]) => {
    res.statusCode = 200
    res.setHeader('cache-control', 'no-store')
    // Every configured header is in the answer, empty when there is no value: a front server
    // that copies a header only when the answer has it (Caddy 2.6 sends its placeholder text
    // instead) then still replaces whatever the client sent.
    for (const name of setup.headerNames) res.setHeader(name.toLowerCase(), '')
    for (const [name, value] of pairs) res.setHeader(name, value)
    res.end()
  }
  // The proxy's own endpoints are public by nature: the sign-in must be reachable.
  const decision = setup.rules.decide(target.path)
  if (decision.public || isUnderPrefix(target.path, setup.prefix)) {
    allow([])
    return
  }
  const request = originalRequest(req, original.method, `${target.path}${target.search}`)
  let identity: Identity
  try {
    identity = await setup.auth.authenticate(request)
    requireAccess(identity, decision)
  } catch (error) {
    const parts = explainRefusal(error, setup.auth.reject(error, request))
    if (parts.status !== 302) {
      // Never a pass, never a redirect that a front server could read as one.
      sendParts(res, parts.status >= 400 ? parts : { ...parts, status: 500 })
      return
    }
    const here =
      original.host === undefined
        ? `${target.encodedPath}${target.search}`
        : `${original.proto ?? new URL(setup.publicUrl).protocol.slice(0, -1)}://${original.host}${target.encodedPath}${target.search}`
    const login = `${setup.publicUrl}${setup.prefix}/login?rd=${encodeURIComponent(here)}`
    const redirect = new URLSearchParams(search).get('redirect') === 'true'
    sendParts(res, {
      status: redirect ? 302 : 401,
      headers: {
        ...withoutLocation(parts),
        ...(redirect ? { location: login } : { [LOGIN_HEADER.toLowerCase()]: login }),
        'content-type': 'application/json',
        'cache-control': 'no-store',
      },
      body: redirect ? '' : JSON.stringify({ error: 'session_missing', login_url: login }),
    })
    return
  }
  allow(await setup.identityHeaders(identity))
}

/**
 * The query of a `<prefix>/login` request with `rd` (or the `X-Auth-Request-Redirect` header
 * oauth2-proxy set-ups send) turned into the sign-in flow's `returnTo`; other queries unchanged.
 */
export function loginSearch(policy: RedirectPolicy, req: IncomingMessage, search: string): string {
  const params = new URLSearchParams(search)
  const rd = params.getAll('rd')
  const header = valuesOf(req, ['x-auth-request-redirect'])
  if (rd.length === 0 && header.length === 0) return search
  const value =
    rd.length > 0
      ? rd.length === 1
        ? rd[0]
        : undefined
      : header.length === 1
        ? header[0]
        : undefined
  params.delete('rd')
  params.delete('returnTo')
  params.set('returnTo', policy.returnTo(value))
  return `?${params.toString()}`
}

/** `<prefix>/continue?rd=`: after sign-in, on to an allowed page of another origin, else `/`. */
export function continueTo(
  policy: RedirectPolicy,
  publicUrl: string,
  res: ServerResponse,
  search: string,
): void {
  const values = new URLSearchParams(search).getAll('rd')
  const target = values.length === 1 ? policy.target(values[0]) : undefined
  res.statusCode = 302
  res.setHeader('cache-control', 'no-store')
  res.setHeader('location', target?.href ?? `${publicUrl}/`)
  res.end()
}
