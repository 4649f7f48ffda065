/**
 * Sign-in through a SAML 2.0 IdP for the proxy: `@ssokit/saml`'s `createSamlAuth` with the
 * proxy's origin, prefix, session secrets and store. The package is an optional peer, loaded
 * only when SAML is configured, so an OIDC-only proxy never installs an XML stack.
 */
import { randomBytes } from 'node:crypto'
import type { SessionAuth, SessionStore } from '@ssokit/core'
import type { ProxyConfig, ProxySamlConfig } from './config.js'

export async function createSamlProxyAuth(
  config: ProxyConfig,
  saml: ProxySamlConfig,
  store: SessionStore | undefined,
  insecureHttpForLocalhost: boolean,
): Promise<SessionAuth> {
  let module: typeof import('@ssokit/saml')
  try {
    module = await import('@ssokit/saml')
  } catch (error) {
    throw new Error('SAML sign-in needs the @ssokit/saml package: npm install @ssokit/saml', {
      cause: error,
    })
  }
  return module.createSamlAuth({
    publicUrl: config.publicUrl,
    // Without a configured secret, sessions last as long as this process.
    secret: config.sessionSecrets ?? randomBytes(32).toString('base64url'),
    prefix: config.prefix,
    entityId: saml.entityId,
    idp: saml.idp,
    ...(saml.attributes === undefined ? {} : { attributes: saml.attributes }),
    ...(saml.certificate === undefined ? {} : { certificate: saml.certificate }),
    ...(saml.privateKey === undefined ? {} : { privateKey: saml.privateKey }),
    ...(store === undefined ? {} : { store }),
    ...(config.sessionLifetime === undefined ? {} : { sessionLifetime: config.sessionLifetime }),
    ...(insecureHttpForLocalhost ? { cookies: { insecureHttpForLocalhost: true } } : {}),
  })
}
