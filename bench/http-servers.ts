/**
 * The servers of the cold-token HTTP benchmark, each run in its own child process: one route,
 * `GET /api`, unprotected, protected by ssokit (verified-token cache on or off), or protected
 * by a peer library on the same framework, all answering the same JSON body.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

import fastifyJwt from '@fastify/jwt'
import express from 'express'
import { expressjwt, type GetVerificationKey } from 'express-jwt'
import { auth as oauth2JwtBearer } from 'express-oauth2-jwt-bearer'
import Fastify from 'fastify'
import buildGetJwks from 'get-jwks'
import jwksRsa from 'jwks-rsa'
import { createBearerAuthenticator, type Authenticator } from '@ssokit/core'
import * as ssokitExpress from '@ssokit/express'
import { ssokit as ssokitFastify, requireAuth as fastifyRequireAuth } from '@ssokit/fastify'
import { withAuth } from '@ssokit/node'

import { answerRefusals } from './express-refusals.js'
import { profileBetweenSignals } from './profile.js'
import { AUDIENCE } from './tokens.js'

export const COLD_SERVERS = {
  'node open': 'node',
  'node ssokit': 'node',
  'node ssokit, no cache': 'node',
  'express open': 'express',
  'express ssokit': 'express',
  'express ssokit, no cache': 'express',
  'express-oauth2-jwt-bearer': 'express',
  'express-jwt + jwks-rsa': 'express',
  'fastify open': 'fastify',
  'fastify ssokit': 'fastify',
  'fastify ssokit, no cache': 'fastify',
  '@fastify/jwt + get-jwks': 'fastify',
} as const
export type ColdServer = keyof typeof COLD_SERVERS

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve((server.address() as AddressInfo).port)
    })
  })
}

function ssokitAuth(issuer: string, cache: boolean): Authenticator {
  return createBearerAuthenticator({
    issuer,
    clientId: AUDIENCE,
    ...(cache ? {} : { cacheSize: 0 }),
  })
}

/** Starts one server and answers its port. */
export async function serveCold(name: ColdServer, issuer: string): Promise<number> {
  const cache = !name.endsWith('no cache')
  switch (name) {
    case 'node open':
      return listen(
        createServer((_req, res) => {
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify({ subject: 'anonymous' }))
        }),
      )
    case 'node ssokit':
    case 'node ssokit, no cache': {
      const handler = withAuth(
        (_req, res, identity) => {
          res.setHeader('content-type', 'application/json')
          res.end(JSON.stringify({ subject: identity.subject }))
        },
        { auth: ssokitAuth(issuer, cache) },
      )
      return listen(createServer((req, res) => void handler(req, res)))
    }
    case 'express open':
    case 'express ssokit':
    case 'express ssokit, no cache':
    case 'express-oauth2-jwt-bearer':
    case 'express-jwt + jwks-rsa': {
      const app = express()
      if (name === 'express open') {
        app.get('/api', (_req, res) => {
          res.json({ subject: 'anonymous' })
        })
      } else if (name === 'express-oauth2-jwt-bearer') {
        app.get(
          '/api',
          oauth2JwtBearer({ issuerBaseURL: issuer, audience: AUDIENCE, tokenSigningAlg: 'RS256' }),
          (req, res) => {
            // `req.auth` is typed as ssokit's identity here; this peer puts its own result there.
            const result = (req as unknown as { auth?: { payload: { sub?: string } } }).auth
            res.json({ subject: result?.payload.sub })
          },
        )
      } else if (name === 'express-jwt + jwks-rsa') {
        const secret = jwksRsa.expressJwtSecret({
          jwksUri: `${issuer}/certs`,
          cache: true,
          rateLimit: true,
        }) as GetVerificationKey
        app.get(
          '/api',
          expressjwt({ secret, audience: AUDIENCE, issuer, algorithms: ['RS256'] }),
          (req, res) => {
            const claims = (req as unknown as { auth?: { sub?: string } }).auth
            res.json({ subject: claims?.sub })
          },
        )
      } else {
        app.get(
          '/api',
          ssokitExpress.requireAuth({ auth: ssokitAuth(issuer, cache) }),
          (req, res) => {
            res.json({ subject: req.auth?.subject })
          },
        )
      }
      answerRefusals(app)
      return listen(createServer(app))
    }
    case 'fastify open':
    case 'fastify ssokit':
    case 'fastify ssokit, no cache':
    case '@fastify/jwt + get-jwks': {
      const app = Fastify()
      if (name === 'fastify open') {
        app.get('/api', () => ({ subject: 'anonymous' }))
      } else if (name === '@fastify/jwt + get-jwks') {
        const jwks = buildGetJwks({ providerDiscovery: true, issuersWhitelist: [issuer] })
        await app.register(fastifyJwt, {
          decode: { complete: true },
          secret: (_request: unknown, token: unknown) => {
            const { header, payload } = token as {
              header: { kid: string; alg: string }
              payload: { iss: string }
            }
            return jwks.getPublicKey({ kid: header.kid, alg: header.alg, domain: payload.iss })
          },
          verify: { allowedIss: issuer, allowedAud: AUDIENCE, algorithms: ['RS256'] },
        })
        app.get(
          '/api',
          {
            onRequest: async (request) => {
              await request.jwtVerify()
            },
          },
          (request) => ({ subject: (request.user as { sub?: string }).sub }),
        )
      } else {
        await app.register(ssokitFastify, { auth: ssokitAuth(issuer, cache) })
        app.get('/api', { onRequest: fastifyRequireAuth() }, (request) => ({
          subject: request.auth?.subject,
        }))
      }
      await app.listen({ host: '127.0.0.1', port: 0 })
      return (app.server.address() as AddressInfo).port
    }
  }
}

// Child-process entry: `http-servers.ts <server name> <issuer>` prints `PORT <n>` once listening.
if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const name = process.argv[2] as ColdServer
  if (!(name in COLD_SERVERS)) throw new Error(`unknown server ${name}`)
  const port = await serveCold(name, process.argv[3] ?? '')
  const profilePath = process.env.BENCH_PROFILE
  if (profilePath !== undefined) profileBetweenSignals(profilePath)
  console.log(`PORT ${port}`)
}
