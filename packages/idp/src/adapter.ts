import type { UnknownRecord } from 'oidc-provider'

interface Entry {
  payload: UnknownRecord
  expiresAt: number
}

const GRANTABLE = new Set([
  'AccessToken',
  'AuthorizationCode',
  'RefreshToken',
  'DeviceCode',
  'BackchannelAuthenticationRequest',
])

/**
 * The in-memory store behind one idp instance. Entries expire lazily (checked when read and
 * swept now and then on write) so a stopped idp leaves no timer behind.
 */
export class MemoryStore {
  readonly #entries = new Map<string, Entry>()
  readonly #index = new Map<string, string>()
  readonly #grants = new Map<string, Set<string>>()
  #writes = 0

  get(key: string): UnknownRecord | undefined {
    const entry = this.#entries.get(key)
    if (!entry) return undefined
    if (entry.expiresAt <= Date.now()) {
      this.#entries.delete(key)
      return undefined
    }
    return entry.payload
  }

  set(key: string, payload: UnknownRecord, expiresIn: number | undefined): void {
    if (++this.#writes % 500 === 0) this.#sweep()
    const expiresAt = typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : Infinity
    this.#entries.set(key, { payload, expiresAt })
  }

  delete(key: string): void {
    this.#entries.delete(key)
  }

  index(name: string, value: string | undefined): string | undefined {
    return value === undefined ? undefined : this.#index.get(`${name}:${value}`)
  }

  setIndex(name: string, value: string, key: string): void {
    this.#index.set(`${name}:${value}`, key)
  }

  addToGrant(grantId: string, key: string): void {
    let members = this.#grants.get(grantId)
    if (!members) this.#grants.set(grantId, (members = new Set()))
    members.add(key)
  }

  takeGrant(grantId: string): string[] {
    const members = [...(this.#grants.get(grantId) ?? [])]
    this.#grants.delete(grantId)
    return members
  }

  clear(): void {
    this.#entries.clear()
    this.#index.clear()
    this.#grants.clear()
  }

  #sweep(): void {
    const now = Date.now()
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key)
    for (const [name, key] of this.#index) if (!this.#entries.has(key)) this.#index.delete(name)
    for (const [grantId, members] of this.#grants) {
      for (const key of members) if (!this.#entries.has(key)) members.delete(key)
      if (members.size === 0) this.#grants.delete(grantId)
    }
  }
}

/** oidc-provider's storage adapter contract over a `MemoryStore`. */
export class MemoryAdapter {
  readonly #model: string
  readonly #store: MemoryStore

  constructor(model: string, store: MemoryStore) {
    this.#model = model
    this.#store = store
  }

  #key(id: string): string {
    return `${this.#model}:${id}`
  }

  upsert(id: string, payload: UnknownRecord, expiresIn?: number): Promise<void> {
    const key = this.#key(id)
    this.#store.set(key, payload, expiresIn)
    if (this.#model === 'Session' && typeof payload.uid === 'string') {
      this.#store.setIndex('sessionUid', payload.uid, key)
    }
    if (typeof payload.userCode === 'string')
      this.#store.setIndex('userCode', payload.userCode, key)
    if (GRANTABLE.has(this.#model) && typeof payload.grantId === 'string') {
      this.#store.addToGrant(payload.grantId, key)
    }
    return Promise.resolve()
  }

  find(id: string): Promise<UnknownRecord | undefined> {
    return Promise.resolve(this.#store.get(this.#key(id)))
  }

  findByUid(uid: string): Promise<UnknownRecord | undefined> {
    const key = this.#store.index('sessionUid', uid)
    return Promise.resolve(key === undefined ? undefined : this.#store.get(key))
  }

  findByUserCode(userCode: string): Promise<UnknownRecord | undefined> {
    const key = this.#store.index('userCode', userCode)
    return Promise.resolve(key === undefined ? undefined : this.#store.get(key))
  }

  consume(id: string): Promise<void> {
    const payload = this.#store.get(this.#key(id))
    if (payload) payload.consumed = Math.floor(Date.now() / 1000)
    return Promise.resolve()
  }

  destroy(id: string): Promise<void> {
    this.#store.delete(this.#key(id))
    return Promise.resolve()
  }

  revokeByGrantId(grantId: string): Promise<void> {
    for (const key of this.#store.takeGrant(grantId)) this.#store.delete(key)
    return Promise.resolve()
  }
}
