import { environmentWarnings, logLine, type SessionStore } from '@ssokit/core'
import {
  loadProxyConfig,
  ProxyConfigError,
  startProxy,
  type ProxyConfig,
  type RunningProxy,
} from '@ssokit/proxy'
import { RedisSessionStore } from '@ssokit/redis'
import { redactUrl } from '../redact.js'
import { UsageError, type Command } from '../errors.js'
import { listenFailure } from '../listen.js'
import { hostOption, parseOptions, pathOption, portOption, type ValueOption } from '../options.js'
import { writePidFile } from '../pid-file.js'

const help = `Usage: ssokit proxy [options]

Puts single sign-on in front of a web application that knows nothing of it: browsers sign in
(authorization code + PKCE), scripts send bearer tokens, and the application receives the
user's identity in request headers. The proxy's own endpoints live under /_ssokit.

Options (each also from the environment or the --config file; flags win):
  --upstream <url>             The application, e.g. http://127.0.0.1:8000     SSOKIT_UPSTREAM
  --issuer <url>               The provider (SSOKIT_PRESET=cern for CERN's)      OIDC_ISSUER
  --client-id <id>             The client registered at the provider             OIDC_CLIENT_ID
  --client-secret-file <file>  File holding the client secret    OIDC_CLIENT_SECRET (the secret)
  --public-url <url>           The origin browsers use, e.g. https://my-app.example
                                                                                 SSOKIT_PUBLIC_URL
  --host <address>             Interface to listen on (default 127.0.0.1)        SSOKIT_HOST
  --port <number>              Port, 0 for any free port (default 4180)          SSOKIT_PORT
  --redis-url <url>            Keep sessions in Redis, shared by several proxies SSOKIT_REDIS_URL
  --session-secret-file <file> Session cookie secret (needed with Redis)  SSOKIT_SESSION_SECRET
  --header-preset <name>       oauth2-proxy (default), shibboleth-adfs, shibboleth or none
                                                                              SSOKIT_HEADER_PRESET
  --pass-access-token <on|off> Send the access token upstream (default off)
                                                                          SSOKIT_PASS_ACCESS_TOKEN
  --access-token-header <name> ... in this header (default X-Forwarded-Access-Token)
                                                                        SSOKIT_ACCESS_TOKEN_HEADER
  --assertion-key-file <file>  EC P-256 private key (PEM or JWK) signing the identity assertion,
                               shared by replicas (default: a key made at start-up)
                                                                         SSOKIT_ASSERTION_KEY_FILE
  --upstream-timeout <secs>    Wait this long for the application (default 60)
                                                                           SSOKIT_UPSTREAM_TIMEOUT
  --max-header-size <bytes>    Largest request headers accepted (default 65536)
                                                                            SSOKIT_MAX_HEADER_SIZE
  --trusted-proxies <list>     Front servers whose X-Forwarded-* headers are believed, as
                               addresses or CIDR ranges (default none)   SSOKIT_TRUSTED_PROXIES
  --allowed-redirect-domains <list>
                               Hosts a sign-in may return to besides the public URL
                               (.example.org: with subdomains)  SSOKIT_ALLOWED_REDIRECT_DOMAINS
  --websocket-recheck <secs>   Check an open WebSocket's session this often (default 60)
                                                                         SSOKIT_WEBSOCKET_RECHECK
  --metrics-token-file <file>  Token a Prometheus scraper sends to /_ssokit/metrics
                               (metrics are off without one)   SSOKIT_METRICS_TOKEN (the token)
  --access-log <on|off>        A JSON line per request on stdout (default on)  SSOKIT_ACCESS_LOG
  --shutdown-timeout <secs>    On SIGTERM, requests in flight get this long (default 30)
                                                                           SSOKIT_SHUTDOWN_TIMEOUT
  --tls-cert <file>            Serve https with this PEM certificate chain    SSOKIT_TLS_CERT
  --tls-key <file>             ... and this PEM private key (TLS 1.2 and up)   SSOKIT_TLS_KEY
  --http-redirect-port <port>  Also answer plain HTTP here with a 308 to the public URL
                                                                         SSOKIT_HTTP_REDIRECT_PORT

  --config <file>              YAML file of the same settings, plus rules and header names
  --pid-file <file>            Write the process id here while running
  -h, --help                   Show this help

SAML 2.0 sign-in instead of OpenID Connect (with @ssokit/saml installed; no issuer, client id
or secret then):
  --saml-idp-metadata <file|url>
                               The IdP's metadata: a file or an https URL (read hourly)
                                                                          SSOKIT_SAML_IDP_METADATA
  --saml-idp-metadata-cert <file>
                               Use only metadata signed with this PEM certificate (a federation's)
                                                                     SSOKIT_SAML_IDP_METADATA_CERT
  --saml-entity-id <uri>       The proxy's SP entity id                      SSOKIT_SAML_ENTITY_ID
  --saml-cert-file <file>      PEM certificate of the SP (signing, decryption)
                                                                             SSOKIT_SAML_CERT_FILE
  --saml-key-file <file>       ... and its PEM private key (the two together) SSOKIT_SAML_KEY_FILE

Every bad value stops start-up with one line naming it, and exit status 2.
Stop with Ctrl-C or SIGTERM: requests in flight finish first (a second signal stops at once).
See docs/proxy.md.`

/** Any non-empty text: the proxy's schema checks it, naming the flag. */
function textOption(): ValueOption<string> {
  return { kind: 'value', parse: pathOption().parse }
}

const OPTIONS = {
  upstream: textOption(),
  issuer: textOption(),
  'client-id': textOption(),
  'client-secret-file': pathOption(),
  'public-url': textOption(),
  host: hostOption(),
  port: portOption(),
  'redis-url': textOption(),
  'session-secret-file': pathOption(),
  'header-preset': textOption(),
  'pass-access-token': textOption(),
  'access-token-header': textOption(),
  'assertion-key-file': pathOption(),
  'upstream-timeout': textOption(),
  'max-header-size': textOption(),
  'trusted-proxies': textOption(),
  'allowed-redirect-domains': textOption(),
  'websocket-recheck': textOption(),
  'metrics-token-file': pathOption(),
  'access-log': textOption(),
  'shutdown-timeout': textOption(),
  'tls-cert': pathOption(),
  'tls-key': pathOption(),
  'http-redirect-port': textOption(),
  'saml-idp-metadata': textOption(),
  'saml-idp-metadata-cert': pathOption(),
  'saml-entity-id': textOption(),
  'saml-cert-file': pathOption(),
  'saml-key-file': pathOption(),
  config: pathOption(),
  'pid-file': pathOption(),
}

async function openStore(url: string): Promise<SessionStore> {
  const store = new RedisSessionStore({ url })
  try {
    await store.ready()
  } catch (error) {
    await store.close().catch(() => undefined)
    const reason = error instanceof Error ? error.message : String(error)
    throw new Error(`cannot use --redis-url ${redactUrl(url)}: ${reason}`, { cause: error })
  }
  return store
}

export const command: Command = {
  help,
  options: OPTIONS,
  async run(args, { out, stopped }) {
    const { config: file, 'pid-file': pidFile, ...flags } = parseOptions('proxy', args, OPTIONS)
    // Misspelt or unused variables are reported as by every other command, before anything else.
    for (const warning of environmentWarnings(
      process.env,
      process.env.TSGAUTH_OIDC_PREFIX?.trim() ?? '',
    )) {
      console.warn(logLine(warning))
    }
    let config: ProxyConfig
    try {
      config = await loadProxyConfig({
        flags,
        env: process.env,
        ...(file === undefined ? {} : { file }),
      })
    } catch (error) {
      if (error instanceof ProxyConfigError) throw new UsageError(error.message, 'proxy')
      throw error
    }
    const store = config.redisUrl === undefined ? undefined : await openStore(config.redisUrl)
    const removePidFile = pidFile === undefined ? undefined : await writePidFile(pidFile)
    let proxy: RunningProxy | undefined
    try {
      try {
        proxy = await startProxy(config, store === undefined ? {} : { store })
      } catch (error) {
        if (error instanceof Error && 'syscall' in error) {
          throw listenFailure(error, 'proxy', '--port', config.port)
        }
        throw error
      }
      out(`ssokit proxy: listening on ${proxy.url}, in front of ${config.upstream}`)
      out(`  Public URL   ${config.publicUrl}`)
      if (proxy.redirectPort !== undefined) {
        out(`  HTTP         port ${proxy.redirectPort} redirects to the public URL (308)`)
      }
      const saml = config.saml
      out(
        saml === undefined
          ? `  Provider     ${config.issuer} (client ${config.clientId})`
          : `  SAML IdP     ${'url' in saml.idp ? saml.idp.url : saml.idp.file} (SP ${saml.entityId})`,
      )
      out(
        `  Sessions     ${config.redisUrl === undefined ? 'in memory (lost when the proxy stops)' : `Redis at ${redactUrl(config.redisUrl)}`}`,
      )
      out(
        `  Headers      ${config.headers.preset}${config.headers.assertion === false ? '' : ` + signed ${config.headers.assertion}`}`,
      )
      out(
        `  Endpoints    ${config.publicUrl}${config.prefix}/{login,logout,auth,healthz,readyz,jwks}`,
      )
      out(
        `  Forward auth ${config.trustedProxies.length === 0 ? 'refused (no --trusted-proxies)' : `for ${config.trustedProxies.join(', ')}`}`,
      )
      out(
        `  Metrics      ${config.metricsToken === undefined ? 'off (set --metrics-token-file)' : `${config.publicUrl}${config.prefix}/metrics, with the scrape token`}`,
      )
      out(`  Access log   ${config.accessLog ? 'JSON lines on stdout' : 'off'}`)
      // Not fatal: the provider may come up after the proxy; readyz tells when sign-in works.
      proxy.auth.ready().catch((error: unknown) => {
        out(`  Warning      ${error instanceof Error ? error.message : String(error)}`)
      })
      const signal = await stopped
      // Listening stops at once; the line comes after, so anyone who reads it can rely on that.
      const stopping = proxy.shutdown()
      out(
        `Received ${signal}, stopping: requests in flight get up to ${config.shutdownTimeout} s to finish.`,
      )
      const finished = await stopping
      if (!finished) out('  Some requests had not finished in time; their connections were closed.')
      return 0
    } finally {
      await proxy?.close()
      await store?.close()
      await removePidFile?.()
    }
  },
}
