/** How a session store that cannot answer is reported: a 503 with a short retry hint. */
import { isSsoError, SsoError } from '../errors.js'

export const STORE_RETRY_AFTER_S = 5

export function asStoreError(error: unknown): SsoError {
  if (isSsoError(error) && error.code === 'session_store_unavailable') return error
  return new SsoError('session_store_unavailable', 'The session store cannot be reached.', {
    cause: error,
    retryAfter: STORE_RETRY_AFTER_S,
  })
}

/** The `Retry-After` seconds of a failure: the error's own hint, else `fallback`. */
export function retryAfterOf(error: unknown, fallback: number): number {
  return isSsoError(error) ? (error.retryAfter ?? fallback) : fallback
}
