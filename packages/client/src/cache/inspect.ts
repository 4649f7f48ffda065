/**
 * The cache as `ssokit status` and `ssokit logout` see it: every credential file with what it is
 * for and whether it is usable, and their removal with the refresh token revoked first.
 */
import type { Credential, CredentialGrant } from '../credential.js'
import { isFresh } from '../expiry.js'
import { envLogger } from '../log.js'
import { ProviderClient } from '../provider.js'
import { cacheDirectory, type Environment } from './location.js'
import { CredentialCache } from './store.js'

export interface CachedCredential {
  /** The file name inside the cache directory. */
  readonly file: string
  readonly issuer: string
  readonly clientId: string
  readonly grant: CredentialGrant
  readonly audience: string | undefined
  readonly subject: string | undefined
  readonly username: string | undefined
  readonly expiresAt: Date | undefined
  /** The access token can be used now (it is not in its last minute). */
  readonly valid: boolean
  /** A refresh token is held, so a new access token needs no new grant. */
  readonly refreshable: boolean
}

export interface InspectOptions {
  readonly env?: Environment
  readonly clock?: () => number
  readonly fetch?: typeof fetch
}

function cacheOf(options: InspectOptions): CredentialCache {
  const env = options.env ?? process.env
  return new CredentialCache(cacheDirectory(env), envLogger(env))
}

function describe(file: string, credential: Credential, now: number): CachedCredential {
  const { key } = credential
  return Object.freeze({
    file,
    issuer: key.issuer,
    clientId: key.clientId,
    grant: key.grant,
    audience: key.audience,
    subject: credential.subjectName,
    username: credential.username,
    expiresAt: credential.expiresAt === undefined ? undefined : new Date(credential.expiresAt),
    valid: isFresh(now, credential.obtainedAt, credential.renewAt),
    refreshable:
      credential.refreshToken !== undefined &&
      (credential.refreshExpiresAt === undefined || now < credential.refreshExpiresAt),
  })
}

/** Every credential in the cache directory; files that are not credentials are skipped. */
export async function listCredentials(options: InspectOptions = {}): Promise<CachedCredential[]> {
  const now = (options.clock ?? Date.now)()
  const entries = await cacheOf(options).list()
  return entries.flatMap(({ file, credential }) =>
    credential === undefined ? [] : [describe(file, credential, now)],
  )
}

export interface RemoveOptions extends InspectOptions {
  /** The client's secret, for providers that revoke a confidential client's tokens only with it. */
  readonly clientSecret?: string
}

/**
 * Revokes the refresh token of one cached credential (when it has one and the provider has a
 * revocation endpoint), then deletes the file, also when the revocation failed: the error is
 * rethrown after. Resolves with whether a token was revoked.
 */
export async function removeCredential(
  file: string,
  options: RemoveOptions = {},
): Promise<boolean> {
  const cache = cacheOf(options)
  const entry = (await cache.list()).find((e) => e.file === file)
  if (entry === undefined) return false
  const credential = entry.credential
  let failure: Error | undefined
  let revoked = false
  if (credential?.refreshToken !== undefined) {
    const provider = new ProviderClient({
      issuer: new URL(credential.key.issuer),
      clientId: credential.key.clientId,
      clientSecret: options.clientSecret,
      tokenEndpointAuth: undefined,
      fetch: options.fetch ?? ((input, init) => fetch(input, init)),
    })
    try {
      revoked = await provider.revoke(credential.refreshToken)
    } catch (error) {
      failure = error instanceof Error ? error : new Error(String(error))
    }
  }
  await cache.deleteFile(file)
  if (failure !== undefined) throw failure
  return revoked
}
