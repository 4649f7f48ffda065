import { SsoTypeError } from '../errors.js'
import { SIGNING_ALGORITHMS } from './algorithms.js'
import { environmentWarnings, type Environment } from './env.js'
import { stderrLogger, type SsoEvent, type SsoEventHandler } from './events.js'
import {
  claimPathProblem,
  roleSourceProblem,
  TOKEN_TYPE_POLICIES,
  type RoleSource,
  type TokenTypePolicy,
} from './claims.js'
import type { VerifierOptions } from './verifier.js'

/** Endpoints of a Keycloak realm, derived from its issuer URL. */
export interface ProviderPreset {
  readonly issuer: string
  readonly jwksUri: string
  readonly authorizationEndpoint: string
  readonly tokenEndpoint: string
  readonly userinfoEndpoint: string
  readonly endSessionEndpoint: string
  readonly deviceAuthorizationEndpoint: string
  readonly introspectionEndpoint: string
  readonly revocationEndpoint: string
  /** CERN's client-credentials endpoint for application identities (`/api-access/token`). */
  readonly apiAccessTokenEndpoint: string
}

/** The endpoints of a Keycloak realm: `<issuer>/protocol/openid-connect/...`. */
export function keycloakPreset(issuer: string): ProviderPreset {
  if (typeof issuer !== 'string' || !/^https?:\/\/[^/]+\/(?:auth\/)?realms\/[^/]+$/.test(issuer)) {
    throw new SsoTypeError('a Keycloak issuer looks like https://<host>/auth/realms/<realm>')
  }
  const oidc = `${issuer}/protocol/openid-connect`
  return Object.freeze({
    issuer,
    jwksUri: `${oidc}/certs`,
    authorizationEndpoint: `${oidc}/auth`,
    tokenEndpoint: `${oidc}/token`,
    userinfoEndpoint: `${oidc}/userinfo`,
    endSessionEndpoint: `${oidc}/logout`,
    deviceAuthorizationEndpoint: `${oidc}/auth/device`,
    introspectionEndpoint: `${oidc}/token/introspect`,
    revocationEndpoint: `${oidc}/revoke`,
    apiAccessTokenEndpoint: `${issuer}/api-access/token`,
  })
}

export const CERN_HOST = 'auth.cern.ch'
export const CERN_ISSUER = `https://${CERN_HOST}/auth/realms/cern`

/** CERN's single sign-on: realm `cern` unless another one is named. */
export function cernPreset(realm = 'cern'): ProviderPreset {
  if (typeof realm !== 'string' || !/^[A-Za-z0-9_-]+$/.test(realm)) {
    throw new SsoTypeError('realm must be a Keycloak realm name (letters, digits, "-" and "_")')
  }
  return keycloakPreset(`https://${CERN_HOST}/auth/realms/${realm}`)
}

export const presets: { readonly cern: ProviderPreset } = Object.freeze({ cern: cernPreset() })

export type { Environment } from './env.js'

/** Every asymmetric algorithm, what tsgauth's `TSGAUTH_ALLOWED_ALGS=ALL` becomes (never `none` or HS*). */
const ALL_ALGORITHMS: readonly string[] = SIGNING_ALGORITHMS

export function read(env: Environment, name: string): string | undefined {
  const value = env[name]?.trim()
  return value === undefined || value === '' ? undefined : value
}

/** `SSOKIT_AUDIENCE`: a comma list of audiences, for APIs whose audience is not the client id. */
export function audienceFromEnv(env: Environment): readonly string[] | undefined {
  const text = read(env, 'SSOKIT_AUDIENCE')
  if (text === undefined) return undefined
  const list = text
    .split(',')
    .map((audience) => audience.trim())
    .filter((audience) => audience !== '')
  if (list.length === 0 || list.includes('*')) {
    throw new SsoTypeError('SSOKIT_AUDIENCE must be a comma list of audiences, never "*"')
  }
  return Object.freeze(list)
}

/** `SSOKIT_TOKEN_TYPE`: which JWTs are access tokens. */
export function tokenTypeFromEnv(env: Environment): TokenTypePolicy | undefined {
  const text = read(env, 'SSOKIT_TOKEN_TYPE')
  if (text === undefined) return undefined
  const policy = TOKEN_TYPE_POLICIES.find((p) => p.toLowerCase() === text.toLowerCase())
  if (policy === undefined) {
    throw new SsoTypeError(
      `SSOKIT_TOKEN_TYPE must be one of ${TOKEN_TYPE_POLICIES.join(', ')}, not ${JSON.stringify(text)}`,
    )
  }
  return policy
}

/** `SSOKIT_ROLES_CLAIM`: `auto`, one claim path, or a comma list of them. */
export function rolesFromEnv(env: Environment): RoleSource | undefined {
  const text = read(env, 'SSOKIT_ROLES_CLAIM')
  if (text === undefined) return undefined
  const paths = text
    .split(',')
    .map((path) => path.trim())
    .filter((path) => path !== '')
  const [first] = paths
  const roles: RoleSource = paths.length === 1 && first !== undefined ? first : Object.freeze(paths)
  const problem = roles === 'auto' ? undefined : roleSourceProblem(roles)
  if (problem !== undefined) throw new SsoTypeError(`SSOKIT_ROLES_CLAIM ${problem}`)
  return roles
}

/** Options of `loadConfig` and `loadSessionConfig`. */
export interface LoadConfigOptions {
  /**
   * The provider to assume when `OIDC_ISSUER` is unset: `'cern'` (CERN's realm, tsgauth's
   * default). `SSOKIT_PRESET=cern` does the same. Without either, `OIDC_ISSUER` is required.
   */
  readonly preset?: 'cern' | undefined
  /**
   * Receives the warnings about variables that are set and not used (`config_warning`). Default:
   * printed to stderr.
   */
  readonly onEvent?: SsoEventHandler | undefined
}

export function checkEnvironment(env: unknown, caller: string): asserts env is Environment {
  if (typeof env !== 'object' || env === null) {
    throw new SsoTypeError(
      `${caller} needs an environment record such as process.env`,
      'ERR_INVALID_ARG_TYPE',
    )
  }
}

export function checkLoadOptions(options: unknown, caller: string): LoadConfigOptions {
  if (options === undefined) return {}
  if (typeof options !== 'object' || options === null) {
    throw new SsoTypeError(`${caller}: options must be an object`, 'ERR_INVALID_ARG_TYPE')
  }
  const { preset, onEvent } = options as Record<string, unknown>
  if (preset !== undefined && preset !== 'cern') {
    throw new SsoTypeError(`${caller}: preset must be "cern"`)
  }
  if (onEvent !== undefined && typeof onEvent !== 'function') {
    throw new SsoTypeError(`${caller}: onEvent must be a function`, 'ERR_INVALID_ARG_TYPE')
  }
  return options
}

/** `TSGAUTH_OIDC_PREFIX`: the prefix of the `OIDC_*` names. */
export function oidcPrefix(env: Environment): string {
  return read(env, 'TSGAUTH_OIDC_PREFIX') ?? ''
}

/** Hands warnings to the hook, or to stderr; a failing hook never stops start-up. */
export function reportWarnings(
  events: readonly SsoEvent[],
  onEvent: SsoEventHandler | undefined,
): void {
  if (events.length === 0) return
  const handler = onEvent ?? stderrLogger()
  for (const event of events) {
    try {
      handler(Object.freeze(event))
    } catch {
      // Reporting never changes the configuration.
    }
  }
}

/** The issuer: `OIDC_ISSUER`, else the preset asked for, else a `TypeError` saying what to set. */
function issuerFromEnv(env: Environment, prefix: string, preset: 'cern' | undefined): string {
  const name = `${prefix}OIDC_ISSUER`
  const issuer = read(env, name)
  if (issuer !== undefined) return issuer
  const presetText = read(env, 'SSOKIT_PRESET')
  if (presetText !== undefined && presetText.toLowerCase() !== 'cern') {
    throw new SsoTypeError(
      `SSOKIT_PRESET must be cern (the only preset), not ${JSON.stringify(presetText)}`,
    )
  }
  if (preset === 'cern' || presetText !== undefined) return CERN_ISSUER
  throw new SsoTypeError(
    `${name} is not set: set it to your provider's issuer URL (its discovery document is ` +
      `<issuer>/.well-known/openid-configuration). For CERN's single sign-on (${CERN_ISSUER}, ` +
      `tsgauth's default), set SSOKIT_PRESET=cern instead.`,
    'ERR_MISSING_OPTION',
  )
}

/**
 * The verifier options of an environment, without the warnings: `loadConfig` and
 * `loadSessionConfig` both read them, each with its own description of the client id.
 */
export function verifierFromEnv(
  env: Environment,
  prefix: string,
  preset: 'cern' | undefined,
  clientIdMeaning: string,
): VerifierOptions {
  const clientIdName = `${prefix}OIDC_CLIENT_ID`
  const clientId = read(env, clientIdName)
  if (clientId === undefined || clientId === '*') {
    throw new SsoTypeError(`${clientIdName} is not set: ${clientIdMeaning}`, 'ERR_MISSING_OPTION')
  }
  const issuer = issuerFromEnv(env, prefix, preset)
  const jwksUri = read(env, `${prefix}OIDC_JWKS_URI`)
  const algsName =
    read(env, 'SSOKIT_ALLOWED_ALGS') !== undefined ? 'SSOKIT_ALLOWED_ALGS' : 'TSGAUTH_ALLOWED_ALGS'
  const algs = read(env, algsName)
  let algorithms: readonly string[] | undefined
  if (algs !== undefined) {
    algorithms =
      algs.toUpperCase() === 'ALL'
        ? ALL_ALGORITHMS
        : algs
            .split(',')
            .map((alg) => alg.trim())
            .filter((alg) => alg !== '')
    const bad = algorithms.find((alg) => !ALL_ALGORITHMS.includes(alg))
    if (algorithms.length === 0 || bad !== undefined) {
      throw new SsoTypeError(
        `${algsName} must be ALL or a comma list of ${ALL_ALGORITHMS.join(', ')}` +
          (bad === undefined ? '' : ` (got "${bad}")`),
      )
    }
  }
  const toleranceText = read(env, 'SSOKIT_CLOCK_TOLERANCE')
  let clockTolerance: number | undefined
  if (toleranceText !== undefined) {
    clockTolerance = Number(toleranceText)
    if (!/^\d+$/.test(toleranceText) || clockTolerance > 600) {
      throw new SsoTypeError(
        'SSOKIT_CLOCK_TOLERANCE must be a whole number of seconds between 0 and 600',
      )
    }
  }
  const roles = rolesFromEnv(env)
  const tokenType = tokenTypeFromEnv(env)
  const audience = audienceFromEnv(env)
  const usernameClaim = read(env, 'SSOKIT_USERNAME_CLAIM')
  const usernameProblem = usernameClaim === undefined ? undefined : claimPathProblem(usernameClaim)
  if (usernameProblem !== undefined)
    throw new SsoTypeError(`SSOKIT_USERNAME_CLAIM ${usernameProblem}`)
  const options: VerifierOptions = {
    issuer,
    clientId,
    ...(roles === undefined ? {} : { roles }),
    ...(usernameClaim === undefined ? {} : { usernameClaim }),
    ...(tokenType === undefined ? {} : { tokenType }),
    ...(audience === undefined ? {} : { audience }),
    ...(jwksUri === undefined ? {} : { jwksUri }),
    ...(algorithms === undefined ? {} : { algorithms: Object.freeze([...algorithms]) }),
    ...(clockTolerance === undefined ? {} : { clockTolerance }),
  }
  return Object.freeze(options)
}

/** `true`, `1`, `yes`, `on` (and their opposites) in any case, as tsgauth's settings read them. */
export function booleanFromEnv(env: Environment, name: string): boolean | undefined {
  const text = read(env, name)?.toLowerCase()
  if (text === undefined) return undefined
  if (['true', '1', 'yes', 'on', 't', 'y'].includes(text)) return true
  if (['false', '0', 'no', 'off', 'f', 'n'].includes(text)) return false
  throw new SsoTypeError(`${name} must be true or false, not ${JSON.stringify(text)}`)
}

/**
 * Verifier options from environment variables, with tsgauth's names so CERN deployments move
 * over unchanged:
 *
 * - `OIDC_CLIENT_ID` (required), `OIDC_ISSUER` (required unless `SSOKIT_PRESET=cern` or the
 *   `preset` option asks for CERN's), `OIDC_JWKS_URI` (default: discovery);
 * - `SSOKIT_ALLOWED_ALGS` or `TSGAUTH_ALLOWED_ALGS`: comma list, or `ALL` for every asymmetric one;
 * - `SSOKIT_CLOCK_TOLERANCE`: seconds (default 30; tsgauth used 120);
 * - `SSOKIT_ROLES_CLAIM`: where roles come from, `auto` or a comma list of claims or dotted paths;
 * - `SSOKIT_USERNAME_CLAIM`: the username claim tried after `preferred_username`;
 * - `SSOKIT_AUDIENCE`: the audiences tokens may name instead of the client id (comma list);
 * - `SSOKIT_TOKEN_TYPE`: `auto`, `at+jwt`, `Bearer` or `jwt` (see `tokenType`);
 * - `TSGAUTH_OIDC_PREFIX`: a prefix for the `OIDC_*` names (`MYAPP_` reads `MYAPP_OIDC_CLIENT_ID`).
 *
 * Every other `OIDC_*`, `SSOKIT_*` or `TSGAUTH_*` variable that is set gets a `config_warning`
 * naming it (and the likely intended name), as does `OIDC_SESSION_AUTH_ALLOWED=true`: browser
 * sessions come from `loadSessionConfig`. The core never reads `process` itself: pass
 * `process.env` (or any record).
 */
export function loadConfig(env: Environment, options?: LoadConfigOptions): VerifierOptions {
  checkEnvironment(env, 'loadConfig')
  const { preset, onEvent } = checkLoadOptions(options, 'loadConfig')
  const prefix = oidcPrefix(env)
  const warnings = environmentWarnings(env, prefix)
  const sessionsName = `${prefix}OIDC_SESSION_AUTH_ALLOWED`
  if (read(env, sessionsName) !== undefined && booleanFromEnv(env, sessionsName) === true) {
    warnings.push({
      type: 'config_warning',
      level: 'warn',
      message:
        `${sessionsName} is true, but loadConfig configures bearer tokens only: browsers are ` +
        'not signed in. Use createSessionAuth with loadSessionConfig for browser sessions.',
      reason: 'env_ignored',
      name: sessionsName,
    })
  }
  // Before anything can fail: a misspelt name is often why a required one is missing.
  reportWarnings(warnings, onEvent)
  return verifierFromEnv(
    env,
    prefix,
    preset,
    "set it to this API's client id, the audience its tokens must name",
  )
}
