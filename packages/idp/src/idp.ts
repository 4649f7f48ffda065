import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type ServerResponse,
} from 'node:http'
import type { AddressInfo } from 'node:net'
import { PassThrough } from 'node:stream'
import type { InteractionDetails, Provider } from 'oidc-provider'
import {
  DEFAULT_IDP_CONFIG,
  loadIdpConfigFile,
  resolveIdpConfig,
  type IdpConfig,
  type ResolvedClient,
  type ResolvedIdpConfig,
  type TokenStyle,
} from './config.js'
import { generateSigningKey, loadOrCreateKeys, saveKeys, type SigningJwk } from './keys.js'
import { createKerberosAcceptor, type KerberosAcceptor } from './kerberos.js'
import { OtpVerifier } from './otp.js'
import { consentPage, errorPage, loginPage, otpPage, PAGE_HEADERS } from './pages.js'
import { createProvider, grantConsent, HINT_MATCHES_HEADER, Realm } from './provider.js'

export type { TokenStyle } from './config.js'

export interface IdpOptions {
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string
  /** Port to listen on; `0` picks a free one. Default `4000`. */
  port?: number
  /** Realm name, overriding the configuration's. Default `dev`. */
  realm?: string
  /** Users and clients: an object, or the path of a YAML/JSON file. Default: the built-in realm. */
  config?: IdpConfig | string
  /**
   * Path of a private JWKS file `{ "keys": [...] }` (first key signs). Created with mode 0600
   * when missing, so tokens stay valid across restarts. Default: a new key in memory.
   */
  keys?: string
  /** Access (and ID) token lifetime in seconds, overriding the configuration's. */
  accessTokenTtl?: number
  /** `keycloak` (header `typ: JWT`, payload `typ: Bearer`) or `rfc9068` (`at+jwt`). */
  tokenStyle?: TokenStyle
  /**
   * The path of the issuer URL. Default `/auth/realms/<realm>`, Keycloak's layout. `''` serves the
   * realm at the bare origin (issuer `http://127.0.0.1:4000`) and `'/'` at the origin with a
   * trailing slash (`http://127.0.0.1:4000/`), the endpoints then at `/protocol/openid-connect/...`:
   * providers publish both forms, and a relying party must compare them exactly.
   */
  issuerPath?: string
  /**
   * Rotate every refresh token on use, also for confidential clients, as RFC 9700 §4.14.2
   * recommends; a rotated-out token used again revokes the whole grant (its family). Default
   * `false`: like Keycloak's default, confidential clients keep their refresh token.
   */
  rotateRefreshTokens?: boolean
  /** Receives one line per request (`GET /path 200 3ms`). Default: no logging. */
  log?: ((line: string) => void) | false
}

export interface IdpRequestRecord {
  readonly method: string
  /** Path without the query string. */
  readonly path: string
  readonly status: number
}

export interface RunningIdp {
  /** `http://<host>:<port>/auth/realms/<realm>` */
  readonly issuer: string
  readonly port: number
  /** Every request served so far, oldest first. */
  readonly requests: readonly IdpRequestRecord[]
  /** How many `Authorization: Negotiate` tokens the Kerberos endpoint has checked. */
  readonly kerberosExchanges: number
  /** Puts a new signing key in front; the old ones stay published (and in the keys file). */
  rotateKeys(): Promise<void>
  /** Stops listening, drops open connections and all state. */
  close(): Promise<void>
}

const MAX_BODY = 64 * 1024
const FORM = 'application/x-www-form-urlencoded'

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

function secretsEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b))
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    const buffer = chunk as Buffer
    size += buffer.length
    if (size > MAX_BODY) throw new Error('request body too large')
    chunks.push(buffer)
  }
  return Buffer.concat(chunks)
}

function isForm(req: IncomingMessage): boolean {
  return (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() === FORM
}

/** A request whose body was already read, handed on to oidc-provider as if unread. */
function replay(req: IncomingMessage, body: Buffer): IncomingMessage {
  const stream = new PassThrough()
  stream.end(body)
  return Object.assign(stream, {
    headers: req.headers,
    rawHeaders: req.rawHeaders,
    method: req.method,
    url: req.url,
    httpVersion: req.httpVersion,
    httpVersionMajor: req.httpVersionMajor,
    httpVersionMinor: req.httpVersionMinor,
    socket: req.socket,
    connection: req.socket,
  }) as unknown as IncomingMessage
}

function send(
  res: ServerResponse,
  status: number,
  body: string,
  headers: OutgoingHttpHeaders = {},
): void {
  res.writeHead(status, { 'content-length': Buffer.byteLength(body), ...headers })
  res.end(body)
}

function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: OutgoingHttpHeaders = {},
): void {
  send(res, status, JSON.stringify(value), {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    ...headers,
  })
}

function kerberosOption(link: string | undefined): { kerberos?: string } {
  return link === undefined ? {} : { kerberos: link }
}

function isJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)
}

async function resolveConfig(options: IdpOptions): Promise<ResolvedIdpConfig> {
  const base =
    typeof options.config === 'string'
      ? await loadIdpConfigFile(options.config)
      : resolveIdpConfig(options.config ?? DEFAULT_IDP_CONFIG, 'config')
  return {
    ...base,
    ...(options.realm === undefined ? {} : resolveIdpConfig({ realm: options.realm }, 'options')),
    ...(options.accessTokenTtl === undefined
      ? {}
      : {
          accessTokenTtl: resolveIdpConfig({ access_token_ttl: options.accessTokenTtl }, 'options')
            .accessTokenTtl,
        }),
    users: base.users,
    clients: base.clients,
  }
}

/**
 * Starts a development OpenID provider shaped like a Keycloak realm (CERN SSO claims).
 * Resolves once it is listening; `close()` frees the port.
 */
export async function startIdp(options: IdpOptions = {}): Promise<RunningIdp> {
  const host = options.host ?? '127.0.0.1'
  const requestedPort = options.port ?? 4000
  // Checked at run time too: JavaScript callers and the CLI pass plain strings.
  const style: string = options.tokenStyle ?? 'keycloak'
  if (style !== 'keycloak' && style !== 'rfc9068') {
    throw new TypeError('tokenStyle must be "keycloak" or "rfc9068"')
  }
  const tokenStyle: TokenStyle = style
  if (!Number.isInteger(requestedPort) || requestedPort < 0 || requestedPort > 65535) {
    throw new TypeError('port must be a whole number from 0 to 65535')
  }
  const config = await resolveConfig(options)
  const keysFile = options.keys ?? config.keys
  const keys: SigningJwk[] =
    keysFile === undefined ? [await generateSigningKey()] : await loadOrCreateKeys(keysFile)
  const log = options.log === false || options.log === undefined ? undefined : options.log
  const internalSecret = randomBytes(16).toString('base64url')
  const issuerPath = options.issuerPath ?? `/auth/realms/${config.realm}`
  if (
    typeof issuerPath !== 'string' ||
    !/^(?:\/(?:[A-Za-z0-9._~-]+\/)*(?:[A-Za-z0-9._~-]+)?)?$/.test(issuerPath)
  ) {
    throw new TypeError('issuerPath must be empty or a path such as /auth/realms/dev')
  }
  // Routes hang below the issuer without its trailing slash.
  const prefix = issuerPath.replace(/\/$/, '')
  const oidcPath = '/protocol/openid-connect'
  const requests: IdpRequestRecord[] = []
  const acceptor: KerberosAcceptor | undefined =
    config.kerberos === undefined ? undefined : await createKerberosAcceptor(config.kerberos)
  const otp = new OtpVerifier()
  let kerberosExchanges = 0

  let realm: Realm | undefined
  let provider: Provider | undefined
  let callback: ((req: IncomingMessage, res: ServerResponse) => void) | undefined

  const server = createServer((req, res) => {
    const started = performance.now()
    const internal = req.headers['x-ssokit-internal'] === internalSecret
    const url = new URL(req.url ?? '/', 'http://idp.invalid')
    if (!internal) {
      res.on('finish', () => {
        requests.push({ method: req.method ?? 'GET', path: url.pathname, status: res.statusCode })
        log?.(
          `${req.method ?? 'GET'} ${url.pathname} ${res.statusCode} ${Math.round(performance.now() - started)}ms`,
        )
      })
    }
    route(req, res, url, internal).catch((error: unknown) => {
      if (!res.headersSent) {
        sendJson(res, 500, { error: 'server_error', error_description: 'internal error' })
      } else res.destroy(error instanceof Error ? error : undefined)
    })
  })

  async function route(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    internal: boolean,
  ): Promise<void> {
    if (!realm || !provider || !callback) {
      sendJson(res, 503, { error: 'temporarily_unavailable' }, { 'retry-after': '1' })
      return
    }
    const path = url.pathname
    if (path !== prefix && !path.startsWith(`${prefix}/`)) {
      sendJson(res, 404, { error: 'not_found', error_description: `realms live under ${prefix}` })
      return
    }
    const sub = path.slice(prefix.length)
    const method = req.method ?? 'GET'

    const login = /^\/login-actions\/authenticate\/([A-Za-z0-9_-]+)(\/kerberos)?$/.exec(sub)
    if (login?.[1] !== undefined && (method === 'GET' || method === 'POST')) {
      await interaction(req, res, login[1], login[2] !== undefined, realm, provider)
      return
    }
    if (sub === `${oidcPath}/userinfo` && (method === 'GET' || method === 'POST')) {
      await userinfo(req, res, realm)
      return
    }
    if (
      (sub === `${oidcPath}/token/introspect` || sub === `${oidcPath}/revoke`) &&
      method === 'POST' &&
      isForm(req)
    ) {
      const body = await readBody(req)
      const form = new URLSearchParams(body.toString('utf8'))
      const token = form.get('token')
      if (token !== null && isJwt(token)) {
        await accessTokenEndpoint(req, res, form, token, realm, sub.endsWith('/revoke'))
        return
      }
      delegate(replay(req, body), res, sub, url.search)
      return
    }
    // Like Keycloak: only an ID token of this browser's session skips the question; a bare
    // `client_id` is something any site can put in a link.
    if (sub === `${oidcPath}/logout` && method === 'GET' && !internal) {
      if (url.searchParams.has('id_token_hint')) {
        await logoutWithoutPrompt(req, res, url)
        return
      }
    }
    if (sub === `${oidcPath}/auth` && method === 'GET') {
      // OIDC honours offline_access only with prompt=consent; Keycloak grants it without, and
      // every client here is first-party (consent is granted without a page), so ask for it.
      const q = url.searchParams
      if ((q.get('scope') ?? '').split(' ').includes('offline_access') && !q.has('prompt')) {
        q.set('prompt', 'consent')
      }
      delegate(req, res, sub, url.search)
      return
    }
    if (sub === '/api-access/token') {
      // CERN's client-credentials endpoint: the token endpoint, with `audience` honoured.
      delegate(req, res, `${oidcPath}/token`, url.search)
      return
    }
    delegate(req, res, sub, url.search)
  }

  function delegate(req: IncomingMessage, res: ServerResponse, sub: string, search: string): void {
    const mutable = req as IncomingMessage & { originalUrl?: string }
    mutable.originalUrl = `${prefix}${sub}${search}`
    mutable.url = `${sub || '/'}${search}`
    callback?.(mutable, res)
  }

  /** Sign-ins that passed the first factor and wait for a one-time code, by interaction uid. */
  const pendingOtp = new Map<string, { username: string; failures: number; since: number }>()

  async function finishLogin(
    req: IncomingMessage,
    res: ServerResponse,
    uid: string,
    username: string,
    action: string,
    provider: Provider,
    realm: Realm,
  ): Promise<void> {
    if (realm.user(username)?.otp_secret !== undefined) {
      const now = Date.now()
      for (const [key, entry] of pendingOtp) {
        if (now - entry.since > 30 * 60_000) pendingOtp.delete(key)
      }
      pendingOtp.set(uid, { username, failures: 0, since: now })
      // A GET of the interaction now shows the one-time code form.
      res.writeHead(303, { location: action, 'cache-control': 'no-store', 'content-length': 0 })
      res.end()
      return
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: username } },
      { mergeWithLastSubmission: false },
    )
  }

  async function otpStep(
    req: IncomingMessage,
    res: ServerResponse,
    uid: string,
    action: string,
    provider: Provider,
    realm: Realm,
  ): Promise<boolean> {
    const pending = pendingOtp.get(uid)
    if (pending === undefined) return false
    const name = realm.config.realm
    if (req.method !== 'POST') {
      send(res, 200, otpPage({ realm: name, action }), PAGE_HEADERS)
      return true
    }
    const form = new URLSearchParams((await readBody(req)).toString('utf8'))
    const code = (form.get('otp') ?? '').replace(/\s/g, '')
    const secret = realm.user(pending.username)?.otp_secret
    if (secret !== undefined && otp.verify(pending.username, secret, code)) {
      pendingOtp.delete(uid)
      await provider.interactionFinished(
        req,
        res,
        { login: { accountId: pending.username } },
        { mergeWithLastSubmission: false },
      )
      return true
    }
    pending.failures += 1
    if (pending.failures >= realm.config.otpMaxAttempts) {
      pendingOtp.delete(uid)
      await provider.interactionFinished(
        req,
        res,
        {
          error: 'access_denied',
          error_description: 'too many invalid one-time codes; sign in again',
        },
        { mergeWithLastSubmission: false },
      )
      return true
    }
    const left = realm.config.otpMaxAttempts - pending.failures
    send(
      res,
      200,
      otpPage({
        realm: name,
        action,
        error: `Invalid authenticator code. ${left} ${left === 1 ? 'try' : 'tries'} left.`,
      }),
      PAGE_HEADERS,
    )
    return true
  }

  /** `WWW-Authenticate: Negotiate` until the request carries a SPNEGO token the keytab accepts. */
  async function kerberosStep(
    req: IncomingMessage,
    res: ServerResponse,
    uid: string,
    action: string,
    clientName: string,
    provider: Provider,
    realm: Realm,
  ): Promise<void> {
    const name = realm.config.realm
    const refuse = (status: number, error: string, headers: OutgoingHttpHeaders = {}) => {
      const body = loginPage({ realm: name, action, client: clientName, error })
      send(res, status, body, { ...PAGE_HEADERS, ...headers })
    }
    if (acceptor === undefined) {
      refuse(404, 'Kerberos sign-in is not offered by this realm.')
      return
    }
    const header = /^Negotiate\s+(\S+)$/i.exec(req.headers.authorization ?? '')
    if (header?.[1] === undefined) {
      // A browser without a ticket shows this page: the password form, with the reason.
      refuse(401, 'Kerberos sign-in needs a ticket (kinit); sign in with your password instead.', {
        'www-authenticate': 'Negotiate',
      })
      return
    }
    kerberosExchanges += 1
    const result = await acceptor.accept(header[1])
    if (!result.ok) {
      log?.(`kerberos: token refused: ${result.reason}`)
      refuse(403, 'The Kerberos ticket was not accepted.')
      return
    }
    const username = acceptor.userFor(result.principal)
    if (username === undefined || realm.user(username) === undefined) {
      refuse(403, `The Kerberos principal ${result.principal} is not a user of this realm.`)
      return
    }
    if (result.reply !== undefined) res.setHeader('www-authenticate', `Negotiate ${result.reply}`)
    await finishLogin(req, res, uid, username, action, provider, realm)
  }

  async function interaction(
    req: IncomingMessage,
    res: ServerResponse,
    uid: string,
    kerberos: boolean,
    realm: Realm,
    provider: Provider,
  ): Promise<void> {
    const name = realm.config.realm
    let details
    try {
      details = await provider.interactionDetails(req, res)
    } catch {
      send(
        res,
        400,
        errorPage(
          name,
          'invalid_request',
          'This sign-in page has expired. Start again from the application.',
        ),
        PAGE_HEADERS,
      )
      return
    }
    if (details.uid !== uid) {
      send(
        res,
        400,
        errorPage(name, 'invalid_request', 'This sign-in page is not current.'),
        PAGE_HEADERS,
      )
      return
    }
    const clientId = typeof details.params.client_id === 'string' ? details.params.client_id : ''
    const clientName = realm.client(clientId)?.name ?? clientId
    const action = `${prefix}/login-actions/authenticate/${uid}`
    const kerberosLink = acceptor === undefined ? undefined : `${action}/kerberos`

    if (details.prompt.name === 'login') {
      if (kerberos) {
        await kerberosStep(req, res, uid, action, clientName, provider, realm)
        return
      }
      if (await otpStep(req, res, uid, action, provider, realm)) return
      if (req.method !== 'POST') {
        send(
          res,
          200,
          loginPage({ realm: name, action, client: clientName, ...kerberosOption(kerberosLink) }),
          PAGE_HEADERS,
        )
        return
      }
      const form = new URLSearchParams((await readBody(req)).toString('utf8'))
      const username = form.get('username')?.trim() ?? ''
      const password = form.get('password') ?? ''
      const user = realm.user(username)
      // Compare even for unknown users so timing does not reveal which usernames exist.
      const ok = secretsEqual(password, user?.password ?? randomBytes(16).toString('hex')) && !!user
      if (!ok) {
        send(
          res,
          200,
          loginPage({
            realm: name,
            action,
            client: clientName,
            username,
            error: 'Invalid username or password.',
            ...kerberosOption(kerberosLink),
          }),
          PAGE_HEADERS,
        )
        return
      }
      await finishLogin(req, res, uid, user.username, action, provider, realm)
      return
    }
    if (details.prompt.name === 'consent' && !kerberos) {
      if (realm.client(clientId)?.consent_required === true) {
        await consentStep(req, res, details, action, clientName, provider, realm)
        return
      }
      await finishConsent(req, res, details, provider)
      return
    }
    send(
      res,
      400,
      errorPage(name, 'invalid_request', 'This sign-in step is not supported.'),
      PAGE_HEADERS,
    )
  }

  /** Scopes each user granted each client on a consent page: `user\nclient` -> scopes. */
  const consents = new Map<string, Set<string>>()

  /**
   * Keycloak's "Consent required": the page, then the user's answer to it. Like Keycloak, the
   * answer is kept for the user, so a later sign-in (another browser too) is not asked again.
   */
  async function consentStep(
    req: IncomingMessage,
    res: ServerResponse,
    details: InteractionDetails,
    action: string,
    clientName: string,
    provider: Provider,
    realm: Realm,
  ): Promise<void> {
    const missing = details.prompt.details.missingOIDCScope
    const scopes = Array.isArray(missing) ? missing.map(String) : []
    const key = `${details.session?.accountId ?? ''}\n${String(details.params.client_id)}`
    const granted = consents.get(key)
    const asked = granted === undefined || !scopes.every((scope) => granted.has(scope))
    if (asked && req.method !== 'POST') {
      send(
        res,
        200,
        consentPage({ realm: realm.config.realm, action, client: clientName, scopes }),
        PAGE_HEADERS,
      )
      return
    }
    const form = asked
      ? new URLSearchParams((await readBody(req)).toString('utf8'))
      : new URLSearchParams({ accept: 'yes' })
    if (!form.has('accept')) {
      await provider.interactionFinished(
        req,
        res,
        { error: 'access_denied', error_description: 'the user did not grant access' },
        { mergeWithLastSubmission: false },
      )
      return
    }
    consents.set(key, new Set([...(granted ?? []), ...scopes]))
    await finishConsent(req, res, details, provider)
  }

  /** Grants what the client asked for and goes on with the sign-in. */
  async function finishConsent(
    req: IncomingMessage,
    res: ServerResponse,
    details: InteractionDetails,
    provider: Provider,
  ): Promise<void> {
    const grantId = await grantConsent(provider, details)
    await provider.interactionFinished(
      req,
      res,
      { consent: details.grantId === undefined ? { grantId } : {} },
      { mergeWithLastSubmission: true },
    )
  }

  async function userinfo(req: IncomingMessage, res: ServerResponse, realm: Realm): Promise<void> {
    const header = req.headers.authorization ?? ''
    const match = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/i.exec(header)
    const claims = match?.[1] === undefined ? undefined : await realm.verifyAccessToken(match[1])
    if (!claims) {
      sendJson(
        res,
        401,
        { error: 'invalid_token', error_description: 'the access token is missing or invalid' },
        { 'www-authenticate': `Bearer realm="${realm.config.realm}", error="invalid_token"` },
      )
      return
    }
    const scopes = new Set(typeof claims.scope === 'string' ? claims.scope.split(' ') : [])
    const out: Record<string, unknown> = { sub: claims.sub }
    const user = typeof claims.sub === 'string' ? realm.user(claims.sub) : undefined
    if (user) {
      const pick = (names: readonly string[]) => {
        for (const n of names) if (claims[n] !== undefined) out[n] = claims[n]
      }
      pick(['preferred_username', 'cern_upn'])
      if (scopes.has('profile')) pick(['name', 'given_name', 'family_name', 'cern_person_id'])
      if (scopes.has('email')) pick(['email', 'email_verified'])
    }
    sendJson(res, 200, out)
  }

  function authenticateClient(
    req: IncomingMessage,
    form: URLSearchParams,
    realm: Realm,
  ): ResolvedClient | undefined {
    let id = form.get('client_id') ?? undefined
    let secret = form.get('client_secret') ?? undefined
    const basic = /^Basic ([A-Za-z0-9+/]+=*)$/i.exec(req.headers.authorization ?? '')
    if (basic?.[1] !== undefined) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon === -1 || secret !== undefined) return undefined
      try {
        id = decodeURIComponent(decoded.slice(0, colon).replace(/\+/g, '%20'))
        secret = decodeURIComponent(decoded.slice(colon + 1).replace(/\+/g, '%20'))
      } catch {
        return undefined
      }
    }
    const client = id === undefined ? undefined : realm.client(id)
    if (!client) return undefined
    if (client.token_endpoint_auth_method === 'none')
      return secret === undefined ? client : undefined
    // A client that signs assertions (private_key_jwt) has no secret to compare here.
    if (client.secret === undefined) return undefined
    return secret !== undefined && secretsEqual(secret, client.secret) ? client : undefined
  }

  /** Introspection and revocation of JWT access tokens, which oidc-provider leaves out. */
  async function accessTokenEndpoint(
    req: IncomingMessage,
    res: ServerResponse,
    form: URLSearchParams,
    token: string,
    realm: Realm,
    revoke: boolean,
  ): Promise<void> {
    const client = authenticateClient(req, form, realm)
    if (!client) {
      sendJson(res, 401, {
        error: 'invalid_client',
        error_description: 'client authentication failed',
      })
      return
    }
    const claims = await realm.verifyAccessToken(token)
    const own =
      claims !== undefined &&
      (claims.azp === client.client_id || claims.client_id === client.client_id)
    if (revoke) {
      if (claims && typeof claims.jti === 'string') {
        if (!own) {
          sendJson(res, 400, {
            error: 'invalid_request',
            error_description: 'client is not authorized to revoke the presented token',
          })
          return
        }
        realm.revoked.add(claims.jti)
      }
      send(res, 200, '', { 'cache-control': 'no-store' })
      return
    }
    if (!claims || (client.secret === undefined && !own)) {
      sendJson(res, 200, { active: false })
      return
    }
    sendJson(res, 200, {
      ...claims,
      active: true,
      token_type: 'Bearer',
      ...(typeof claims.preferred_username === 'string'
        ? { username: claims.preferred_username }
        : {}),
    })
  }

  /**
   * A logout carrying an ID token of the browser's own session ends it at once instead of
   * asking; oidc-provider's own confirmation form is submitted here, so its logout, grant
   * revocation and back-channel calls all run. Any other hint gets the confirmation page.
   */
  async function logoutWithoutPrompt(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
  ): Promise<void> {
    const base = `http://${connectHost}:${port}`
    const jar = new Map<string, string>()
    for (const part of (req.headers.cookie ?? '').split(';')) {
      const eq = part.indexOf('=')
      if (eq > 0) jar.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim())
    }
    const cookieHeader = () => [...jar].map(([k, v]) => `${k}=${v}`).join('; ')
    const setCookies: string[] = []
    const keep = (response: Response) => {
      for (const c of response.headers.getSetCookie()) {
        setCookies.push(c)
        const [pair = ''] = c.split(';')
        const eq = pair.indexOf('=')
        if (eq > 0) jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim())
      }
    }
    const headers = { 'x-ssokit-internal': internalSecret, host: req.headers.host ?? '' }
    const first = await fetch(`${base}${url.pathname}${url.search}`, {
      headers: { ...headers, cookie: cookieHeader() },
      redirect: 'manual',
    })
    keep(first)
    const html = await first.text()
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1]
    const ownSession = first.headers.get(HINT_MATCHES_HEADER) === 'session'
    if (first.status !== 200 || xsrf === undefined || !ownSession) {
      const pageHeaders: OutgoingHttpHeaders = {}
      for (const name of Object.keys(PAGE_HEADERS)) {
        const value = first.headers.get(name)
        if (value !== null) pageHeaders[name] = value
      }
      send(res, first.status, html, {
        'content-type': 'text/html; charset=utf-8',
        ...pageHeaders,
        'set-cookie': setCookies,
        'cache-control': 'no-store',
      })
      return
    }
    const second = await fetch(`${base}${prefix}${oidcPath}/logout/confirm`, {
      method: 'POST',
      headers: { ...headers, cookie: cookieHeader(), 'content-type': FORM },
      body: new URLSearchParams({ xsrf, logout: 'yes' }),
      redirect: 'manual',
    })
    keep(second)
    const location = second.headers.get('location')
    const body = await second.text()
    send(res, second.status, body, {
      'set-cookie': setCookies,
      'cache-control': 'no-store',
      ...(location === null ? {} : { location }),
      ...(second.headers.get('content-type') === null
        ? {}
        : { 'content-type': second.headers.get('content-type') ?? '' }),
    })
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(requestedPort, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  const wildcard = host === '0.0.0.0' || host === '::' || host === ''
  const connectHost = wildcard ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  const issuer = `http://${connectHost}:${port}${issuerPath}`

  const closeServer = () =>
    new Promise<void>((resolve) => {
      server.close(() => {
        resolve()
      })
      server.closeAllConnections()
    })

  try {
    realm = new Realm(config, issuer, prefix, keys, tokenStyle)
    realm.rotateRefreshTokens = options.rotateRefreshTokens === true
    provider = await createProvider(realm)
    realm.provider = provider
    callback = provider.callback()
  } catch (error) {
    await closeServer()
    throw error
  }

  const live = realm
  let closed = false
  return {
    issuer,
    port,
    requests,
    get kerberosExchanges() {
      return kerberosExchanges
    },
    async rotateKeys() {
      if (closed) throw new Error('the idp is closed')
      const next = [await generateSigningKey(), ...live.keys]
      if (keysFile !== undefined) await saveKeys(keysFile, next)
      live.setKeys(next)
      const rebuilt = await createProvider(live)
      live.provider = rebuilt
      provider = rebuilt
      callback = rebuilt.callback()
    },
    async close() {
      if (closed) return
      closed = true
      await closeServer()
      live.reset()
    },
  }
}
