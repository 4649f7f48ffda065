/**
 * A plain node:http API protected by ssokit.
 *
 *   npx ssokit idp   # development provider on http://127.0.0.1:4000, in another terminal
 *   npx tsx --conditions=source examples/node/server.ts   # this API on http://127.0.0.1:3000
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
import { createServer, type ServerResponse } from 'node:http'
import { createBearerAuthenticator, loadConfig } from '@ssokit/core'
import { withAuth } from '@ssokit/node'

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

function json(res: ServerResponse, status: number, value: unknown): void {
  res.statusCode = status
  res.setHeader('content-type', 'application/json')
  res.end(JSON.stringify(value))
}

const me = withAuth(
  (_req, res, identity) => {
    json(res, 200, {
      subject: identity.subject,
      username: identity.username,
      roles: [...identity.roles],
    })
  },
  { auth },
)

const admin = withAuth(
  (_req, res, identity) => {
    json(res, 200, { admin: identity.username })
  },
  { auth, roles: ['admin'] },
)

const server = createServer((req, res) => {
  const { pathname } = new URL(req.url ?? '/', 'http://localhost')
  if (pathname === '/api/me') void me(req, res)
  else if (pathname === '/api/admin') void admin(req, res)
  else if (pathname === '/api/health') json(res, 200, { ok: true })
  else json(res, 404, { error: 'not_found' })
})
server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo
  console.log(`node:http API on http://127.0.0.1:${port}/api/me`)
})
