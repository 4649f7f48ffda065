/**
 * An Express API protected by ssokit.
 *
 *   npx ssokit idp   # development provider on http://127.0.0.1:4000, in another terminal
 *   npx tsx --conditions=source examples/express/server.ts   # this API on http://127.0.0.1:3000
 *
 *   TOKEN=$(curl -s http://127.0.0.1:4000/auth/realms/dev/protocol/openid-connect/token \
 *     -d grant_type=client_credentials -d client_id=demo-app -d client_secret=demo-app-secret \
 *     -d audience=demo-api | node -p 'JSON.parse(require("fs").readFileSync(0)).access_token')
 *   curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/api/me
 *
 * Its configuration is read by loadConfig: OIDC_ISSUER and OIDC_CLIENT_ID (and tsgauth's other
 * variables) point it at another provider (see docs/api-protection.md). PORT=0 picks a free port.
 */
import type { AddressInfo } from 'node:net'
import express from 'express'
import { createBearerAuthenticator, loadConfig, type Identity } from '@ssokit/core'
import { requireAuth, requireRole } from '@ssokit/express'

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

const auth = createBearerAuthenticator(config)

/** What the API tells a caller about itself; set for every route behind requireAuth(). */
function describe(identity: Identity | undefined) {
  return (
    identity && {
      subject: identity.subject,
      username: identity.username,
      roles: [...identity.roles],
    }
  )
}

const app = express()

app.get('/api/health', (_req, res) => {
  res.json({ ok: true })
})

app.get('/api/me', requireAuth({ auth }), (req, res) => {
  res.json(describe(req.auth))
})

app.delete('/api/items/:id', requireAuth({ auth }), requireRole('admin'), (req, res) => {
  res.json({ deleted: req.params.id, by: req.auth?.username })
})

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`Express API on http://127.0.0.1:${port}/api/me`)
})
