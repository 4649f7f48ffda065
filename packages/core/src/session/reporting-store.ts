/**
 * The session store as the session module uses it: the same calls, with every failure reported
 * once per cause (and its recovery) to the event hook, so an outage is in the log, not only in
 * 503 answers.
 */
import { SsoTypeError } from '../errors.js'
import { loggable, type EventSink } from '../verify/events.js'
import type { SessionStore } from './store.js'

const GENERIC = 'The session store cannot be reached.'

/** The first message of an error or its causes that says more than the generic sentence. */
export function storeFailureText(error: unknown): string {
  let current: unknown = error
  for (let depth = 0; depth < 3 && current instanceof Error; depth++) {
    if (current.message !== '' && current.message !== GENERIC)
      return loggable(current.message, 300) ?? GENERIC
    current = current.cause
  }
  return GENERIC
}

/** The log line of a store failure. */
export function storeProblemMessage(error: unknown): string {
  const text = storeFailureText(error)
  return text.startsWith('The session store') ? text : `The session store cannot answer: ${text}`
}

function reasonOf(error: unknown): string | undefined {
  const cause: unknown = error instanceof Error ? error.cause : undefined
  const reason = (cause as { reason?: unknown } | undefined)?.reason
  return typeof reason === 'string' ? reason : undefined
}

export function reportingStore(store: SessionStore, events: EventSink): SessionStore {
  let failing = false
  const failed = (error: unknown): never => {
    if (!(error instanceof SsoTypeError)) {
      failing = true
      const message = storeProblemMessage(error)
      events.problem('store', message, {
        type: 'store_unavailable',
        level: 'error',
        message,
        reason: reasonOf(error),
        code: 'session_store_unavailable',
      })
    }
    throw error
  }
  const answered = <T>(value: T): T => {
    if (failing) {
      failing = false
      events.resolve('store', {
        type: 'store_recovered',
        level: 'info',
        message: 'The session store answers again.',
      })
    }
    return value
  }
  const watch = <T>(promise: Promise<T>): Promise<T> =>
    failing ? promise.then(answered, failed) : promise.catch(failed)
  const ready = store.ready?.bind(store)
  return Object.freeze({
    ...(ready === undefined ? {} : { ready: () => watch(ready()) }),
    get: (id) => watch(store.get(id)),
    set: (id, session, ttl) => watch(store.set(id, session, ttl)),
    delete: (id) => watch(store.delete(id)),
    deleteBySubject: (subject) => watch(store.deleteBySubject(subject)),
    deleteBySid: (sid) => watch(store.deleteBySid(sid)),
    lock: (name, ttl) => watch(store.lock(name, ttl)),
    close: () => store.close(),
  } satisfies SessionStore)
}
