/** Time-based one-time codes (RFC 6238: SHA-1, 6 digits, 30 s), with each code accepted once. */
import { Secret, TOTP } from 'otpauth'

const PERIOD = 30

export class OtpVerifier {
  /** The last time step accepted per user: a code is never accepted twice. */
  readonly #lastStep = new Map<string, number>()

  constructor(readonly clock: () => number = Date.now) {}

  /** Whether `code` is the user's current code (or the one just before or after, for clock drift). */
  verify(username: string, secret: string, code: string): boolean {
    if (!/^\d{6}$/.test(code)) return false
    const totp = new TOTP({ secret: Secret.fromBase32(secret), digits: 6, period: PERIOD })
    const now = this.clock()
    const delta = totp.validate({ token: code, timestamp: now, window: 1 })
    if (delta === null) return false
    const step = Math.floor(now / 1000 / PERIOD) + delta
    if (step <= (this.#lastStep.get(username) ?? -1)) return false
    this.#lastStep.set(username, step)
    return true
  }
}
