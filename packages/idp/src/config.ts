import { readFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'

/** How access tokens look: Keycloak's (`typ: JWT`, type "Bearer") or RFC 9068's (`at+jwt`). */
export type TokenStyle = 'keycloak' | 'rfc9068'

/** A grant a client may use, by its short name. */
export type IdpGrantType =
  'authorization_code' | 'refresh_token' | 'client_credentials' | 'device_code' | 'token_exchange'

export const GRANT_TYPE_URNS: Readonly<Record<IdpGrantType, string>> = {
  authorization_code: 'authorization_code',
  refresh_token: 'refresh_token',
  client_credentials: 'client_credentials',
  device_code: 'urn:ietf:params:oauth:grant-type:device_code',
  token_exchange: 'urn:ietf:params:oauth:grant-type:token-exchange',
}

/** How a client authenticates at the token endpoint (OpenID Connect Core §9). */
export type IdpClientAuthMethod =
  'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none'

export const CLIENT_AUTH_METHODS: readonly IdpClientAuthMethod[] = [
  'client_secret_basic',
  'client_secret_post',
  'private_key_jwt',
  'none',
]

/** A public key of a client's JWK Set, for `private_key_jwt`. */
export type IdpClientJwk = Readonly<Record<string, unknown>> & { readonly kty: string }

/** A person who can log in. Keys are spelled like the claims they feed. */
export interface IdpUserConfig {
  username: string
  password: string
  name?: string
  given_name?: string
  family_name?: string
  email?: string
  /** Roles per client id; the key `"*"` gives roles in every client. Feeds `cern_roles`. */
  roles?: Readonly<Record<string, readonly string[]>>
  /** Feeds `realm_access.roles`. */
  realm_roles?: readonly string[]
  cern_person_id?: number
  /**
   * A TOTP secret (RFC 6238, base32, SHA-1, 6 digits, 30 s), as an authenticator app holds it.
   * A user with one is asked for a one-time code after the password or Kerberos.
   */
  otp_secret?: string
}

/** Kerberos (SPNEGO) sign-in, the way Keycloak's Kerberos identity provider offers it. */
export interface IdpKerberosConfig {
  /** The keytab with the service key (`HTTP/<host>@REALM`); relative to the config file. */
  keytab: string
  /** The Kerberos realm whose principals `name@REALM` sign in as the user `name`. */
  realm: string
  /** The service principal to accept, `HTTP@host`. Default: any key in the keytab. */
  service?: string
  /** Principals signing in as another user name than their own: principal -> username. */
  principals?: Readonly<Record<string, string>>
}

/** An application registered in the realm. */
export interface IdpClientConfig {
  client_id: string
  /** The client secret; a client without one (or `jwks`) is public (PKCE, no authentication). */
  secret?: string
  /**
   * How the client authenticates at the token endpoint. Default `client_secret_basic` with a
   * secret (`client_secret_post` is accepted too), `private_key_jwt` with `jwks`, else `none`.
   */
  token_endpoint_auth_method?: IdpClientAuthMethod
  /** The client's public keys, for `private_key_jwt`: `{ keys: [ ...public JWKs ] }`. */
  jwks?: { readonly keys: readonly IdpClientJwk[] }
  name?: string
  grant_types?: readonly IdpGrantType[]
  /**
   * Allowed redirect URIs. Exact URIs, or patterns where the port may be `*` (any port) and the
   * path may end in `*` (any suffix, any query): `http://localhost:*\/*`.
   */
  redirect_uris?: readonly string[]
  /** Allowed post-logout redirect URIs, with the same pattern rules. */
  post_logout_redirect_uris?: readonly string[]
  /** Where logout tokens are POSTed when a user's session ends (OIDC back-channel logout). */
  backchannel_logout_uri?: string
  /** Roles of this client's service account in other clients, by client id (`"*"` = every client). */
  roles?: Readonly<Record<string, readonly string[]>>
  /**
   * Other clients this client may ask tokens for with a resource indicator (RFC 8707
   * `resource=urn:ssokit:client:<client id>`). Default none: only its own audience.
   */
  resource_audiences?: readonly string[]
  /**
   * Ask each user once, at their first sign-in to this client, to grant it access (Keycloak's
   * "Consent required": the page `#kc-oauth` with the buttons `accept` and `cancel`). Default
   * `false`: the client is first-party and gets access without a page.
   */
  consent_required?: boolean
}

/** The realm: users, clients and token lifetimes (seconds). */
export interface IdpConfig {
  realm?: string
  users?: readonly IdpUserConfig[]
  clients?: readonly IdpClientConfig[]
  access_token_ttl?: number
  refresh_token_ttl?: number
  offline_token_ttl?: number
  session_ttl?: number
  /** How long a device login's user code may wait for approval (default 600 s, as Keycloak). */
  device_code_ttl?: number
  /**
   * The client authentication methods the realm accepts and lists in its discovery document.
   * Default: all of `client_secret_basic`, `client_secret_post`, `private_key_jwt` and `none`.
   */
  token_endpoint_auth_methods?: readonly IdpClientAuthMethod[]
  /** Path of the signing keys file (relative to the config file when read from one). */
  keys?: string
  /** Kerberos sign-in; off unless given. */
  kerberos?: IdpKerberosConfig
  /** Wrong one-time codes allowed per sign-in before it is refused (default 3). */
  otp_max_attempts?: number
}

export interface ResolvedKerberos {
  readonly keytab: string
  readonly realm: string
  readonly service: string
  readonly principals: Readonly<Record<string, string>>
}

export interface ResolvedUser extends IdpUserConfig {
  roles: Readonly<Record<string, readonly string[]>>
  realm_roles: readonly string[]
}

export interface ResolvedClient extends IdpClientConfig {
  token_endpoint_auth_method: IdpClientAuthMethod
  grant_types: readonly IdpGrantType[]
  redirect_uris: readonly string[]
  post_logout_redirect_uris: readonly string[]
  roles: Readonly<Record<string, readonly string[]>>
  resource_audiences: readonly string[]
}

/** A fully validated configuration with every default applied. */
export interface ResolvedIdpConfig {
  readonly realm: string
  readonly users: readonly ResolvedUser[]
  readonly clients: readonly ResolvedClient[]
  readonly accessTokenTtl: number
  readonly refreshTokenTtl: number
  readonly offlineTokenTtl: number
  readonly sessionTtl: number
  readonly deviceCodeTtl: number
  readonly tokenEndpointAuthMethods: readonly IdpClientAuthMethod[]
  readonly keys?: string
  readonly kerberos?: ResolvedKerberos
  readonly otpMaxAttempts: number
}

const LOOPBACK_ANY_PORT = ['http://localhost:*/*', 'http://127.0.0.1:*/*']

/** The realm served when no configuration is given (documented in docs/idp.md). */
export const DEFAULT_IDP_CONFIG: IdpConfig = Object.freeze<IdpConfig>({
  realm: 'dev',
  users: [
    {
      username: 'alice',
      password: 'alice',
      name: 'Alice Example',
      given_name: 'Alice',
      family_name: 'Example',
      email: 'alice@example.org',
      roles: { '*': ['admin', 'user'] },
      realm_roles: ['staff'],
      cern_person_id: 100001,
    },
    {
      username: 'bob',
      password: 'bob',
      name: 'Bob Example',
      given_name: 'Bob',
      family_name: 'Example',
      email: 'bob@example.org',
      cern_person_id: 100002,
    },
  ],
  clients: [
    {
      client_id: 'demo-app',
      secret: 'demo-app-secret',
      name: 'Demo application',
      grant_types: ['authorization_code', 'refresh_token', 'client_credentials', 'token_exchange'],
      redirect_uris: LOOPBACK_ANY_PORT,
      post_logout_redirect_uris: LOOPBACK_ANY_PORT,
      roles: { 'demo-api': ['reader'] },
    },
    {
      client_id: 'demo-api',
      secret: 'demo-api-secret',
      name: 'Demo API',
      grant_types: ['client_credentials'],
    },
    {
      client_id: 'demo-cli',
      name: 'Demo command line',
      grant_types: ['device_code', 'authorization_code', 'refresh_token'],
      redirect_uris: LOOPBACK_ANY_PORT,
      post_logout_redirect_uris: LOOPBACK_ANY_PORT,
    },
  ],
})

/** A configuration that cannot be used, naming where (file and key path) and what is wrong. */
export class IdpConfigError extends Error {
  override readonly name = 'IdpConfigError'
  readonly code = 'ERR_INVALID_ARG_VALUE'
  constructor(
    readonly source: string,
    readonly path: string,
    readonly problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${source}: ${path ? `${path}: ` : ''}${problem}`, options)
  }
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/
/** Client ids may also hold `~`: RFC 3986's unreserved characters, which some providers allow. */
const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._~-]*$/

class Reader {
  constructor(readonly source: string) {}

  fail(path: string, problem: string): never {
    throw new IdpConfigError(this.source, path, problem)
  }

  object(value: unknown, path: string, keys: readonly string[]): Record<string, unknown> {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(path, 'must be an object')
    }
    const record = value as Record<string, unknown>
    for (const key of Object.keys(record)) {
      if (!keys.includes(key)) {
        this.fail(join(path, key), `unknown key (expected one of: ${keys.join(', ')})`)
      }
    }
    return record
  }

  string(value: unknown, path: string): string {
    if (typeof value !== 'string' || value.length === 0)
      this.fail(path, 'must be a non-empty string')
    return value
  }

  optionalString(value: unknown, path: string): string | undefined {
    return value === undefined ? undefined : this.string(value, path)
  }

  name(value: unknown, path: string): string {
    const text = this.string(value, path)
    if (!NAME.test(text)) this.fail(path, 'may contain only letters, digits, ".", "_" and "-"')
    return text
  }

  clientId(value: unknown, path: string): string {
    const text = this.string(value, path)
    if (!CLIENT_ID.test(text))
      this.fail(path, 'may contain only letters, digits, ".", "_", "~" and "-"')
    return text
  }

  ttl(value: unknown, path: string, fallback: number): number {
    if (value === undefined) return fallback
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
      this.fail(path, 'must be a positive whole number of seconds')
    }
    return value
  }

  count(value: unknown, path: string, fallback: number): number {
    if (value === undefined) return fallback
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 100) {
      this.fail(path, 'must be a whole number from 1 to 100')
    }
    return value
  }

  flag(value: unknown, path: string): boolean | undefined {
    if (value !== undefined && typeof value !== 'boolean') this.fail(path, 'must be true or false')
    return value
  }

  array(value: unknown, path: string): unknown[] {
    if (!Array.isArray(value)) this.fail(path, 'must be a list')
    return value as unknown[]
  }

  strings(value: unknown, path: string): string[] {
    if (value === undefined) return []
    return this.array(value, path).map((item, i) => this.string(item, `${path}[${i}]`))
  }

  roleMap(value: unknown, path: string): Record<string, readonly string[]> {
    if (value === undefined) return {}
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.fail(path, 'must map client ids (or "*") to lists of roles')
    }
    const out: Record<string, readonly string[]> = {}
    for (const [client, roles] of Object.entries(value)) {
      out[client] = this.strings(roles, join(path, client))
    }
    return out
  }
}

function join(path: string, key: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return `${path}[${JSON.stringify(key)}]`
  return path ? `${path}.${key}` : key
}

const TOP_KEYS = [
  'realm',
  'users',
  'clients',
  'access_token_ttl',
  'refresh_token_ttl',
  'offline_token_ttl',
  'session_ttl',
  'device_code_ttl',
  'token_endpoint_auth_methods',
  'keys',
  'kerberos',
  'otp_max_attempts',
]
const USER_KEYS = [
  'username',
  'password',
  'name',
  'given_name',
  'family_name',
  'email',
  'roles',
  'realm_roles',
  'cern_person_id',
  'otp_secret',
]
const KERBEROS_KEYS = ['keytab', 'realm', 'service', 'principals']
const CLIENT_KEYS = [
  'client_id',
  'secret',
  'token_endpoint_auth_method',
  'jwks',
  'name',
  'grant_types',
  'redirect_uris',
  'post_logout_redirect_uris',
  'backchannel_logout_uri',
  'roles',
  'resource_audiences',
  'consent_required',
]

/**
 * Validates a configuration object and applies defaults. `source` names where it came from in
 * error messages (a file path, or `"config"` for an object).
 */
export function resolveIdpConfig(input: unknown, source = 'config'): ResolvedIdpConfig {
  const r = new Reader(source)
  const top = r.object(input, '', TOP_KEYS)
  const realm = top.realm === undefined ? 'dev' : r.name(top.realm, 'realm')

  const users = r.array(top.users ?? [], 'users').map((raw, i) => {
    const path = `users[${i}]`
    const u = r.object(raw, path, USER_KEYS)
    const user: ResolvedUser = {
      username: r.name(u.username, `${path}.username`),
      password: r.string(u.password, `${path}.password`),
      roles: r.roleMap(u.roles, `${path}.roles`),
      realm_roles: r.strings(u.realm_roles, `${path}.realm_roles`),
    }
    for (const key of ['name', 'given_name', 'family_name', 'email'] as const) {
      const value = r.optionalString(u[key], `${path}.${key}`)
      if (value !== undefined) user[key] = value
    }
    if (user.email !== undefined && !/^[^@\s]+@[^@\s]+$/.test(user.email)) {
      r.fail(`${path}.email`, 'must be an e-mail address')
    }
    const personId = u.cern_person_id
    if (typeof personId === 'number' && Number.isInteger(personId)) user.cern_person_id = personId
    else if (personId !== undefined) r.fail(`${path}.cern_person_id`, 'must be a whole number')
    const otpSecret = r.optionalString(u.otp_secret, `${path}.otp_secret`)
    if (otpSecret !== undefined) {
      const compact = otpSecret.replace(/[\s=]/g, '').toUpperCase()
      if (!/^[A-Z2-7]{16,}$/.test(compact)) {
        r.fail(`${path}.otp_secret`, 'must be a base32 TOTP secret of at least 16 characters')
      }
      user.otp_secret = compact
    }
    if (user.username.startsWith('service-account-')) {
      r.fail(`${path}.username`, 'must not start with "service-account-" (reserved for clients)')
    }
    return user
  })
  const seenUsers = new Set<string>()
  users.forEach((user, i) => {
    if (seenUsers.has(user.username)) r.fail(`users[${i}].username`, 'is a duplicate')
    seenUsers.add(user.username)
  })

  const clients = r.array(top.clients ?? [], 'clients').map((raw, i) => {
    const path = `clients[${i}]`
    const c = r.object(raw, path, CLIENT_KEYS)
    const secret = r.optionalString(c.secret, `${path}.secret`)
    const jwks = clientJwks(r, c.jwks, `${path}.jwks`)
    const method = authMethod(r, c.token_endpoint_auth_method, secret, jwks, path)
    const grants = (
      c.grant_types === undefined
        ? method === 'none'
          ? ['authorization_code', 'refresh_token', 'device_code']
          : ['authorization_code', 'refresh_token', 'client_credentials']
        : r.strings(c.grant_types, `${path}.grant_types`)
    ).map((grant, j) => {
      if (!(grant in GRANT_TYPE_URNS)) {
        r.fail(
          `${path}.grant_types[${j}]`,
          `unknown grant type "${grant}" (expected one of: ${Object.keys(GRANT_TYPE_URNS).join(', ')})`,
        )
      }
      return grant as IdpGrantType
    })
    if (method === 'none') {
      for (const confidentialOnly of ['client_credentials', 'token_exchange'] as const) {
        if (grants.includes(confidentialOnly)) {
          r.fail(`${path}.grant_types`, `${confidentialOnly} needs a client secret or keys`)
        }
      }
    }
    const redirects = r.strings(c.redirect_uris, `${path}.redirect_uris`)
    redirects.forEach((uri, j) => {
      checkPattern(r, uri, `${path}.redirect_uris[${j}]`)
    })
    if (grants.includes('authorization_code') && redirects.length === 0) {
      r.fail(`${path}.redirect_uris`, 'is required for the authorization_code grant')
    }
    const postLogout = r.strings(c.post_logout_redirect_uris, `${path}.post_logout_redirect_uris`)
    postLogout.forEach((uri, j) => {
      checkPattern(r, uri, `${path}.post_logout_redirect_uris[${j}]`)
    })
    const client: ResolvedClient = {
      client_id: r.clientId(c.client_id, `${path}.client_id`),
      token_endpoint_auth_method: method,
      grant_types: grants,
      redirect_uris: redirects,
      post_logout_redirect_uris: postLogout,
      roles: r.roleMap(c.roles, `${path}.roles`),
      resource_audiences: r.strings(c.resource_audiences, `${path}.resource_audiences`),
    }
    if (secret !== undefined) client.secret = secret
    if (jwks !== undefined) client.jwks = jwks
    const name = r.optionalString(c.name, `${path}.name`)
    if (name !== undefined) client.name = name
    if (r.flag(c.consent_required, `${path}.consent_required`) === true) {
      client.consent_required = true
    }
    const backchannel = r.optionalString(c.backchannel_logout_uri, `${path}.backchannel_logout_uri`)
    if (backchannel !== undefined) {
      if (!URL.canParse(backchannel) || !/^https?:$/.test(new URL(backchannel).protocol)) {
        r.fail(`${path}.backchannel_logout_uri`, 'must be an http(s) URL')
      }
      client.backchannel_logout_uri = backchannel
    }
    return client
  })
  const seenClients = new Set<string>()
  clients.forEach((client, i) => {
    if (seenClients.has(client.client_id)) r.fail(`clients[${i}].client_id`, 'is a duplicate')
    seenClients.add(client.client_id)
  })
  users.forEach((user, i) => {
    checkRoleTargets(r, user.roles, `users[${i}].roles`, seenClients)
  })
  clients.forEach((client, i) => {
    checkRoleTargets(r, client.roles, `clients[${i}].roles`, seenClients)
    client.resource_audiences.forEach((audience, j) => {
      if (!seenClients.has(audience))
        r.fail(`clients[${i}].resource_audiences[${j}]`, 'names no known client')
    })
  })

  const accessTokenTtl = r.ttl(top.access_token_ttl, 'access_token_ttl', 300)
  const resolved: ResolvedIdpConfig = {
    realm,
    users,
    clients,
    accessTokenTtl,
    refreshTokenTtl: r.ttl(top.refresh_token_ttl, 'refresh_token_ttl', 1800),
    offlineTokenTtl: r.ttl(top.offline_token_ttl, 'offline_token_ttl', 30 * 24 * 3600),
    sessionTtl: r.ttl(top.session_ttl, 'session_ttl', 10 * 3600),
    deviceCodeTtl: r.ttl(top.device_code_ttl, 'device_code_ttl', 600),
    tokenEndpointAuthMethods:
      top.token_endpoint_auth_methods === undefined
        ? CLIENT_AUTH_METHODS
        : authMethods(r, top.token_endpoint_auth_methods, 'token_endpoint_auth_methods'),
    otpMaxAttempts: r.count(top.otp_max_attempts, 'otp_max_attempts', 3),
  }
  clients.forEach((client, i) => {
    if (!resolved.tokenEndpointAuthMethods.includes(client.token_endpoint_auth_method)) {
      r.fail(
        `clients[${i}].token_endpoint_auth_method`,
        `${client.token_endpoint_auth_method} is not in the realm's token_endpoint_auth_methods`,
      )
    }
  })
  const kerberos = kerberosConfig(r, top.kerberos, seenUsers)
  const keys = r.optionalString(top.keys, 'keys')
  return {
    ...resolved,
    ...(keys === undefined ? {} : { keys }),
    ...(kerberos === undefined ? {} : { kerberos }),
  }
}

function kerberosConfig(
  r: Reader,
  value: unknown,
  users: ReadonlySet<string>,
): ResolvedKerberos | undefined {
  if (value === undefined) return undefined
  const k = r.object(value, 'kerberos', KERBEROS_KEYS)
  const realm = r.string(k.realm, 'kerberos.realm')
  if (!/^[A-Za-z0-9][A-Za-z0-9.-]*$/.test(realm)) {
    r.fail('kerberos.realm', 'must be a Kerberos realm name such as EXAMPLE.ORG')
  }
  const service = r.optionalString(k.service, 'kerberos.service') ?? ''
  if (service !== '' && !/^[A-Za-z0-9]+@[A-Za-z0-9.-]+$/.test(service)) {
    r.fail('kerberos.service', 'must be a host-based service name such as HTTP@localhost')
  }
  const principals: Record<string, string> = {}
  if (k.principals !== undefined) {
    const map = r.object(k.principals, 'kerberos.principals', Object.keys(k.principals as object))
    for (const [principal, username] of Object.entries(map)) {
      const path = join('kerberos.principals', principal)
      if (!/^[^@\s]+@[^@\s]+$/.test(principal)) r.fail(path, 'must be keyed by name@REALM')
      const name = r.string(username, path)
      if (!users.has(name)) r.fail(path, `names no user of the realm ("${name}")`)
      principals[principal] = name
    }
  }
  return { keytab: r.string(k.keytab, 'kerberos.keytab'), realm, service, principals }
}

function authMethods(r: Reader, value: unknown, path: string): IdpClientAuthMethod[] {
  const list = r.strings(value, path)
  if (list.length === 0) r.fail(path, 'must name at least one method')
  list.forEach((method, i) => {
    if (!(CLIENT_AUTH_METHODS as readonly string[]).includes(method)) {
      r.fail(
        `${path}[${i}]`,
        `unknown method "${method}" (expected one of: ${CLIENT_AUTH_METHODS.join(', ')})`,
      )
    }
  })
  return list as IdpClientAuthMethod[]
}

function clientJwks(
  r: Reader,
  value: unknown,
  path: string,
): { readonly keys: readonly IdpClientJwk[] } | undefined {
  if (value === undefined) return undefined
  const set = r.object(value, path, ['keys'])
  const keys = r.array(set.keys, `${path}.keys`).map((raw, i) => {
    const key = r.object(raw, `${path}.keys[${i}]`, Object.keys(raw as object))
    if (typeof key.kty !== 'string') r.fail(`${path}.keys[${i}].kty`, 'must be a key type')
    // A private part here would mean the realm holds a secret the client alone should have.
    for (const part of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) {
      if (part in key)
        r.fail(`${path}.keys[${i}].${part}`, 'must not be set: give public keys only')
    }
    return key as IdpClientJwk
  })
  if (keys.length === 0) r.fail(`${path}.keys`, 'must hold at least one public key')
  return { keys }
}

function authMethod(
  r: Reader,
  value: unknown,
  secret: string | undefined,
  jwks: { readonly keys: readonly IdpClientJwk[] } | undefined,
  path: string,
): IdpClientAuthMethod {
  const method =
    value === undefined
      ? secret !== undefined
        ? 'client_secret_basic'
        : jwks !== undefined
          ? 'private_key_jwt'
          : 'none'
      : r.string(value, `${path}.token_endpoint_auth_method`)
  if (!(CLIENT_AUTH_METHODS as readonly string[]).includes(method)) {
    r.fail(
      `${path}.token_endpoint_auth_method`,
      `unknown method "${method}" (expected one of: ${CLIENT_AUTH_METHODS.join(', ')})`,
    )
  }
  const needsSecret = method === 'client_secret_basic' || method === 'client_secret_post'
  if (needsSecret && secret === undefined) r.fail(`${path}.secret`, `is required for ${method}`)
  if (method === 'private_key_jwt' && jwks === undefined)
    r.fail(`${path}.jwks`, 'is required for private_key_jwt')
  if (method === 'none' && secret !== undefined)
    r.fail(
      `${path}.secret`,
      'must not be set for a public client (token_endpoint_auth_method none)',
    )
  return method as IdpClientAuthMethod
}

function checkRoleTargets(
  r: Reader,
  roles: Readonly<Record<string, readonly string[]>>,
  path: string,
  clients: ReadonlySet<string>,
): void {
  for (const client of Object.keys(roles)) {
    if (client !== '*' && !clients.has(client)) r.fail(join(path, client), 'names no known client')
  }
}

function checkPattern(r: Reader, uri: string, path: string): void {
  try {
    parseUriPattern(uri)
  } catch (error) {
    r.fail(path, error instanceof Error ? error.message : 'is not a valid URI pattern')
  }
}

/** Reads a YAML or JSON configuration file; relative `keys` paths resolve against its folder. */
export async function loadIdpConfigFile(file: string): Promise<ResolvedIdpConfig> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (cause) {
    throw new IdpConfigError(file, '', `cannot be read: ${readFailure(cause)}`, { cause })
  }
  const json = /\.json$/i.test(file)
  let data: unknown
  try {
    data = json ? JSON.parse(text) : parseYaml(text)
  } catch (cause) {
    // The YAML parser's message ends with an excerpt pointing at the line: keep it.
    const detail = cause instanceof Error ? cause.message.trimEnd() : String(cause)
    throw new IdpConfigError(file, '', `is not valid ${json ? 'JSON' : 'YAML'}: ${detail}`, {
      cause,
    })
  }
  if (data === null || data === undefined || (typeof data === 'string' && data.trim() === '')) {
    throw new IdpConfigError(file, '', 'is empty; a realm needs at least one user or client')
  }
  const config = resolveIdpConfig(data, file)
  if (config.users.length === 0 && config.clients.length === 0) {
    throw new IdpConfigError(file, '', 'has no users and no clients, so nobody could sign in')
  }
  const here = dirname(file)
  return {
    ...config,
    ...(config.keys === undefined ? {} : { keys: resolve(here, config.keys) }),
    ...(config.kerberos === undefined
      ? {}
      : { kerberos: { ...config.kerberos, keytab: keytabPath(here, config.kerberos.keytab) } }),
  }
}

/** A keytab name may carry its type (`FILE:`, `MEMORY:`); only plain file paths are made absolute. */
function keytabPath(dir: string, keytab: string): string {
  const typed = /^([A-Z]+):(.*)$/.exec(keytab)
  if (typed?.[1] === 'FILE') return `FILE:${resolve(dir, typed[2] ?? '')}`
  return typed ? keytab : resolve(dir, keytab)
}

function readFailure(error: unknown): string {
  const code =
    typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined
  switch (code) {
    case 'ENOENT':
      return 'no such file'
    case 'EACCES':
    case 'EPERM':
      return 'permission denied'
    case 'EISDIR':
      return 'it is a folder, not a file'
    default:
      return error instanceof Error ? error.message : String(error)
  }
}

// ---------------------------------------------------------------- redirect URI patterns

interface UriPattern {
  readonly protocol: string
  readonly hostname: string
  /** `undefined` = any port. */
  readonly port: string | undefined
  readonly path: string
  readonly prefix: boolean
  readonly search: string
}

const PATTERN = /^(https?:)\/\/([^/:?#@*]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}|\*))?(\/[^#]*)?$/

/** Parses `http://host:port/path` where the port may be `*` and the path may end in `*`. */
export function parseUriPattern(pattern: string): UriPattern {
  const match = PATTERN.exec(pattern)
  if (!match)
    throw new Error('must be an http(s) URI, optionally with port "*" or a path ending in "*"')
  const [, protocol = '', hostname = '', port, rest = '/'] = match
  const query = rest.indexOf('?')
  let path = query === -1 ? rest : rest.slice(0, query)
  const search = query === -1 ? '' : rest.slice(query)
  const prefix = path.endsWith('*')
  if (prefix) path = path.slice(0, -1)
  if (path.includes('*') || search.includes('*'))
    throw new Error('may contain "*" only as the port or at the end')
  if (prefix && search) throw new Error('a pattern ending in "*" cannot also have a query')
  const defaultPort = protocol === 'https:' ? '443' : '80'
  return {
    protocol,
    hostname: hostname.toLowerCase(),
    port: port === '*' ? undefined : port === undefined || port === defaultPort ? '' : port,
    path,
    prefix,
    search,
  }
}

/** Whether `uri` is allowed by one of `patterns`. Credentials and fragments are never allowed. */
export function matchesUriPattern(uri: string, patterns: readonly UriPattern[]): boolean {
  if (!URL.canParse(uri)) return false
  const url = new URL(uri)
  if (url.username || url.password || url.hash || uri.includes('#')) return false
  return patterns.some(
    (p) =>
      p.protocol === url.protocol &&
      p.hostname === url.hostname &&
      (p.port === undefined || p.port === url.port) &&
      (p.prefix
        ? url.pathname.startsWith(p.path)
        : url.pathname === p.path && url.search === p.search),
  )
}

/** A concrete URI standing for a pattern, for oidc-provider's client metadata. */
export function examplesForPatterns(patterns: readonly string[]): string[] {
  const out = new Set<string>()
  for (const pattern of patterns) {
    const concrete = pattern.replace(/:\*(?=\/|$)/, '').replace(/\*$/, '')
    out.add(concrete)
    if (concrete !== pattern) out.add(`${concrete.replace(/\/$/, '')}/ssokit-pattern`)
  }
  return [...out]
}
