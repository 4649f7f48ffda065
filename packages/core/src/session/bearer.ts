/**
 * The bearer half of a session authenticator: scripts and API clients send
 * `Authorization: Bearer <token>` to the same routes browsers reach with a cookie.
 */
import type { RoleSource } from '../verify/claims.js'
import { createBearerAuthenticator, type BearerAuthenticator } from '../verify/bearer.js'
import type { SsoEventHandler } from '../verify/events.js'
import type { VerifierOptions } from '../verify/verifier.js'
import type { ResolvedSessionConfig } from './options.js'

/**
 * Verifier options for bearer tokens on session routes. The issuer, the client id, the roles
 * source, the username claim and the realm are those of the session and cannot differ.
 */
export type SessionBearerOptions = Omit<
  VerifierOptions,
  'issuer' | 'clientId' | 'roles' | 'usernameClaim'
>

export function createBearerFor(
  config: ResolvedSessionConfig<RoleSource, SessionBearerOptions>,
  onEvent: SsoEventHandler,
): BearerAuthenticator {
  const options: SessionBearerOptions =
    config.bearer === false || config.bearer === undefined ? {} : config.bearer
  const expert = options.expert ?? {}
  return createBearerAuthenticator({
    ...options,
    onEvent: options.onEvent ?? onEvent,
    issuer: config.issuer,
    clientId: config.clientId,
    realm: config.realm,
    ...(config.roles === undefined ? {} : { roles: config.roles }),
    ...(config.usernameClaim === undefined ? {} : { usernameClaim: config.usernameClaim }),
    expert: {
      ...(config.fetch === undefined ? {} : { fetch: config.fetch }),
      ...expert,
    },
  })
}
