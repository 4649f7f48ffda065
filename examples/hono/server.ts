/**
 * A Hono API protected by ssokit, served on node:http through the ssokit bridge (any runtime
 * that speaks fetch serves `app.fetch` as it is).
 *
 *   npx ssokit idp   # development provider on http://127.0.0.1:4000, in another terminal
 *   npx tsx --conditions=source examples/hono/server.ts   # this API on http://127.0.0.1:3000
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
import { createServer } from 'node:http'
import { Hono } from 'hono'
import { createBearerAuthenticator, loadConfig } from '@ssokit/core'
import { requireAuth, requireRole } from '@ssokit/hono'
import { sendWebResponse, toWebRequest } from '@ssokit/node'

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

const app = new Hono()

app.get('/api/health', (c) => c.json({ ok: true }))

app.use('/api/me', requireAuth({ auth }))
app.get('/api/me', (c) => {
  const identity = c.get('auth')
  return c.json({
    subject: identity.subject,
    username: identity.username,
    roles: [...identity.roles],
  })
})

app.delete('/api/items/:id', requireAuth({ auth }), requireRole('admin'), (c) =>
  c.json({ deleted: c.req.param('id'), by: c.get('auth').username }),
)

const server = createServer((req, res) => {
  void (async () => {
    await sendWebResponse(res, await app.fetch(toWebRequest(req)))
  })()
})
server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`Hono API on http://127.0.0.1:${port}/api/me`)
})
