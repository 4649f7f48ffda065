/** Loads the SAML session a request's cookie names: one store read, lifetime and idle checks. */
import type { Identity, RequestLike } from '@ssokit/core'
import {
  asStoreError,
  cookieValue,
  RoleSet,
  SESSION_PURPOSE,
  type Keyring,
  type SessionRejections,
} from '@ssokit/core/session-kit'
import type { ResolvedSamlConfig } from './options.js'
import { decodeSamlRecord, writeSamlRecord, type SamlSessionRecord } from './record.js'

const MAX_CACHED = 1000

function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value
  Object.freeze(value)
  for (const child of Object.values(value)) deepFreeze(child)
  return value
}

export function identityOf(record: SamlSessionRecord): Identity {
  const claims = deepFreeze({
    iss: record.issuer,
    sub: record.sub,
    name_id: record.nameId,
    name_id_format: record.nameIdFormat,
    session_index: record.sessionIndex,
    attributes: record.attributes,
  })
  return Object.freeze({
    subject: record.sub,
    username: record.username,
    email: record.email,
    name: record.name,
    roles: new RoleSet(record.roles),
    kind: 'user',
    via: 'session',
    claims,
  })
}

export class SamlSessionReader {
  readonly #config: ResolvedSamlConfig
  readonly #keyring: Keyring
  readonly #rejections: SessionRejections
  /** Identities by session id, served only for the exact stored text they were built from. */
  readonly #identities = new Map<string, { readonly data: string; readonly identity: Identity }>()

  constructor(config: ResolvedSamlConfig, keyring: Keyring, rejections: SessionRejections) {
    this.#config = config
    this.#keyring = keyring
    this.#rejections = rejections
  }

  forget(sessionId: string): void {
    this.#identities.delete(sessionId)
  }

  sessionId(cookieHeader: readonly string[]): string | undefined {
    const cookie = cookieValue(cookieHeader, this.#config.sessionCookie)
    return cookie === undefined ? undefined : this.#keyring.verify(cookie, SESSION_PURPOSE)
  }

  async authenticate(request: RequestLike): Promise<Identity> {
    const config = this.#config
    const rejections = this.#rejections
    const cookie = cookieValue(request.header('cookie'), config.sessionCookie)
    if (cookie === undefined) throw rejections.missing(false)
    const sessionId = this.#keyring.verify(cookie, SESSION_PURPOSE)
    if (sessionId === undefined) throw rejections.missing(true)
    let stored
    try {
      stored = await config.store.get(sessionId)
    } catch (error) {
      throw asStoreError(error)
    }
    if (stored === undefined) {
      this.forget(sessionId)
      throw rejections.missing(true)
    }
    const cached = this.#identities.get(sessionId)
    const record = decodeSamlRecord(stored.data)
    // A record this version cannot read (another login source's, a newer format) is not ours to delete.
    if (record === undefined) throw rejections.missing(false)
    const now = config.now()
    const idleMs = config.idleTimeoutS === undefined ? undefined : config.idleTimeoutS * 1000
    if (now >= record.expiresAt || (idleMs !== undefined && now - record.lastSeenAt > idleMs)) {
      this.forget(sessionId)
      await config.store.delete(sessionId).catch(() => undefined)
      throw rejections.missing(true, 'The session has expired.')
    }
    if (idleMs !== undefined && now - record.lastSeenAt > Math.min(60_000, idleMs / 4)) {
      await writeSamlRecord(config.store, sessionId, { ...record, lastSeenAt: now }, now).catch(
        () => undefined,
      )
    }
    if (cached !== undefined && cached.data === stored.data) return cached.identity
    const identity = identityOf(record)
    if (this.#identities.size >= MAX_CACHED) {
      const oldest = this.#identities.keys().next()
      if (oldest.done !== true) this.#identities.delete(oldest.value)
    }
    this.#identities.set(sessionId, { data: stored.data, identity })
    return identity
  }
}
