/** A sign-in that cannot complete: the callback answers it with a page, never a redirect. */
export class LoginFailure extends Error {
  override readonly name = 'LoginFailure'
  readonly status: number
  readonly retryAfter: number | undefined
  readonly detail: readonly string[]
  constructor(
    status: number,
    message: string,
    detail: readonly string[] = [],
    options: { cause?: unknown; retryAfter?: number } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.status = status
    this.retryAfter = options.retryAfter
    this.detail = detail
  }
}
