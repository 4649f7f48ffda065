/**
 * How many trailing characters of a token index the cache. They lie in the signature, which is as
 * good as random for the tokens that get cached (only verified ones do).
 */
const FINGERPRINT = 8

/**
 * A small number from the token's last characters. Computed from character codes, so a lookup
 * neither copies nor hashes a string; a number key hashes for free.
 */
function fingerprint(token: string): number {
  let hash = token.length
  for (let i = Math.max(0, token.length - FINGERPRINT); i < token.length; i++) {
    hash = (hash * 31 + token.charCodeAt(i)) & 0x3fffffff
  }
  return hash
}

interface Slot<V> {
  readonly token: string
  readonly value: V
  /** The value of the insertion counter when the slot was last (re)inserted. */
  stamp: number
}

/**
 * Verified tokens by their full text, bounded, the least recently used dropped first.
 *
 * Built for the hit of a hot token on every request, where a plain `Map` keyed by the token
 * costs more than the rest of the check: the header value is a new string on every request, so
 * each lookup hashes the whole token (about 1 KB) again, and moving the entry to the young end
 * (a delete and an insert) does it twice more. Here a slot is found by a number made from the
 * token's length and last characters, and confirmed by comparing the whole token, so a hit never
 * answers for another token; two tokens with the same number only take turns in one slot.
 *
 * A hit moves its slot to the young end only when at least half the capacity of insertions and
 * moves happened since the slot last moved, so a hot entry is moved rarely; an entry is still
 * dropped only after more than `max / 2` insertions and moves since its last hit.
 */
export class TokenCache<V> {
  readonly #max: number
  readonly #refreshAfter: number
  readonly #slots = new Map<number, Slot<V>>()
  #clock = 0
  /** Fingerprints of tokens seen once lately, in two generations of `#refreshAfter` each. */
  #seen = new Set<number>()
  #seenBefore = new Set<number>()

  constructor(max: number) {
    this.#max = max
    this.#refreshAfter = Math.max(1, Math.ceil(max / 2))
  }

  /**
   * Whether a token just verified should be stored: only on its second sighting within about
   * the last `max / 2` to `max` first sightings. A token seen once and never again (an API with
   * many callers, each token used once) then costs no insertion, no eviction and no memory held
   * until it is evicted; a token used twice within the window the cache could serve is stored
   * on its second use. The memory is a number per token seen once, bounded by `max`.
   */
  admit(token: string): boolean {
    if (this.#max <= 0) return false
    const key = fingerprint(token)
    // A collision only admits a token a little early: a hit still compares the whole token.
    if (this.#seen.has(key) || this.#seenBefore.has(key)) return true
    this.#seen.add(key)
    if (this.#seen.size >= this.#refreshAfter) {
      this.#seenBefore = this.#seen
      this.#seen = new Set()
    }
    return false
  }

  get size(): number {
    return this.#slots.size
  }

  get(token: string): V | undefined {
    const key = fingerprint(token)
    const slot = this.#slots.get(key)
    if (slot === undefined || slot.token !== token) return undefined
    if (this.#clock - slot.stamp >= this.#refreshAfter) {
      this.#slots.delete(key)
      this.#insert(key, slot)
    }
    return slot.value
  }

  set(token: string, value: V): void {
    if (this.#max <= 0) return
    const key = fingerprint(token)
    this.#slots.delete(key)
    this.#insert(key, { token, value, stamp: 0 })
    if (this.#slots.size > this.#max) {
      const oldest = this.#slots.keys().next()
      if (oldest.done !== true) this.#slots.delete(oldest.value)
    }
  }

  delete(token: string): void {
    const key = fingerprint(token)
    if (this.#slots.get(key)?.token === token) this.#slots.delete(key)
  }

  #insert(key: number, slot: Slot<V>): void {
    this.#clock += 1
    slot.stamp = this.#clock
    this.#slots.set(key, slot)
  }
}
