/**
 * `ssokit demo` as a function: the development identity provider and the demo application,
 * started together and stopped together.
 */
import type { SessionStore } from '@ssokit/core'
import { DEFAULT_IDP_CONFIG, startIdp, type RunningIdp } from '@ssokit/idp'
import { RedisSessionStore } from '@ssokit/redis'
import { assertLocalhostFree, listenFailure } from '../listen.js'
import { startDemoApp, type RunningDemoApp } from './app.js'
import { redactUrl } from '../redact.js'

export { DEMO_CLI_CLIENT_ID, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, startDemoApp } from './app.js'
export type { DemoAppOptions, RunningDemoApp } from './app.js'

export interface DemoOptions {
  /** Port of the identity provider; `0` picks a free one. Default 4000. */
  readonly idpPort?: number
  /** Port of the application; `0` picks a free one. Default 3000. */
  readonly appPort?: number
  /** Keep sessions in Redis at this URL (`redis://127.0.0.1:6379`). Default: in memory. */
  readonly redis?: string
  /** Receives a line for each unexpected failure inside the application. */
  readonly log?: (line: string) => void
  /** Offer Kerberos sign-in: principals `alice@<realm>` sign in as alice. Default: off. */
  readonly kerberos?: { readonly keytab: string; readonly realm: string }
}

export interface RunningDemo {
  readonly idp: RunningIdp
  readonly app: RunningDemoApp
  close(): Promise<void>
}

/** Which part could not start, so the command line can say what to change. */
export class DemoStartError extends Error {
  override readonly name = 'DemoStartError'
  constructor(
    message: string,
    readonly part: 'idp' | 'app' | 'redis',
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

function startFailure(error: unknown, part: 'idp' | 'app', port: number): DemoStartError {
  const failure =
    part === 'idp'
      ? listenFailure(error, 'identity provider', '--idp-port', port)
      : listenFailure(error, 'application', '--app-port', port)
  return new DemoStartError(failure.message, part, { cause: error })
}

async function openRedis(url: string): Promise<SessionStore> {
  let store: RedisSessionStore
  try {
    store = new RedisSessionStore({ url })
  } catch (error) {
    throw new DemoStartError(
      `--redis: ${error instanceof Error ? error.message : String(error)}`,
      'redis',
      { cause: error },
    )
  }
  try {
    // Checked up front, so a wrong password or an unreachable server is reported now rather
    // than at the first login.
    await store.ready()
  } catch (error) {
    await store.close().catch(() => undefined)
    const reason = error instanceof Error ? error.message : String(error)
    throw new DemoStartError(`cannot use --redis ${redactUrl(url)}: ${reason}`, 'redis', {
      cause: error,
    })
  }
  return store
}

/**
 * Starts the identity provider (built-in realm: alice/alice, bob/bob) and the demo application
 * using it. Ports `0` pick free ones; the returned objects carry the real URLs.
 */
export async function startDemo(options: DemoOptions = {}): Promise<RunningDemo> {
  const idpPort = options.idpPort ?? 4000
  const appPort = options.appPort ?? 3000
  if (idpPort === appPort && appPort !== 0) {
    throw new DemoStartError(
      `the identity provider and the application cannot share port ${appPort}; give --idp-port and --app-port different values`,
      'app',
    )
  }
  const store = options.redis === undefined ? undefined : await openRedis(options.redis)

  let idp: RunningIdp
  try {
    idp = await startIdp({
      port: idpPort,
      log: false,
      ...(options.kerberos === undefined
        ? {}
        : { config: { ...DEFAULT_IDP_CONFIG, kerberos: { ...options.kerberos } } }),
    })
  } catch (error) {
    await store?.close().catch(() => undefined)
    throw startFailure(error, 'idp', idpPort)
  }

  let app: RunningDemoApp
  try {
    app = await startDemoApp({
      port: appPort,
      issuer: idp.issuer,
      ...(store === undefined ? {} : { store, storeName: `Redis (${redactUrl(options.redis)})` }),
      ...(options.log === undefined ? {} : { log: options.log }),
    })
  } catch (error) {
    await idp.close()
    await store?.close().catch(() => undefined)
    throw startFailure(error, 'app', appPort)
  }
  try {
    // The banner and the login redirects say localhost, which a browser may resolve to ::1.
    await assertLocalhostFree(app.port, '127.0.0.1')
  } catch (error) {
    await app.close()
    await idp.close()
    await store?.close().catch(() => undefined)
    throw startFailure(error, 'app', app.port)
  }

  let closing: Promise<void> | undefined
  return {
    idp,
    app,
    close() {
      closing ??= (async () => {
        await app.close()
        await idp.close()
        await store?.close()
      })()
      return closing
    },
  }
}

export { redactUrl }
