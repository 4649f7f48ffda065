/**
 * The proxy's configuration, from command-line flags, environment variables (tsgauth's `OIDC_*`
 * names and `SSOKIT_*`) and a YAML file, in that order of precedence. It is validated once, by a
 * schema; the first problem becomes a one-line `ProxyConfigError` that names the flag, variable
 * or file key it came from, and never prints a secret.
 */
import { createPrivateKey, type JsonWebKey, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { createSecureContext } from 'node:tls'
import { calculateJwkThumbprint } from 'jose'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { HEADER_PRESETS, type HeaderPresetName, type IdentityField } from './headers.js'
import { redirectDomainProblem } from './redirects.js'
import { frozenRule, rulesSchema } from './rule-config.js'
import type { RuleSpec } from './rules.js'
import { trustedProxyProblem } from './trusted-proxies.js'

export const CERN_ISSUER = 'https://auth.cern.ch/auth/realms/cern'
export const DEFAULT_PREFIX = '/_ssokit'
export const DEFAULT_ASSERTION_HEADER = 'X-Ssokit-Assertion'
export const DEFAULT_ACCESS_TOKEN_HEADER = 'X-Forwarded-Access-Token'

/** A configuration problem: `key` is what the user set (`--upstream`, `SSOKIT_UPSTREAM`, ...). */
export class ProxyConfigError extends Error {
  override readonly name = 'ProxyConfigError'
  constructor(
    message: string,
    readonly key: string,
  ) {
    super(message)
  }
}

export interface IdentityHeaderConfig {
  readonly preset: HeaderPresetName
  /** Header name of each identity field sent upstream. */
  readonly names: Readonly<Partial<Record<IdentityField, string>>>
  /** Between the entries of the groups header. */
  readonly separator: string
  /** The signed identity assertion's header, or `false` for none. */
  readonly assertion: string | false
  /** SAML attribute headers (the `shibboleth` preset), by attribute-map id. */
  readonly attributes: readonly string[] | undefined
  /**
   * The header that carries the access token when `passAccessToken` is on; removed from every
   * incoming request either way.
   */
  readonly accessToken: string
}

/** The assertion's signing key from `assertionKeyFile`: an EC P-256 private key as a JWK. */
export interface AssertionKeyConfig {
  readonly privateJwk: {
    readonly kty: string
    readonly crv: string
    readonly x: string
    readonly y: string
    readonly d: string
  }
  /** The RFC 7638 thumbprint of the public key. */
  readonly kid: string
}

/** Attribute names (OIDs, Names, FriendlyNames or attribute-map ids) per identity field. */
export interface ProxySamlAttributes {
  readonly subject?: string
  readonly username?: readonly string[]
  readonly email?: readonly string[]
  readonly name?: readonly string[]
  readonly roles?: readonly string[]
}

/** Sign-in through a SAML 2.0 IdP instead of OpenID Connect (`@ssokit/saml`). */
export interface ProxySamlConfig {
  /** The IdP metadata: a URL (read again hourly) or a file, and the certificate it must be signed with. */
  readonly idp: ({ readonly url: string } | { readonly file: string }) & {
    readonly metadataCert?: string
  }
  readonly entityId: string
  /** Which SAML attributes fill the identity (`samlAttributes`); default: `@ssokit/saml`'s. */
  readonly attributes: ProxySamlAttributes | undefined
  /** PEM texts read from the configured files; both or neither. */
  readonly certificate: string | undefined
  readonly privateKey: string | undefined
}

export interface ProxyConfig {
  /** The application's origin, e.g. `http://127.0.0.1:8000`. */
  readonly upstream: string
  readonly issuer: string
  readonly clientId: string
  readonly clientSecret: string
  /** The proxy's external origin, e.g. `https://my-app.example`. */
  readonly publicUrl: string
  readonly host: string
  readonly port: number
  /** Path prefix of the proxy's own endpoints. */
  readonly prefix: string
  /** Redis for sessions shared by several proxies; memory when absent. */
  readonly redisUrl: string | undefined
  /** Session cookie secrets, newest first; a random one per process when absent. */
  readonly sessionSecrets: readonly string[] | undefined
  readonly sessionLifetime: number | undefined
  readonly headers: IdentityHeaderConfig
  /** Whether the session's or bearer's access token goes upstream (in `headers.accessToken`). */
  readonly passAccessToken: boolean
  /** The signing key shared by replicas; a key made at start-up when absent. */
  readonly assertionKey: AssertionKeyConfig | undefined
  readonly rules: readonly RuleSpec[]
  /** Seconds to wait for the upstream's response headers, and between body chunks. */
  readonly upstreamTimeout: number
  /** Bytes of request headers accepted (431 above). */
  readonly maxHeaderSize: number
  /** Addresses and CIDR ranges of front servers whose forwarding headers are believed. */
  readonly trustedProxies: readonly string[]
  /** Hosts (`.example.org` with subdomains) a sign-in may return to besides the public URL. */
  readonly allowedRedirectDomains: readonly string[]
  /** Seconds between authorisation checks of an open WebSocket. */
  readonly websocketRecheck: number
  /** The bearer token a Prometheus scraper sends to `<prefix>/metrics`; metrics are off without it. */
  readonly metricsToken: string | undefined
  /** Whether a JSON access log line is written per request (stdout). */
  readonly accessLog: boolean
  /** Seconds in-flight requests get to finish on SIGTERM before their connections are closed. */
  readonly shutdownTimeout: number
  /** SAML sign-in; when set, the OIDC settings are not used. */
  readonly saml: ProxySamlConfig | undefined
  /** PEM certificate chain and key when the proxy terminates TLS itself. */
  readonly tls: { readonly cert: string; readonly key: string } | undefined
  /** A plain-HTTP port answering every request with a 308 to the public URL. */
  readonly httpRedirectPort: number | undefined
}

/** Where each setting may come from: its flag, its environment variables, its file key. */
const SOURCES = {
  upstream: { flag: 'upstream', env: ['SSOKIT_UPSTREAM'] },
  issuer: { flag: 'issuer', env: ['OIDC_ISSUER'] },
  clientId: { flag: 'client-id', env: ['OIDC_CLIENT_ID'] },
  clientSecret: { flag: undefined, env: ['OIDC_CLIENT_SECRET'] },
  clientSecretFile: { flag: 'client-secret-file', env: ['SSOKIT_CLIENT_SECRET_FILE'] },
  publicUrl: { flag: 'public-url', env: ['SSOKIT_PUBLIC_URL'] },
  host: { flag: 'host', env: ['SSOKIT_HOST'] },
  port: { flag: 'port', env: ['SSOKIT_PORT'] },
  prefix: { flag: undefined, env: ['SSOKIT_PREFIX'] },
  redisUrl: { flag: 'redis-url', env: ['SSOKIT_REDIS_URL'] },
  sessionSecret: { flag: undefined, env: ['SSOKIT_SESSION_SECRET'] },
  sessionSecretFile: { flag: 'session-secret-file', env: ['SSOKIT_SESSION_SECRET_FILE'] },
  sessionLifetime: { flag: undefined, env: ['OIDC_SESSION_LIFETIME'] },
  headers: { flag: undefined, env: [] },
  headerPreset: { flag: 'header-preset', env: ['SSOKIT_HEADER_PRESET'] },
  passAccessToken: { flag: 'pass-access-token', env: ['SSOKIT_PASS_ACCESS_TOKEN'] },
  accessTokenHeader: { flag: 'access-token-header', env: ['SSOKIT_ACCESS_TOKEN_HEADER'] },
  assertionKeyFile: { flag: 'assertion-key-file', env: ['SSOKIT_ASSERTION_KEY_FILE'] },
  rules: { flag: undefined, env: [] },
  upstreamTimeout: { flag: 'upstream-timeout', env: ['SSOKIT_UPSTREAM_TIMEOUT'] },
  maxHeaderSize: { flag: 'max-header-size', env: ['SSOKIT_MAX_HEADER_SIZE'] },
  trustedProxies: { flag: 'trusted-proxies', env: ['SSOKIT_TRUSTED_PROXIES'] },
  allowedRedirectDomains: {
    flag: 'allowed-redirect-domains',
    env: ['SSOKIT_ALLOWED_REDIRECT_DOMAINS'],
  },
  websocketRecheck: { flag: 'websocket-recheck', env: ['SSOKIT_WEBSOCKET_RECHECK'] },
  metricsToken: { flag: undefined, env: ['SSOKIT_METRICS_TOKEN'] },
  metricsTokenFile: { flag: 'metrics-token-file', env: ['SSOKIT_METRICS_TOKEN_FILE'] },
  accessLog: { flag: 'access-log', env: ['SSOKIT_ACCESS_LOG'] },
  shutdownTimeout: { flag: 'shutdown-timeout', env: ['SSOKIT_SHUTDOWN_TIMEOUT'] },
  samlIdpMetadata: { flag: 'saml-idp-metadata', env: ['SSOKIT_SAML_IDP_METADATA'] },
  samlIdpMetadataCert: { flag: 'saml-idp-metadata-cert', env: ['SSOKIT_SAML_IDP_METADATA_CERT'] },
  samlEntityId: { flag: 'saml-entity-id', env: ['SSOKIT_SAML_ENTITY_ID'] },
  samlCertificateFile: { flag: 'saml-cert-file', env: ['SSOKIT_SAML_CERT_FILE'] },
  samlPrivateKeyFile: { flag: 'saml-key-file', env: ['SSOKIT_SAML_KEY_FILE'] },
  samlAttributes: { flag: undefined, env: [] },
  tlsCert: { flag: 'tls-cert', env: ['SSOKIT_TLS_CERT'] },
  tlsKey: { flag: 'tls-key', env: ['SSOKIT_TLS_KEY'] },
  httpRedirectPort: { flag: 'http-redirect-port', env: ['SSOKIT_HTTP_REDIRECT_PORT'] },
} as const satisfies Record<string, { flag: string | undefined; env: readonly string[] }>

type Key = keyof typeof SOURCES
const SECRET_KEYS: ReadonlySet<string> = new Set(['clientSecret', 'sessionSecret', 'metricsToken'])

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]'
}

function origin(expected: string, opts: { httpOnlyOnLoopback: boolean }) {
  return z.string({ error: `must be ${expected}` }).refine(
    (raw) => {
      let url: URL
      try {
        url = new URL(raw)
      } catch {
        return false
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') return false
      if (url.pathname !== '/' || url.search !== '' || url.hash !== '') return false
      if (url.username !== '' || url.password !== '') return false
      return !(opts.httpOnlyOnLoopback && url.protocol === 'http:' && !isLoopbackHost(url.hostname))
    },
    { error: `must be ${expected}` },
  )
}

function integer(min: number, max: number, what: string) {
  const error = `must be ${what} from ${min} to ${max}`
  return z.preprocess(
    (v) => (typeof v === 'string' && /^\d{1,15}$/.test(v) ? Number(v) : v),
    z.number({ error }).int({ error }).min(min, { error }).max(max, { error }),
  )
}

/** A switch: `true`/`false` in the file, `on`/`off` (or `true`/`false`, `1`/`0`) elsewhere. */
function onOff() {
  const error = 'must be on or off'
  return z.preprocess((v) => {
    if (typeof v !== 'string') return v
    const word = v.trim().toLowerCase()
    if (['on', 'true', '1', 'yes'].includes(word)) return true
    if (['off', 'false', '0', 'no'].includes(word)) return false
    return v
  }, z.boolean({ error }))
}

const HEADER_NAME = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/
const headerName = z
  .string({ error: 'must be a header name' })
  .regex(HEADER_NAME, { error: 'must be a header name of letters, digits and "-"' })

const text = (expected: string) =>
  z
    .string({ error: `must be ${expected}` })
    .trim()
    .min(1, { error: `must be ${expected}` })

/** A list from a file (YAML list) or from a flag or variable (comma- or space-separated). */
function list(expected: string, problem: (entry: string) => string | undefined) {
  return z.preprocess(
    (v) =>
      typeof v === 'string'
        ? v
            .split(/[\s,]+/)
            .map((entry) => entry.trim())
            .filter((entry) => entry !== '')
        : v,
    z
      .array(z.string({ error: `must be ${expected}` }), { error: `must be ${expected}` })
      .superRefine((entries, ctx) => {
        for (const entry of entries) {
          const found = problem(entry)
          if (found !== undefined) {
            ctx.addIssue({ code: 'custom', message: `entry ${JSON.stringify(entry)} ${found}` })
            return
          }
        }
      }),
  )
}

const ATTRIBUTE_NAMES_ERROR = 'must be an attribute name or a non-empty list of them'
/** One attribute name or a list of them, the first one present winning. */
const attributeNames = z
  .union(
    [
      z.string().min(1, { error: ATTRIBUTE_NAMES_ERROR }),
      z.array(z.string().min(1)).min(1, { error: ATTRIBUTE_NAMES_ERROR }),
    ],
    { error: ATTRIBUTE_NAMES_ERROR },
  )
  .transform((value) => Object.freeze(typeof value === 'string' ? [value] : [...value]))

const SCHEMA = z
  .object({
    upstream: origin('an http or https origin such as http://127.0.0.1:8000 (no path)', {
      httpOnlyOnLoopback: false,
    }),
    issuer: z
      .string({ error: 'must be a URL' })
      .refine(
        (raw) => {
          try {
            const url = new URL(raw)
            return (
              url.protocol === 'https:' ||
              (url.protocol === 'http:' && isLoopbackHost(url.hostname))
            )
          } catch {
            return false
          }
        },
        { error: 'must be an https URL (http only for localhost), such as ' + CERN_ISSUER },
      )
      .optional(),
    clientId: text('the client id registered at the provider').optional(),
    clientSecret: text('the client secret').optional(),
    samlIdpMetadata: text('the IdP metadata URL or file').optional(),
    samlIdpMetadataCert: text('a PEM certificate file').optional(),
    samlEntityId: text('the SP entity id, a URI').optional(),
    samlCertificateFile: text('a PEM certificate file').optional(),
    samlPrivateKeyFile: text('a PEM private key file').optional(),
    samlAttributes: z
      .strictObject(
        {
          subject: text('an attribute name').optional(),
          username: attributeNames.optional(),
          email: attributeNames.optional(),
          name: attributeNames.optional(),
          roles: attributeNames.optional(),
        },
        { error: 'must map subject, username, email, name or roles to attribute names' },
      )
      .optional(),
    publicUrl: origin(
      'the https origin browsers use to reach the proxy, such as https://my-app.example (http only for localhost)',
      { httpOnlyOnLoopback: true },
    ),
    host: text('an address to listen on'),
    port: integer(0, 65535, 'a port number'),
    prefix: z
      .string({ error: 'must be a path such as /_ssokit' })
      .regex(/^(\/[A-Za-z0-9._~-]+)+$/, { error: 'must be a path such as /_ssokit' }),
    redisUrl: z
      .string({ error: 'must be a URL such as redis://127.0.0.1:6379' })
      .regex(/^rediss?:\/\/\S+$/, { error: 'must be a URL such as redis://127.0.0.1:6379' })
      .optional(),
    sessionSecret: z
      .string()
      .transform((s) =>
        s
          .split(',')
          .map((p) => p.trim())
          .filter((p) => p !== ''),
      )
      .refine((list) => list.length > 0 && list.every((s) => s.length >= 32), {
        error: 'must be at least 32 characters (comma-separated for rotation, newest first)',
      })
      .optional(),
    sessionLifetime: integer(60, 31_536_000, 'a number of seconds').optional(),
    headers: z
      .object({
        preset: z
          .enum(Object.keys(HEADER_PRESETS) as [HeaderPresetName, ...HeaderPresetName[]], {
            error: `must be ${Object.keys(HEADER_PRESETS).join(', ')}`,
          })
          .optional(),
        user: headerName.optional(),
        email: headerName.optional(),
        username: headerName.optional(),
        name: headerName.optional(),
        groups: headerName.optional(),
        separator: z
          .enum([',', ';', '|', ' '], { error: 'must be ",", ";", "|" or " "' })
          .optional(),
        assertion: z
          .union([headerName, z.literal(false)], {
            error: 'must be a header name, or false for none',
          })
          .optional(),
      })
      .strict()
      .optional(),
    rules: rulesSchema.optional(),
    passAccessToken: onOff(),
    accessTokenHeader: headerName.optional(),
    assertionKeyFile: text('a PEM or JWK file of an EC P-256 private key').optional(),
    upstreamTimeout: integer(1, 3600, 'a number of seconds'),
    maxHeaderSize: integer(1024, 1_048_576, 'a number of bytes'),
    trustedProxies: list('a list of IP addresses or CIDR ranges', trustedProxyProblem).optional(),
    allowedRedirectDomains: list('a list of host names', redirectDomainProblem).optional(),
    websocketRecheck: integer(1, 3600, 'a number of seconds'),
    metricsToken: z
      .string({ error: 'must be a token of at least 16 characters' })
      .trim()
      .regex(/^[\x21-\x7e]{16,1024}$/, {
        error: 'must be a token of 16 to 1024 printable characters, no spaces',
      })
      .optional(),
    accessLog: onOff(),
    shutdownTimeout: integer(0, 3600, 'a number of seconds'),
    tlsCert: text('a PEM file of the certificate chain').optional(),
    tlsKey: text('a PEM file of the private key').optional(),
    httpRedirectPort: integer(0, 65535, 'a port number').optional(),
  })
  .strict()

export interface ConfigInput {
  /** Command-line values by flag name (`upstream`, `client-id`, ...). */
  readonly flags?: Readonly<Record<string, string | number | undefined>>
  readonly env?: Readonly<Record<string, string | undefined>>
  /** A YAML (or JSON) file of the same settings, keys as in `ProxyConfig`. */
  readonly file?: string
}

interface Located {
  value: unknown
  /** `--upstream`, `SSOKIT_UPSTREAM` or `proxy.yaml: upstream` */
  label: string
  fromFile: boolean
}

const FILE_KEYS: ReadonlySet<string> = new Set(
  Object.keys(SOURCES).filter((key) => key !== 'headerPreset'),
)

/** The text of a file a setting names; a file that cannot be read is an error naming `label`. */
async function readSettingFile(path: string, label: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (error) {
    const code =
      typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : ''
    throw new ProxyConfigError(
      `${label}: cannot read ${JSON.stringify(path)}${code === '' ? '' : ` (${code})`}`,
      label,
    )
  }
}

async function readFileSetting(path: string, label: string): Promise<string> {
  const content = await readSettingFile(path, label)
  const value = content.trim()
  if (value === '') throw new ProxyConfigError(`${label}: ${JSON.stringify(path)} is empty`, label)
  return value
}

async function readConfigFile(path: string): Promise<Record<string, unknown>> {
  const content = await readSettingFile(path, '--config')
  let parsed: unknown
  try {
    parsed = parseYaml(content)
  } catch (error) {
    const line = (error as { linePos?: [{ line: number }] }).linePos?.[0]?.line
    throw new ProxyConfigError(
      `${path}: not valid YAML${line === undefined ? '' : ` (line ${line})`}`,
      '--config',
    )
  }
  if (parsed === null || parsed === undefined) return {}
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ProxyConfigError(`${path}: must be a mapping of settings`, '--config')
  }
  for (const key of Object.keys(parsed)) {
    if (!FILE_KEYS.has(key)) {
      throw new ProxyConfigError(`${path}: unknown key ${JSON.stringify(key)}`, key)
    }
  }
  return parsed as Record<string, unknown>
}

function pathLabel(path: readonly PropertyKey[]): string {
  let out = ''
  for (const part of path) {
    out += typeof part === 'number' ? `[${part}]` : `${out === '' ? '' : '.'}${String(part)}`
  }
  return out
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root
  for (const part of path) {
    if (typeof value !== 'object' || value === null) return undefined
    value = (value as Record<PropertyKey, unknown>)[part]
  }
  return value
}

function describeMissing(key: Key, envName: (name: string) => string): string {
  const { flag, env } = SOURCES[key]
  const where = [
    ...(flag === undefined ? [] : [`--${flag}`]),
    ...env.map(envName),
    `${key} in the config file`,
  ]
  const extra = key === 'issuer' ? " (SSOKIT_PRESET=cern for CERN's)" : ''
  return `${key} is not set: give ${where.slice(0, -1).join(', ')} or ${where.at(-1) ?? ''}${extra}`
}

/**
 * The certificate and key files, read and tried together (TLS 1.2 at least), so a wrong file,
 * a key of another certificate or a passphrase-protected key stops start-up, naming the setting.
 */
async function readTls(
  parsed: { readonly tlsCert?: string | undefined; readonly tlsKey?: string | undefined },
  located: ReadonlyMap<Key, Located>,
): Promise<{ readonly cert: string; readonly key: string } | undefined> {
  const certLabel = located.get('tlsCert')?.label ?? 'tlsCert'
  const keyLabel = located.get('tlsKey')?.label ?? 'tlsKey'
  if (parsed.tlsCert === undefined && parsed.tlsKey === undefined) return undefined
  if (parsed.tlsCert === undefined || parsed.tlsKey === undefined) {
    const [given, missing] =
      parsed.tlsCert === undefined ? [keyLabel, '--tls-cert'] : [certLabel, '--tls-key']
    throw new ProxyConfigError(`${given} needs ${missing} too`, given)
  }
  const cert = await readSettingFile(parsed.tlsCert, certLabel)
  const key = await readSettingFile(parsed.tlsKey, keyLabel)
  if (!/-----BEGIN CERTIFICATE-----/.test(cert)) {
    throw new ProxyConfigError(
      `${certLabel}: ${JSON.stringify(parsed.tlsCert)} holds no PEM certificate`,
      certLabel,
    )
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) {
    throw new ProxyConfigError(
      `${keyLabel}: ${JSON.stringify(parsed.tlsKey)} holds no PEM private key`,
      keyLabel,
    )
  }
  try {
    createSecureContext({ cert, key, minVersion: 'TLSv1.2' })
  } catch {
    throw new ProxyConfigError(
      `${keyLabel} does not fit ${certLabel}, or is protected by a passphrase (not supported)`,
      keyLabel,
    )
  }
  return Object.freeze({ cert, key })
}

/**
 * Reads and checks the whole configuration: flags win over environment variables, which win over
 * the file. Secret files are read here, so that a missing one stops start-up too.
 */
export async function loadProxyConfig(input: ConfigInput): Promise<ProxyConfig> {
  const flags = input.flags ?? {}
  const env = input.env ?? {}
  const file = input.file === undefined ? {} : await readConfigFile(input.file)
  // tsgauth's TSGAUTH_OIDC_PREFIX applies to every OIDC_ name, as in the core's loaders.
  const oidcPrefix = env.TSGAUTH_OIDC_PREFIX?.trim() ?? ''
  const envName = (name: string) => (name.startsWith('OIDC_') ? `${oidcPrefix}${name}` : name)
  const located = new Map<Key, Located>()
  for (const key of Object.keys(SOURCES) as Key[]) {
    const { flag } = SOURCES[key]
    const names = SOURCES[key].env.map(envName)
    const fromFlag = flag === undefined ? undefined : flags[flag]
    if (fromFlag !== undefined) {
      located.set(key, { value: fromFlag, label: `--${flag}`, fromFile: false })
      continue
    }
    const fromEnv = names.find((name) => (env[name]?.trim() ?? '') !== '')
    if (fromEnv !== undefined) {
      located.set(key, { value: env[fromEnv]?.trim(), label: fromEnv, fromFile: false })
      continue
    }
    if (Object.hasOwn(file, key)) {
      located.set(key, {
        value: file[key],
        label: `${input.file ?? ''}: ${key}`,
        fromFile: true,
      })
    }
  }
  // tsgauth's store variables: OIDC_SESSION_STORE_TYPE=redis with its host and port.
  const storeType = env[envName('OIDC_SESSION_STORE_TYPE')]?.trim().toLowerCase()
  if (!located.has('redisUrl') && storeType === 'redis') {
    const host = env[envName('OIDC_SESSION_STORE_HOST')]?.trim() || 'localhost'
    const port = env[envName('OIDC_SESSION_STORE_PORT')]?.trim() || '6379'
    located.set('redisUrl', {
      value: `redis://${host}:${port}`,
      label: `${envName('OIDC_SESSION_STORE_HOST')}/${envName('OIDC_SESSION_STORE_PORT')}`,
      fromFile: false,
    })
  }
  // No silent default provider: CERN's issuer only when asked for with SSOKIT_PRESET=cern.
  const preset = env.SSOKIT_PRESET?.trim()
  if (preset !== undefined && preset !== '' && preset !== 'cern') {
    throw new ProxyConfigError(
      `SSOKIT_PRESET must be cern (the only preset), not ${JSON.stringify(preset)}`,
      'SSOKIT_PRESET',
    )
  }
  if (!located.has('issuer') && preset === 'cern') {
    located.set('issuer', { value: CERN_ISSUER, label: 'SSOKIT_PRESET', fromFile: false })
  }
  for (const [key, secretKey] of [
    ['clientSecretFile', 'clientSecret'],
    ['sessionSecretFile', 'sessionSecret'],
    ['metricsTokenFile', 'metricsToken'],
  ] as const) {
    const from = located.get(key)
    if (from === undefined) continue
    located.delete(key)
    if (typeof from.value !== 'string' || from.value === '') {
      throw new ProxyConfigError(`${from.label} must be a path`, from.label)
    }
    const secret = await readFileSetting(from.value, from.label)
    if (!located.has(secretKey) || !from.fromFile) {
      located.set(secretKey, { value: secret, label: from.label, fromFile: false })
    }
  }
  const headerPreset = located.get('headerPreset')
  located.delete('headerPreset')

  const raw: Record<string, unknown> = {
    host: '127.0.0.1',
    port: 4180,
    prefix: DEFAULT_PREFIX,
    upstreamTimeout: 60,
    maxHeaderSize: 65_536,
    websocketRecheck: 60,
    accessLog: true,
    passAccessToken: false,
    shutdownTimeout: 30,
  }
  for (const [key, { value }] of located) raw[key] = value
  if (headerPreset !== undefined) {
    raw.headers = { ...(raw.headers as object | undefined), preset: headerPreset.value }
  }
  // With SAML, the IdP metadata replaces the OIDC provider settings.
  const required =
    raw.samlIdpMetadata === undefined
      ? (['upstream', 'issuer', 'clientId', 'clientSecret', 'publicUrl'] as const)
      : (['upstream', 'samlEntityId', 'publicUrl'] as const)
  for (const key of required) {
    if (raw[key] === undefined) {
      throw new ProxyConfigError(describeMissing(key, envName), key)
    }
  }

  const result = SCHEMA.safeParse(raw)
  if (!result.success) {
    const issue = result.error.issues[0]
    const path = issue?.path ?? []
    const top = path[0] as Key | 'headers' | undefined
    let source = top === undefined ? undefined : located.get(top)
    if (top === 'headers' && path[1] === 'preset' && headerPreset !== undefined) {
      source = headerPreset
    }
    if (issue?.code === 'unrecognized_keys') {
      const where = source?.fromFile === true ? `${input.file ?? ''}: ${pathLabel(path)}` : ''
      throw new ProxyConfigError(
        `${where === '' ? '' : `${where}: `}unknown key ${JSON.stringify(issue.keys[0] ?? '')}`,
        where,
      )
    }
    const label =
      source === undefined
        ? pathLabel(path)
        : source.fromFile
          ? `${input.file ?? ''}: ${pathLabel(path)}`
          : source.label
    const message = issue?.message ?? 'is not valid'
    const value = source?.fromFile === true ? valueAt(file, path) : source?.value
    const shown =
      message.startsWith('must be') &&
      !SECRET_KEYS.has(String(top)) &&
      (typeof value === 'string' || typeof value === 'number')
        ? `, not ${JSON.stringify(value)}`
        : ''
    throw new ProxyConfigError(`${label} ${message}${shown}`, label)
  }
  const parsed = result.data
  if (parsed.redisUrl !== undefined && parsed.sessionSecret === undefined) {
    throw new ProxyConfigError(
      'sessions in Redis need a session secret shared by every proxy: set SSOKIT_SESSION_SECRET, --session-secret-file or sessionSecret in the config file',
      'sessionSecret',
    )
  }
  const saml = await samlConfig(parsed, located)
  const tls = await readTls(parsed, located)
  const assertionKey =
    parsed.assertionKeyFile === undefined
      ? undefined
      : await readAssertionKey(
          parsed.assertionKeyFile,
          located.get('assertionKeyFile')?.label ?? 'assertionKeyFile',
        )
  if (parsed.httpRedirectPort !== undefined && tls === undefined) {
    const label = located.get('httpRedirectPort')?.label ?? 'httpRedirectPort'
    throw new ProxyConfigError(
      `${label} needs TLS: set --tls-cert and --tls-key too (the redirect goes to https)`,
      label,
    )
  }
  if (tls !== undefined && !parsed.publicUrl.startsWith('https:')) {
    const label = located.get('publicUrl')?.label ?? 'publicUrl'
    throw new ProxyConfigError(
      `${label} must be an https URL when the proxy terminates TLS (--tls-cert)`,
      label,
    )
  }
  const headers = parsed.headers ?? {}
  const presetName = headers.preset ?? 'oauth2-proxy'
  const base = HEADER_PRESETS[presetName]
  const names: Partial<Record<IdentityField, string>> = { ...base.names }
  for (const field of ['user', 'email', 'username', 'name', 'groups'] as const) {
    const name = headers[field]
    if (name !== undefined) names[field] = name
  }
  return Object.freeze({
    upstream: new URL(parsed.upstream).origin,
    issuer: parsed.issuer ?? '',
    clientId: parsed.clientId ?? '',
    clientSecret: parsed.clientSecret ?? '',
    publicUrl: new URL(parsed.publicUrl).origin,
    host: parsed.host,
    port: parsed.port,
    prefix: parsed.prefix,
    redisUrl: parsed.redisUrl,
    sessionSecrets:
      parsed.sessionSecret === undefined ? undefined : Object.freeze(parsed.sessionSecret),
    sessionLifetime: parsed.sessionLifetime,
    headers: Object.freeze({
      preset: presetName,
      names: Object.freeze(names),
      separator: headers.separator ?? base.separator,
      assertion: headers.assertion ?? DEFAULT_ASSERTION_HEADER,
      attributes: 'attributes' in base ? base.attributes : undefined,
      accessToken: parsed.accessTokenHeader ?? DEFAULT_ACCESS_TOKEN_HEADER,
    }),
    passAccessToken: parsed.passAccessToken,
    assertionKey,
    rules: Object.freeze((parsed.rules ?? []).map(frozenRule)),
    upstreamTimeout: parsed.upstreamTimeout,
    maxHeaderSize: parsed.maxHeaderSize,
    trustedProxies: Object.freeze([...(parsed.trustedProxies ?? [])]),
    allowedRedirectDomains: Object.freeze(
      (parsed.allowedRedirectDomains ?? []).map((d) => d.toLowerCase()),
    ),
    websocketRecheck: parsed.websocketRecheck,
    metricsToken: parsed.metricsToken,
    accessLog: parsed.accessLog,
    shutdownTimeout: parsed.shutdownTimeout,
    tls,
    httpRedirectPort: parsed.httpRedirectPort,
    saml,
  })
}

/**
 * The assertion's signing key, read and checked at start-up: a PEM (PKCS #8 or SEC 1) or JWK
 * file of an EC P-256 private key, the key ES256 needs. Its `kid` is the RFC 7638 thumbprint,
 * so every replica given the same file publishes the same key under the same id.
 */
async function readAssertionKey(path: string, label: string): Promise<AssertionKeyConfig> {
  const text = await readSettingFile(path, label)
  const shown = JSON.stringify(path)
  let key: KeyObject
  try {
    key = text.trimStart().startsWith('{')
      ? createPrivateKey({ key: JSON.parse(text) as JsonWebKey, format: 'jwk' })
      : createPrivateKey(text)
  } catch {
    throw new ProxyConfigError(
      `${label}: ${shown} holds no private key (a PEM or JWK file of an EC P-256 private key is needed, without a passphrase)`,
      label,
    )
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new ProxyConfigError(
      `${label}: ${shown} is not an EC P-256 key (the assertion is signed with ES256)`,
      label,
    )
  }
  const { kty, crv, x, y, d } = key.export({ format: 'jwk' })
  if (
    kty === undefined ||
    crv === undefined ||
    x === undefined ||
    y === undefined ||
    d === undefined
  ) {
    throw new ProxyConfigError(`${label}: ${shown} holds an incomplete key`, label)
  }
  const kid = await calculateJwkThumbprint({ kty, crv, x, y })
  return Object.freeze({ privateJwk: Object.freeze({ kty, crv, x, y, d }), kid })
}

/** The SAML settings, with the certificate and key files read. */
async function samlConfig(
  parsed: {
    readonly samlIdpMetadata?: string | undefined
    readonly samlIdpMetadataCert?: string | undefined
    readonly samlEntityId?: string | undefined
    readonly samlCertificateFile?: string | undefined
    readonly samlPrivateKeyFile?: string | undefined
    readonly samlAttributes?:
      | { readonly [Field in keyof ProxySamlAttributes]?: ProxySamlAttributes[Field] | undefined }
      | undefined
  },
  located: ReadonlyMap<Key, Located>,
): Promise<ProxySamlConfig | undefined> {
  const metadata = parsed.samlIdpMetadata
  if (metadata === undefined || parsed.samlEntityId === undefined) return undefined
  const certFile = parsed.samlCertificateFile
  const keyFile = parsed.samlPrivateKeyFile
  if ((certFile === undefined) !== (keyFile === undefined)) {
    const label =
      located.get(certFile === undefined ? 'samlPrivateKeyFile' : 'samlCertificateFile')?.label ??
      'samlCertificateFile'
    throw new ProxyConfigError(`${label} needs the SAML certificate and key files together`, label)
  }
  const read = (path: string, key: Key) => readSettingFile(path, located.get(key)?.label ?? key)
  const metadataCert =
    parsed.samlIdpMetadataCert === undefined
      ? undefined
      : await read(parsed.samlIdpMetadataCert, 'samlIdpMetadataCert')
  if (metadataCert !== undefined && !/-----BEGIN CERTIFICATE-----/.test(metadataCert)) {
    const label = located.get('samlIdpMetadataCert')?.label ?? 'samlIdpMetadataCert'
    throw new ProxyConfigError(
      `${label}: ${JSON.stringify(parsed.samlIdpMetadataCert)} holds no PEM certificate`,
      label,
    )
  }
  return Object.freeze({
    idp: Object.freeze({
      ...(/^https?:\/\//.test(metadata) ? { url: metadata } : { file: metadata }),
      ...(metadataCert === undefined ? {} : { metadataCert }),
    }),
    entityId: parsed.samlEntityId,
    attributes:
      parsed.samlAttributes === undefined
        ? undefined
        : // The schema leaves out absent keys; only its type allows them to be undefined.
          (Object.freeze({ ...parsed.samlAttributes }) as ProxySamlAttributes),
    certificate: certFile === undefined ? undefined : await read(certFile, 'samlCertificateFile'),
    privateKey: keyFile === undefined ? undefined : await read(keyFile, 'samlPrivateKeyFile'),
  })
}
