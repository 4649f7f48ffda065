/**
 * A Fastify API protected by ssokit.
 *
 *   npx ssokit idp   # development provider on http://127.0.0.1:4000, in another terminal
 *   npx tsx --conditions=source examples/fastify/server.ts   # this API on http://127.0.0.1:3000
 *
 *   TOKEN=$(curl -s http://127.0.0.1:4000/auth/realms/dev/protocol/openid-connect/token \
 *     -d grant_type=client_credentials -d client_id=demo-app -d client_secret=demo-app-secret \
 *     -d audience=demo-api | node -p 'JSON.parse(require("fs").readFileSync(0)).access_token')
 *   curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/api/me
 *
 * Its configuration is read by loadConfig: OIDC_ISSUER and OIDC_CLIENT_ID (and tsgauth's other
 * variables) point it at another provider (see docs/api-protection.md). PORT=0 picks a free port.
 */
import Fastify from 'fastify'
import { createBearerAuthenticator, loadConfig, type Identity } from '@ssokit/core'
import { requireAuth, requireRole, ssokit } from '@ssokit/fastify'

/**
 * The development provider's realm and this API's client there, unless the environment names
 * another provider: any variable loadConfig reads (OIDC_ISSUER, OIDC_CLIENT_ID, OIDC_JWKS_URI,
 * TSGAUTH_ALLOWED_ALGS, SSOKIT_ROLES_CLAIM, ...) overrides them.
 */
const config = loadConfig({
  OIDC_ISSUER: 'http://127.0.0.1:4000/auth/realms/dev',
  OIDC_CLIENT_ID: 'demo-api',
  ...process.env,
})

/** What the API tells a caller about itself; set for every route behind requireAuth(). */
function describe(identity: Identity | null) {
  return (
    identity && {
      subject: identity.subject,
      username: identity.username,
      roles: [...identity.roles],
    }
  )
}

const app = Fastify({ logger: true })

await app.register(ssokit, {
  auth: createBearerAuthenticator(config),
})

app.get('/api/health', () => ({ ok: true }))

app.get('/api/me', { onRequest: requireAuth() }, (request) => {
  return describe(request.auth)
})

// The same check, declared in the route's config instead of a hook.
app.get('/api/admin', { config: { roles: ['admin'] } }, (request) => ({
  admin: request.auth?.username,
}))

app.delete('/api/items/:id', { onRequest: [requireAuth(), requireRole('admin')] }, (request) => {
  const { id } = request.params as { id: string }
  return { deleted: id, by: request.auth?.username }
})

const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3000) })
console.log(`Fastify API on ${address}/api/me`)
