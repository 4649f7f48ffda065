import type { SsoErrorCode } from '../errors.js'

/** How a failed sign-in is logged: the level, a reason and a sentence for operators. */
export interface LoginFailureLog {
  readonly level: 'info' | 'warn' | 'error'
  readonly reason?: string | undefined
  /** The log line; the page's first sentence when absent. */
  readonly message?: string | undefined
  /** The provider URL involved, for the event. */
  readonly url?: string | undefined
}

export interface LoginFailureOptions {
  readonly cause?: unknown
  readonly retryAfter?: number
  /** The error code reported with the event. Default `login_failed` (`provider_unavailable` for 503). */
  readonly code?: SsoErrorCode
  readonly log?: LoginFailureLog
}

/** A sign-in that cannot complete: the callback answers it with a page, never a redirect. */
export class LoginFailure extends Error {
  override readonly name = 'LoginFailure'
  readonly status: number
  readonly retryAfter: number | undefined
  readonly detail: readonly string[]
  readonly code: SsoErrorCode
  readonly log: LoginFailureLog
  constructor(
    status: number,
    message: string,
    detail: readonly string[] = [],
    options: LoginFailureOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.status = status
    this.retryAfter = options.retryAfter
    this.detail = detail
    this.code = options.code ?? (status === 503 ? 'provider_unavailable' : 'login_failed')
    this.log = options.log ?? { level: status === 503 ? 'warn' : 'info' }
  }
}
