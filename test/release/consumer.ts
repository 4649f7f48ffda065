/**
 * The files of a project that uses the published packages: an Express API (the one
 * docs/api-protection.md walks through), a Fastify API, and TypeScript sources type-checked
 * against the published declarations under two module resolutions.
 */
import { readFile } from 'node:fs/promises'

/** The `// server.mjs` code block of docs/api-protection.md, so the walkthrough is what is tested. */
export async function documentedExpressServer(docs: URL): Promise<string> {
  const text = await readFile(new URL('api-protection.md', docs), 'utf8')
  const found = /^( *)```js\n\1(\/\/ server\.mjs\n[\s\S]*?)^\1```/m.exec(text)
  const [, indent = '', block] = found ?? []
  if (block === undefined) throw new Error('docs/api-protection.md has no `// server.mjs` block')
  return block.replaceAll(new RegExp(`^${indent}`, 'gm'), '')
}

export const FASTIFY_SERVER = `
import Fastify from 'fastify'
import { createBearerAuthenticator } from '@ssokit/core'
import { requireAuth, requireRole, ssokit } from '@ssokit/fastify'

const app = Fastify()
await app.register(ssokit, {
  auth: createBearerAuthenticator({
    issuer: process.env.OIDC_ISSUER,
    clientId: process.env.OIDC_CLIENT_ID,
  }),
})
app.get('/api/me', { onRequest: requireAuth() }, (request) => ({ subject: request.auth.subject }))
app.delete('/api/items/:id', { onRequest: [requireAuth(), requireRole('admin')] }, () => ({}))
const address = await app.listen({ port: 0, host: '127.0.0.1' })
console.log(\`API on \${address}/api/me\`)
`

/**
 * Uses every public entry point. Each \`@ts-expect-error\` fails the check if the published types
 * resolve to \`any\` (the expected error would then not happen).
 */
export const TYPESCRIPT_CONSUMER = `
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { createServer } from 'node:http'
import {
  createBearerAuthenticator,
  createSessionAuth,
  MemorySessionStore,
  SsoError,
  type Identity,
} from '@ssokit/core'
import { runSessionStoreContract } from '@ssokit/core/store-contract'
import { withAuth } from '@ssokit/node'
import { requireAuth, requireRole } from '@ssokit/express'
import { ssokit, requireAuth as fastifyAuth } from '@ssokit/fastify'
import { requireAuth as honoAuth } from '@ssokit/hono'
import { RedisSessionStore } from '@ssokit/redis'
import { startIdp } from '@ssokit/idp'
import { COMMANDS, parseOptions, portOption } from '@ssokit/cli'
import { authFetch, clientCredentials, exchange, type TokenSource } from '@ssokit/client'
import { createSamlAuth, type SamlAuth } from '@ssokit/saml'

const auth = createBearerAuthenticator({
  issuer: 'https://auth.example.org/auth/realms/example',
  clientId: 'my-api',
})

const app = express()
app.get('/me', requireAuth({ auth }), requireRole('admin'), (req, res) => {
  const who: Identity | undefined = req.auth
  res.json({ subject: who?.subject, admin: who?.roles.has('admin') })
})

const fastify = Fastify()
await fastify.register(ssokit, { auth })
fastify.get('/me', { onRequest: fastifyAuth() }, (request) => {
  const who: Identity | null = request.auth
  // @ts-expect-error the identity is an object, not a string
  const wrong: string = request.auth
  return { subject: who?.subject, wrong }
})

const hono = new Hono()
hono.get('/me', honoAuth({ auth }), (c) => c.json({ subject: c.get('auth').subject }))

createServer(
  withAuth(
    (_req, res, identity) => {
      res.end(identity.subject)
    },
    { auth },
  ),
)

const sessions = createSessionAuth({
  issuer: 'https://auth.example.org/auth/realms/example',
  clientId: 'my-app',
  clientSecret: 'secret',
  publicUrl: 'https://app.example.org',
  secret: 'a session secret of at least thirty-two characters',
  store: new MemorySessionStore(),
})
void sessions
void runSessionStoreContract
void RedisSessionStore
const idp = await startIdp({ port: 0 })
const issuer: string = idp.issuer
await idp.close()

const error: unknown = new SsoError('token_missing', 'no token')
if (error instanceof SsoError) {
  const status: number = error.status
  // @ts-expect-error codes are a closed set of strings
  const code: number = error.code
  void status
  void code
}

const source: TokenSource = clientCredentials({
  cern: true,
  clientId: 'my-app',
  clientSecret: 'secret',
  audience: 'other-api',
})
const other: TokenSource = exchange(source, { audience: 'third-api', refreshable: true })
const call: (url: string) => Promise<Response> = authFetch(other)
void call

const saml: SamlAuth = createSamlAuth({
  publicUrl: 'https://app.example.org',
  secret: 'a session secret of at least thirty-two characters',
  entityId: 'https://app.example.org/sp',
  idp: { url: 'https://localhost:8443/aggregate.xml', entityId: 'https://idp.example.org' },
  attributes: { roles: 'entitlement' },
  store: new MemorySessionStore(),
})
const metadataUrl: string = saml.metadataUrl
// @ts-expect-error the IdP metadata source is required
const noIdp: SamlAuth = createSamlAuth({ publicUrl: 'https://app.example.org', secret: 's', entityId: 'e' })
createServer(
  withAuth(
    (_req, res, identity) => {
      res.end(identity.username)
    },
    { auth: saml },
  ),
)
void metadataUrl
void noIdp

const values = parseOptions('serve', ['--port', '8080'], { port: portOption() })
const port: number | undefined = values.port
void COMMANDS
void issuer
void port
`

export function tsconfig(resolution: 'nodenext' | 'bundler'): string {
  const compilerOptions =
    resolution === 'nodenext'
      ? { module: 'nodenext', moduleResolution: 'nodenext' }
      : { module: 'preserve', moduleResolution: 'bundler' }
  return JSON.stringify({
    compilerOptions: {
      ...compilerOptions,
      target: 'es2023',
      lib: ['es2023'],
      types: ['node'],
      strict: true,
      exactOptionalPropertyTypes: true,
      noEmit: true,
      // The published declarations are checked in full once; the second run checks resolution.
      skipLibCheck: resolution === 'bundler',
    },
    files: ['consumer.ts'],
  })
}
