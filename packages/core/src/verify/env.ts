/**
 * The environment variables ssokit reads, and the warnings for those it does not: a setting that
 * is set and silently ignored (a typo, a tsgauth name ssokit has no use for, a prefixed name read
 * without its prefix) is a deployment that does not do what its operator thinks.
 */
import type { SsoEvent } from './events.js'

/** An environment: `process.env` or any record of strings. */
export type Environment = Readonly<Record<string, string | undefined>>

/**
 * Every name any part of ssokit reads (`loadConfig`, `loadSessionConfig`,
 * `RedisSessionStore.fromEnv`, `ssokit proxy`). A new variable must be added here, or it is reported as unknown.
 */
export const KNOWN_ENV_NAMES: ReadonlySet<string> = new Set([
  // tsgauth's names; the OIDC_ ones take TSGAUTH_OIDC_PREFIX.
  'OIDC_CLIENT_ID',
  'OIDC_CLIENT_SECRET',
  'OIDC_ISSUER',
  'OIDC_JWKS_URI',
  'OIDC_SESSION_AUTH_ALLOWED',
  'OIDC_SESSION_LIFETIME',
  'OIDC_SESSION_STORE_TYPE',
  'OIDC_SESSION_STORE_HOST',
  'OIDC_SESSION_STORE_PORT',
  'OIDC_AUTH_ROUTE_PREFIX',
  'TSGAUTH_ALLOWED_ALGS',
  'TSGAUTH_OIDC_PREFIX',
  // ssokit's own.
  'SSOKIT_PRESET',
  'SSOKIT_ALLOWED_ALGS',
  'SSOKIT_CLOCK_TOLERANCE',
  'SSOKIT_AUDIENCE',
  'SSOKIT_ROLES_CLAIM',
  'SSOKIT_USERNAME_CLAIM',
  'SSOKIT_TOKEN_TYPE',
  'SSOKIT_SESSION_SECRET',
  'SSOKIT_PUBLIC_URL',
  'SSOKIT_TOKEN_ENDPOINT_AUTH',
  'SSOKIT_CLIENT_PRIVATE_KEY',
  'SSOKIT_CLIENT_KEY_ID',
  'SSOKIT_REDIS_URL',
  'SSOKIT_REDIS_KEY_PREFIX',
  // `ssokit proxy` (@ssokit/proxy).
  'SSOKIT_UPSTREAM',
  'SSOKIT_CLIENT_SECRET_FILE',
  'SSOKIT_SESSION_SECRET_FILE',
  'SSOKIT_HOST',
  'SSOKIT_PORT',
  'SSOKIT_PREFIX',
  'SSOKIT_HEADER_PRESET',
  'SSOKIT_PASS_ACCESS_TOKEN',
  'SSOKIT_ACCESS_TOKEN_HEADER',
  'SSOKIT_ASSERTION_KEY_FILE',
  'SSOKIT_UPSTREAM_TIMEOUT',
  'SSOKIT_MAX_HEADER_SIZE',
  'SSOKIT_TRUSTED_PROXIES',
  'SSOKIT_ALLOWED_REDIRECT_DOMAINS',
  'SSOKIT_WEBSOCKET_RECHECK',
  'SSOKIT_METRICS_TOKEN',
  'SSOKIT_METRICS_TOKEN_FILE',
  'SSOKIT_ACCESS_LOG',
  'SSOKIT_SHUTDOWN_TIMEOUT',
  'SSOKIT_SAML_IDP_METADATA',
  'SSOKIT_SAML_IDP_METADATA_CERT',
  'SSOKIT_SAML_ENTITY_ID',
  'SSOKIT_SAML_CERT_FILE',
  'SSOKIT_SAML_KEY_FILE',
  'SSOKIT_TLS_CERT',
  'SSOKIT_TLS_KEY',
  'SSOKIT_HTTP_REDIRECT_PORT',
  // The client side (@ssokit/client, ssokit token | status | logout).
  'SSOKIT_HOME',
  'SSOKIT_CLIENT_SECRET',
  'TSGAUTH_AUTHDIR',
  'TSGAUTH_FORCE_USE_AUTHFILE',
  'TSGAUTH_FORCE_DONT_USE_AUTHFILE',
  'TSGAUTH_LOGLEVEL',
  // Kerberos logins: a one-time code for two-factor accounts.
  'SSOKIT_OTP',
  // Set by ssokit's own test runner.
  'SSOKIT_TEST',
])

/** Names that are read only for browser sessions (by `loadSessionConfig`). */
export const SESSION_ENV_NAMES: readonly string[] = [
  'OIDC_CLIENT_SECRET',
  'OIDC_SESSION_LIFETIME',
  'OIDC_AUTH_ROUTE_PREFIX',
  'SSOKIT_SESSION_SECRET',
  'SSOKIT_PUBLIC_URL',
  'SSOKIT_TOKEN_ENDPOINT_AUTH',
  'SSOKIT_CLIENT_PRIVATE_KEY',
  'SSOKIT_CLIENT_KEY_ID',
]

/** Names tsgauth (or its older releases) read that ssokit does not: why, and what to set instead. */
const NOT_USED: Readonly<Record<string, string>> = {
  OIDC_AUTH_URI: "ssokit reads the provider's endpoints from its discovery document (OIDC_ISSUER)",
  OIDC_TOKEN_URI: "ssokit reads the provider's endpoints from its discovery document (OIDC_ISSUER)",
  OIDC_LOGOUT_URI:
    "ssokit reads the provider's endpoints from its discovery document (OIDC_ISSUER)",
  OIDC_ALLOW_TOKEN_REQUEST: "it is tsgauth's older name: set OIDC_SESSION_AUTH_ALLOWED",
  OIDC_SESSION_CLAIMS_LIFETIME: "it is tsgauth's older name: set OIDC_SESSION_LIFETIME",
  OIDC_REDIS_HOST: "it is tsgauth's older name: set OIDC_SESSION_STORE_HOST",
  OIDC_REDIS_PORT: "it is tsgauth's older name: set OIDC_SESSION_STORE_PORT",
  OIDC_AUTH_STORE: "it is tsgauth's older name: set OIDC_SESSION_STORE_TYPE",
  OIDC_SESSION_MANAGE_COOKIE:
    'ssokit always sets its own session cookie (__Host-, HttpOnly, Secure, SameSite=Lax)',
  OIDC_SESSION_COOKIE_SAMESITE:
    'ssokit always sets its own session cookie (__Host-, HttpOnly, Secure, SameSite=Lax)',
  OIDC_SESSION_COOKIE_PERMANENT:
    'ssokit session cookies always last OIDC_SESSION_LIFETIME (or until logout)',
  TSGAUTH_CLIENT_ID: 'it is a name of tsgauth’s tests: set OIDC_CLIENT_ID',
  TSGAUTH_CLIENT_SECRET: 'it is a name of tsgauth’s tests: set OIDC_CLIENT_SECRET',
  CERNSSO_TOKEN_DIR:
    'it configured old tsgauth clients: @ssokit/client reads SSOKIT_HOME or TSGAUTH_AUTHDIR',
}

/** The families of names ssokit looks at (`ODIC_` is a misspelling found in tsgauth's README). */
const FAMILY = /^(OIDC|SSOKIT|TSGAUTH|ODIC|CERNSSO)_/

function distance(a: string, b: string): number {
  // Levenshtein over two short names, one row at a time.
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      row.push(
        Math.min((previous[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost),
      )
    }
    previous = row
  }
  return previous[b.length] ?? Math.max(a.length, b.length)
}

function commonPrefix(a: string, b: string): number {
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  return i
}

/** The known name an unknown one was most likely meant to be, if one is close. */
export function likelyName(name: string): string | undefined {
  const candidates = [...KNOWN_ENV_NAMES].filter((known) => known !== 'SSOKIT_TEST')
  const rest = name.replace(FAMILY, '')
  // The right setting under another family's prefix: SSOKIT_CLIENT_ID for OIDC_CLIENT_ID.
  const sameRest = candidates.find((known) => known.replace(FAMILY, '') === rest)
  if (sameRest !== undefined) return sameRest
  let best: string | undefined
  let bestDistance = Infinity
  for (const known of candidates) {
    const d = distance(name, known)
    if (d < bestDistance) {
      best = known
      bestDistance = d
    }
  }
  if (best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 6))) return best
  // A known name with something changed at its end: OIDC_ISSUER_URL, SSOKIT_ALLOWED_ALGORITHMS.
  return candidates
    .filter((known) => commonPrefix(name, known) >= Math.max(10, known.length - 2))
    .sort((a, b) => commonPrefix(name, b) - commonPrefix(name, a))[0]
}

function warning(name: string, reason: string, message: string): SsoEvent {
  return { type: 'config_warning', level: 'warn', message, reason, name }
}

/**
 * Warnings for the names of `env` that no part of ssokit reads: unknown names (with the likely
 * intended one), tsgauth names ssokit has no use for, and `OIDC_*` names read without the
 * `TSGAUTH_OIDC_PREFIX` in force.
 */
export function environmentWarnings(env: Environment, prefix: string): SsoEvent[] {
  const out: SsoEvent[] = []
  for (const name of Object.keys(env).sort()) {
    if (env[name] === undefined) continue
    let base = name
    if (prefix !== '' && name.startsWith(prefix) && FAMILY.test(name.slice(prefix.length))) {
      base = name.slice(prefix.length)
      if (!base.startsWith('OIDC_')) {
        out.push(
          warning(
            name,
            'env_prefixed',
            `${name} is ignored: TSGAUTH_OIDC_PREFIX applies to OIDC_ names only` +
              (KNOWN_ENV_NAMES.has(base) ? `: did you mean ${base}?` : '.'),
          ),
        )
        continue
      }
    } else if (!FAMILY.test(name)) {
      continue
    } else if (prefix !== '' && name.startsWith('OIDC_')) {
      const intended = `${prefix}${name}`
      if (KNOWN_ENV_NAMES.has(name) || NOT_USED[name] !== undefined) {
        out.push(
          warning(
            name,
            'env_prefixed',
            `${name} is ignored because TSGAUTH_OIDC_PREFIX is "${prefix}": ` +
              `did you mean ${intended}?`,
          ),
        )
        continue
      }
    }
    if (KNOWN_ENV_NAMES.has(base)) continue
    const why = NOT_USED[base]
    if (why !== undefined) {
      out.push(warning(name, 'env_not_used', `${name} is ignored: ${why}.`))
      continue
    }
    const likely = likelyName(base)
    const shown =
      likely === undefined ? undefined : likely.startsWith('OIDC_') ? `${prefix}${likely}` : likely
    out.push(
      warning(
        name,
        'env_unknown',
        `${name} is not a setting ssokit reads, so it is ignored` +
          (shown === undefined ? '.' : `: did you mean ${shown}?`),
      ),
    )
  }
  return out
}
