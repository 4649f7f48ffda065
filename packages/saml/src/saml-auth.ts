/**
 * `createSamlAuth`: a SAML 2.0 service provider that is a `SessionAuth`, so the adapters and
 * the proxy take it wherever they take `createSessionAuth`. Its sessions use the session kit of
 * `@ssokit/core`: the same signed cookie, store, `returnTo` rule and rejections (a redirect to
 * sign in for a navigation, 401 JSON for an XHR).
 */
import {
  SsoError,
  type Identity,
  type RequestLike,
  type ResponseParts,
  type SessionAuth,
} from '@ssokit/core'
import {
  applyPages,
  Keyring,
  loginUrl,
  pageResponse,
  rejectSession,
  SessionRejections,
  withRefusalMark,
} from '@ssokit/core/session-kit'
import { acs } from './acs.js'
import type { SamlContext } from './context.js'
import { IdpMetadataError, IdpMetadataSourceReader } from './idp-metadata.js'
import { login } from './login.js'
import { logout, slo } from './logout.js'
import { resolveSamlOptions, type ResolvedSamlConfig, type SamlAuthOptions } from './options.js'
import { SamlSessionReader } from './session-reader.js'
import { spMetadata } from './sp-metadata.js'

export interface SamlAuth extends SessionAuth {
  /** `<publicUrl><prefix>/saml/metadata`: the SP metadata an IdP or federation registers. */
  readonly metadataUrl: string
  /** The SP metadata XML (entity id, ACS, SLO, certificates). */
  metadata(): string
}

function methodNotAllowed(allow: string): Response {
  return new Response(null, { status: 405, headers: { allow, 'cache-control': 'no-store' } })
}

class SamlAuthImpl implements SamlAuth {
  readonly realm: string
  readonly prefix: string
  readonly logoutUrl: string
  readonly metadataUrl: string
  readonly #config: ResolvedSamlConfig
  readonly #context: SamlContext
  readonly #ownsStore: boolean

  constructor(options: SamlAuthOptions) {
    const config = resolveSamlOptions(options)
    this.#config = config
    this.realm = config.realm
    this.prefix = config.prefix
    this.logoutUrl = `${config.publicUrl}${config.prefix}/logout`
    this.metadataUrl = config.metadataUrl
    const keyring = new Keyring(config.secrets)
    const rejections = new SessionRejections()
    this.#context = Object.freeze({
      config,
      keyring,
      rejections,
      idp: new IdpMetadataSourceReader(config.idp, config.fetch, config.now, (error) => {
        config.onEvent({
          type: 'idp_metadata_unavailable',
          reason: 'metadata',
          message: `A refresh of the IdP metadata failed, the last good copy stays in use: ${error.message}`,
        })
      }),
      reader: new SamlSessionReader(config, keyring, rejections),
    })
    this.#ownsStore = options.store === undefined
  }

  metadata(): string {
    return spMetadata(this.#config)
  }

  loginUrl(returnTo = '/'): string {
    return loginUrl(this.#config, returnTo)
  }

  async ready(): Promise<void> {
    try {
      await this.#context.idp.get()
    } catch (error) {
      // The metadata's own sentence (unreachable, unsigned, expired, ...) says what to fix.
      const reason = error instanceof IdpMetadataError ? ` ${error.message}` : ''
      throw new SsoError('provider_unavailable', `The IdP metadata cannot be used.${reason}`, {
        cause: error,
      })
    }
    const store = this.#config.store
    try {
      if (store.ready !== undefined) await store.ready()
      else await store.get('readiness-probe')
    } catch (error) {
      throw new SsoError('session_store_unavailable', 'The session store cannot be reached.', {
        cause: error,
      })
    }
  }

  async close(): Promise<void> {
    if (this.#ownsStore) await this.#config.store.close()
  }

  async handle(request: Request): Promise<Response | undefined> {
    let url: URL
    try {
      url = new URL(request.url)
    } catch {
      return undefined
    }
    const { prefix, pages } = this.#config
    if (!url.pathname.startsWith(`${prefix}/`)) return undefined
    const response = applyPages(
      pages,
      await this.#route(url.pathname.slice(prefix.length), request, url),
    )
    // A body a route left unread must not be drained to keep the connection: it closes instead.
    if (response !== undefined && request.body !== null && !request.bodyUsed)
      response.headers.set('connection', 'close')
    return response
  }

  async #route(route: string, request: Request, url: URL): Promise<Response | undefined> {
    const context = this.#context
    const method = request.method
    try {
      switch (route) {
        case '/login':
          return method === 'GET' ? await login(context, request, url) : methodNotAllowed('GET')
        case '/logout':
          return method === 'GET' || method === 'POST'
            ? await logout(context, request)
            : methodNotAllowed('GET, POST')
        case '/saml/acs':
          return method === 'POST' ? await acs(context, request) : methodNotAllowed('POST')
        case '/saml/slo':
          return method === 'GET' || method === 'POST'
            ? await slo(context, request, url)
            : methodNotAllowed('GET, POST')
        case '/saml/metadata':
          return method === 'GET'
            ? new Response(this.metadata(), {
                headers: {
                  'content-type': 'application/samlmetadata+xml; charset=utf-8',
                  'cache-control': 'max-age=300',
                },
              })
            : methodNotAllowed('GET')
        default:
          return undefined
      }
    } catch {
      return pageResponse(500, {
        title: 'Something went wrong',
        paragraphs: ['The sign-in service hit an unexpected error. Please try again.'],
      })
    }
  }

  authenticate(request: RequestLike): Promise<Identity> {
    return this.#context.reader.authenticate(request)
  }

  reject(error: unknown, request: RequestLike): ResponseParts {
    const parts = rejectSession(this.#config, this.#context.rejections, error, request)
    return withRefusalMark(this.#context, error, request, parts)
  }
}

/** A SAML 2.0 service provider with browser sessions, for one identity provider. */
export function createSamlAuth(options: SamlAuthOptions): SamlAuth {
  return new SamlAuthImpl(options)
}
