/**
 * A real glewlwyd (Debian's `glewlwyd` package) for end-to-end tests: its own config file and
 * SQLite database in a temporary folder, a free loopback port, configured through its admin API
 * with an OpenID Connect plugin instance, a user with roles, and clients registered by the test.
 * A browser is played by `fetch`: glewlwyd's login page is a script that posts to the same API.
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { CookieJar } from '@ssokit/idp'

import { exited, freePort, tempDir, WATCHDOG } from './redis.js'

const BINARY = '/usr/bin/glewlwyd'
const SQLITE = '/usr/bin/sqlite3'
/** The schema and first admin (admin / password) that Debian's package ships. */
const INIT_SQL = '/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3'
const PLUGIN = 'oidc'

export const GLEWLWYD_USER = { username: 'alice', password: 'alice-password-1' }
export const GLEWLWYD_SCOPES = 'openid profile email'

export interface GlewlwydClient {
  readonly client_id: string
  readonly client_secret?: string
  readonly redirect_uri: readonly string[]
  readonly post_logout_redirect_uris?: readonly string[]
  readonly backchannel_logout_uri?: string
  /** Default `['client_secret_basic', 'client_secret_post']` with a secret. */
  readonly token_endpoint_auth_method?: readonly string[]
}

export interface RunningGlewlwyd {
  /** `http://127.0.0.1:<port>/api/oidc`, the plugin's issuer. */
  readonly issuer: string
  /** `http://127.0.0.1:<port>/api`. */
  readonly api: string
  registerClient(client: GlewlwydClient): Promise<void>
  close(): Promise<void>
}

/** Whether glewlwyd and sqlite3 are installed (scripts/install-system-deps.sh). */
export function requireGlewlwyd(): void {
  for (const [binary, pkg] of [
    [BINARY, 'glewlwyd'],
    [SQLITE, 'sqlite3'],
  ] as const) {
    try {
      accessSync(binary, constants.X_OK)
    } catch {
      throw new Error(
        `${binary} is missing: apt-get install ${pkg} (scripts/install-system-deps.sh)`,
      )
    }
  }
}

function config(port: number, db: string): string {
  return `port=${port}
bind_address="127.0.0.1"
external_url="http://127.0.0.1:${port}"
login_url="login.html"
api_prefix="api"
allow_origin="*"
log_mode="console"
log_level="INFO"
cookie_secure=0
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
allow_multiple_user_per_session=true
login_api_enabled=true
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="/usr/lib/glewlwyd/user"
client_module_path="/usr/lib/glewlwyd/client"
user_auth_scheme_module_path="/usr/lib/glewlwyd/scheme"
plugin_module_path="/usr/lib/glewlwyd/plugin"
hash_algorithm="SHA512"
database = { type = "sqlite3"; path = "${db}"; };
`
}

/** The OpenID Connect plugin: RS256 keys, code flow with PKCE, refresh, resource indicators, logout. */
function pluginParameters(issuer: string, resource: string): Record<string, unknown> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  return {
    iss: issuer,
    'jwt-type': 'rsa',
    'jwt-key-size': '256',
    key: privateKey.export({ format: 'pem', type: 'pkcs8' }),
    cert: publicKey.export({ format: 'pem', type: 'spki' }),
    'access-token-duration': 300,
    'refresh-token-duration': 3600,
    'code-duration': 600,
    'refresh-token-rolling': true,
    'allow-non-oidc': false,
    'auth-type-code-enabled': true,
    'auth-type-token-enabled': false,
    'auth-type-id-token-enabled': true,
    'auth-type-password-enabled': false,
    'auth-type-client-enabled': false,
    'auth-type-refresh-enabled': true,
    'auth-type-device-enabled': false,
    'subject-type': 'public',
    scope: [],
    'pkce-allowed': true,
    'pkce-method-plain-allowed': false,
    'jwks-show': true,
    'name-claim': 'mandatory',
    'email-claim': 'mandatory',
    // The user's `roles` property: a comma-separated claim in access tokens, a list in ID tokens.
    'additional-parameters': [{ 'user-parameter': 'roles', 'token-parameter': 'roles' }],
    claims: [
      {
        name: 'roles',
        'user-property': 'roles',
        type: 'string',
        mandatory: true,
        'on-demand': false,
        scope: [],
      },
    ],
    'resource-allowed': true,
    'resource-scope': { openid: [resource] },
    'resource-scope-and-client-property': false,
    'session-management-allowed': true,
    'session-cookie-name': 'GLEWLWYD2_OIDC_SID',
    'session-cookie-expiration': 2419200,
    'back-channel-logout-allowed': true,
  }
}

/** One HTTP client with the admin's (or a user's) cookies. */
class Client {
  readonly cookies = new CookieJar()
  constructor(readonly api: string) {}

  async call(method: string, path: string, body?: unknown): Promise<Response> {
    const url = path.startsWith('http') ? path : `${this.api}${path}`
    const headers = new Headers({ cookie: this.cookies.header(url) })
    if (body !== undefined) headers.set('content-type', 'application/json')
    const response = await fetch(url, {
      method,
      headers,
      redirect: 'manual',
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    })
    this.cookies.store(response)
    return response
  }

  async ok(method: string, path: string, body?: unknown): Promise<void> {
    const response = await this.call(method, path, body)
    const text = await response.text()
    if (response.status !== 200)
      throw new Error(`glewlwyd ${method} ${path} answered ${response.status}: ${text}`)
  }

  async login(username: string, password: string): Promise<void> {
    await this.ok('POST', '/auth/', { username, password })
  }
}

/** Adds properties to a data-format of a user or client module, then reloads it. */
async function addProperties(
  admin: Client,
  path: string,
  properties: Record<string, Record<string, boolean>>,
): Promise<void> {
  const response = await admin.call('GET', path)
  const module = (await response.json()) as { parameters: { 'data-format': object } }
  Object.assign(module.parameters['data-format'], properties)
  await admin.ok('PUT', path, module)
  await admin.ok('PUT', `${path}/reset`)
}

/**
 * Starts glewlwyd with one OIDC plugin instance whose resource indicator `resource` is allowed
 * with the `openid` scope, and the user `GLEWLWYD_USER` with roles `admin` and `user`.
 */
export async function startGlewlwyd(resource: string): Promise<RunningGlewlwyd> {
  requireGlewlwyd()
  const dir = tempDir('ssokit-glewlwyd-')
  const db = join(dir, 'glewlwyd.db')
  const init = spawnSync(SQLITE, [db], { input: readFileSync(INIT_SQL), encoding: 'utf8' })
  if (init.status !== 0) throw new Error(`sqlite3 could not create the database: ${init.stderr}`)
  const port = await freePort()
  const file = join(dir, 'glewlwyd.conf')
  writeFileSync(file, config(port, db))
  const api = `http://127.0.0.1:${port}/api`
  const issuer = `${api}/${PLUGIN}`

  const child: ChildProcessWithoutNullStreams = spawn(
    '/bin/sh',
    ['-c', WATCHDOG, BINARY, '-c', file],
    { stdio: 'pipe' },
  )
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const stop = async (): Promise<void> => {
    child.stdin.end()
    await exited(child)
  }
  try {
    for (let i = 0; ; i++) {
      if (child.exitCode !== null || i === 100)
        throw new Error(`glewlwyd did not start on port ${port}:\n${output.slice(-2000)}`)
      // The log line proves the answer comes from this server, not one that took the port.
      if (output.includes(`Glewlwyd started on port ${port}`)) break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    const admin = new Client(api)
    await admin.login('admin', 'password')
    await addProperties(admin, '/mod/user/database', {
      roles: {
        multiple: true,
        read: true,
        write: true,
        'profile-read': false,
        'profile-write': false,
      },
    })
    await addProperties(admin, '/mod/client/database', {
      post_logout_redirect_uris: { multiple: true, read: true, write: true },
    })
    for (const name of ['profile', 'email']) {
      await admin.ok('POST', '/scope/', {
        name,
        display_name: name,
        password_required: false,
        scheme: {},
      })
    }
    await admin.ok('POST', '/mod/plugin/', {
      module: 'oidc',
      name: PLUGIN,
      display_name: 'OpenID Connect',
      parameters: pluginParameters(issuer, resource),
    })
    await admin.ok('POST', '/user/', {
      ...GLEWLWYD_USER,
      name: 'Alice Example',
      email: 'alice@example.org',
      scope: [...GLEWLWYD_SCOPES.split(' '), 'g_profile'],
      roles: ['admin', 'user'],
      enabled: true,
    })
    return {
      issuer,
      api,
      async registerClient(client) {
        await admin.login('admin', 'password')
        await admin.ok('POST', '/client/', {
          name: client.client_id,
          confidential: client.client_secret !== undefined,
          authorization_type: ['code', 'refresh_token'],
          scope: GLEWLWYD_SCOPES.split(' '),
          enabled: true,
          ...(client.client_secret === undefined
            ? {}
            : { token_endpoint_auth_method: ['client_secret_basic', 'client_secret_post'] }),
          ...client,
          ...(client.backchannel_logout_uri === undefined
            ? {}
            : { backchannel_logout_session_required: 'true' }),
        })
      },
      close: stop,
    }
  } catch (error) {
    await stop()
    throw error
  }
}

/**
 * A browser at glewlwyd: signs in through the login API, grants the scopes to the client, and
 * continues the authorization request as glewlwyd's login page does (`g_continue`).
 */
export class GlewlwydBrowser {
  readonly #client: Client
  constructor(glewlwyd: RunningGlewlwyd) {
    this.#client = new Client(glewlwyd.api)
  }

  /** Signs in and returns where glewlwyd sends the browser: the application's callback URL. */
  async authorize(authorizeUrl: string | URL, user = GLEWLWYD_USER): Promise<string> {
    const url = new URL(authorizeUrl)
    await this.#client.login(user.username, user.password)
    const clientId = url.searchParams.get('client_id') ?? ''
    await this.#client.ok('PUT', `/auth/grant/${encodeURIComponent(clientId)}`, {
      scope: url.searchParams.get('scope') ?? '',
    })
    url.searchParams.set('g_continue', '')
    const response = await this.#client.call('GET', url.href)
    await response.body?.cancel()
    const location = response.headers.get('location')
    if (response.status !== 302 || location === null)
      throw new Error(`glewlwyd answered the authorization request with ${response.status}`)
    return location
  }

  /** Where glewlwyd sends this browser for `authorizeUrl` without signing in again. */
  async resume(authorizeUrl: string | URL): Promise<string> {
    const url = new URL(authorizeUrl)
    url.searchParams.set('g_continue', '')
    const response = await this.#client.call('GET', url.href)
    await response.body?.cancel()
    return response.headers.get('location') ?? ''
  }

  /**
   * Follows an end-session redirect as glewlwyd's logout page does: ends the provider session
   * (which sends the back-channel logout tokens), signs out of glewlwyd, and returns the
   * post-logout redirect.
   */
  async endSession(endSessionUrl: string | URL): Promise<string> {
    const response = await this.#client.call('GET', new URL(endSessionUrl).href)
    await response.body?.cancel()
    const page = new URL(response.headers.get('location') ?? '', 'http://invalid')
    const sid = page.searchParams.get('sid')
    if (page.searchParams.get('prompt') !== 'end_session' || sid === null)
      throw new Error(`glewlwyd did not ask to end the session: ${page.href}`)
    // What the logout page does: end the OIDC session, then the glewlwyd login session.
    await this.#client.ok('DELETE', `/${PLUGIN}/session/${encodeURIComponent(sid)}`)
    await this.#client.ok('DELETE', '/auth/')
    return page.searchParams.get('callback_url') ?? ''
  }

  /** Ends the provider session `sid` (an ID token's `sid`), as a logout from another application would. */
  async endProviderSession(sid: string): Promise<void> {
    await this.#client.ok('DELETE', `/${PLUGIN}/session/${encodeURIComponent(sid)}`)
  }
}
