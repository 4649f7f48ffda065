/**
 * The shared adapter suite: the same requests sent to the node:http, Express, Fastify and Hono
 * adapters, each a real HTTP server on 127.0.0.1 protected by a bearer authenticator against a
 * started development provider, must get the same statuses, challenges and bodies. Security
 * cases A25-A30 and A37 (see docs/api-protection.md).
 */
import assert from 'node:assert/strict'
import { request as httpRequest } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { createBearerAuthenticator, type Authenticator } from '@ssokit/core'
import { startIdp, type RunningIdp } from '@ssokit/idp'
import {
  ADAPTERS,
  startAdapter,
  type AdapterName,
  type IdentityJson,
  type RunningAdapter,
  TokenKit,
} from '../support/adapters.js'

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json: Record<string, unknown> | undefined
}

/** One request, headers sent exactly as given (an array sends the header once per value). */
function send(url: string, headers: Record<string, string | string[]> = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => {
        let json: Record<string, unknown> | undefined
        try {
          json = JSON.parse(text) as Record<string, unknown>
        } catch {
          json = undefined
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

function challenge(answer: Answer): string {
  const value = answer.headers['www-authenticate']
  assert.equal(typeof value, 'string', 'one WWW-Authenticate header')
  return value as string
}

/** The parts every adapter must agree on. */
function essence(answer: Answer) {
  return {
    status: answer.status,
    challenge: answer.headers['www-authenticate'],
    retryAfter: answer.headers['retry-after'],
    json: answer.json,
  }
}

let idp: RunningIdp
let kit: TokenKit
const servers = new Map<AdapterName, RunningAdapter>()
const down = new Map<AdapterName, RunningAdapter>()
const broken = new Map<AdapterName, RunningAdapter>()
let realm: string

before(async () => {
  kit = await TokenKit.create()
  idp = await startIdp({ port: 0, keys: kit.keysFile, log: false })
  await kit.useIdp(idp)
  const auth = createBearerAuthenticator({ issuer: idp.issuer, clientId: 'demo-api' })
  realm = auth.realm
  const unreachable = createBearerAuthenticator({
    issuer: idp.issuer,
    clientId: 'demo-api',
    jwksUri: await kit.refusingUrl(),
  })
  // An authenticator that fails the way buggy code does: a thrown string, a rejected undefined.
  const throwing: Authenticator = {
    realm: auth.realm,
    authenticate(request) {
      // eslint-disable-next-line @typescript-eslint/only-throw-error
      if (request.url.includes('sync')) throw 'not an error'
      // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors
      return Promise.reject(undefined)
    },
    reject: (error, request) => auth.reject(error, request),
  }
  for (const name of ADAPTERS) {
    servers.set(name, await startAdapter(name, auth))
    down.set(name, await startAdapter(name, unreachable))
    broken.set(name, await startAdapter(name, throwing))
  }
})

after(async () => {
  for (const server of [...servers.values(), ...down.values(), ...broken.values()])
    await server.close()
  await idp.close()
  await kit.dispose()
})

/**
 * Sends the same request to every adapter and checks they all answer alike and none ran its
 * handler (for a failure) or each ran it once (for a success). Resolves to the first answer.
 */
async function everyAdapter(
  path: string,
  headers: Record<string, string | string[]>,
  { admitted, pool = servers }: { admitted: boolean; pool?: Map<AdapterName, RunningAdapter> },
): Promise<Answer> {
  const answers: [AdapterName, Answer][] = []
  for (const [name, server] of pool) {
    const before = server.calls()
    const answer = await send(server.url + path, headers)
    assert.equal(server.calls() - before, admitted ? 1 : 0, `${name}: handler calls (A30)`)
    for (const token of kit.issued) {
      const headerText = JSON.stringify(answer.headers)
      assert.ok(
        !answer.text.includes(token) && !headerText.includes(token),
        `${name}: token echoed (A37)`,
      )
    }
    answers.push([name, answer])
  }
  const [first] = answers
  assert.ok(first)
  for (const [name, answer] of answers) {
    assert.deepEqual(essence(answer), essence(first[1]), `${name} answers like ${first[0]}`)
  }
  return first[1]
}

function assertNoCredentials(answer: Answer): void {
  assert.equal(answer.status, 401)
  assert.equal(challenge(answer), `Bearer realm="${realm}"`)
  assert.deepEqual(answer.json, { error: 'token_missing' })
}

function assertBearerError(answer: Answer, status: number, error: string, code: string): void {
  assert.equal(answer.status, status)
  const value = challenge(answer)
  assert.ok(value.startsWith(`Bearer realm="${realm}"`), value)
  assert.match(value, new RegExp(`error="${error}"`))
  assert.deepEqual(answer.json?.error, code)
}

describe('every adapter answers alike', () => {
  it('admits a valid token and hands the identity to the handler', async () => {
    const answer = await everyAdapter(
      '/me',
      { authorization: `Bearer ${kit.alice}` },
      { admitted: true },
    )
    assert.equal(answer.status, 200)
    const identity = answer.json as unknown as IdentityJson
    assert.equal(identity.username, 'alice')
    assert.ok(identity.roles.includes('admin'))
    assert.equal(typeof identity.subject, 'string')
  })

  it('A28: no credentials is 401 with a challenge without error', async () => {
    assertNoCredentials(await everyAdapter('/me', {}, { admitted: false }))
  })

  it('A25: a foreign scheme counts as no credentials', async () => {
    assertNoCredentials(
      await everyAdapter('/me', { authorization: 'Basic YWxpY2U6YWxpY2U=' }, { admitted: false }),
    )
  })

  it('A25: the scheme is case-insensitive', async () => {
    const lower = await everyAdapter(
      '/me',
      { authorization: `bearer ${kit.alice}` },
      { admitted: true },
    )
    assert.equal(lower.status, 200)
    const upper = await everyAdapter(
      '/me',
      { authorization: `BEARER ${kit.alice}` },
      { admitted: true },
    )
    assert.equal(upper.status, 200)
  })

  it('A25: broken header syntax is 400 invalid_request', async () => {
    for (const authorization of [
      'Bearer',
      'Bearer ',
      `Bearer  ${kit.alice}`,
      `Bearer ${kit.alice} x`,
    ]) {
      const answer = await everyAdapter('/me', { authorization }, { admitted: false })
      assertBearerError(answer, 400, 'invalid_request', 'invalid_request')
    }
  })

  it('A26: two Authorization headers are 400 invalid_request', async () => {
    const answer = await everyAdapter(
      '/me',
      { authorization: [`Bearer ${kit.alice}`, `Bearer ${kit.bob}`] },
      { admitted: false },
    )
    assertBearerError(answer, 400, 'invalid_request', 'invalid_request')
  })

  it('A26: a header and an access_token query parameter are 400 invalid_request', async () => {
    const answer = await everyAdapter(
      `/me?access_token=${kit.alice}`,
      { authorization: `Bearer ${kit.alice}` },
      { admitted: false },
    )
    assertBearerError(answer, 400, 'invalid_request', 'invalid_request')
  })

  it('A27: a token only in the query string counts as no credentials', async () => {
    assertNoCredentials(
      await everyAdapter(`/me?access_token=${kit.alice}`, {}, { admitted: false }),
    )
  })

  it('A29: a token signed by another key is 401 invalid_token', async () => {
    const answer = await everyAdapter(
      '/me',
      { authorization: `Bearer ${kit.forged}` },
      { admitted: false },
    )
    assertBearerError(answer, 401, 'invalid_token', 'token_invalid')
  })

  it('an expired token is 401 invalid_token', async () => {
    const answer = await everyAdapter(
      '/me',
      { authorization: `Bearer ${kit.expired}` },
      { admitted: false },
    )
    assertBearerError(answer, 401, 'invalid_token', 'token_expired')
  })

  it('a token for another audience is 401 invalid_token', async () => {
    const answer = await everyAdapter(
      '/me',
      { authorization: `Bearer ${kit.otherAudience}` },
      { admitted: false },
    )
    assertBearerError(answer, 401, 'invalid_token', 'audience_mismatch')
  })

  it('an ID token used as an access token is 401 invalid_token', async () => {
    const answer = await everyAdapter(
      '/me',
      { authorization: `Bearer ${kit.idToken}` },
      { admitted: false },
    )
    assertBearerError(answer, 401, 'invalid_token', 'token_invalid')
  })

  it('a required role that is present admits the request', async () => {
    const answer = await everyAdapter(
      '/admin',
      { authorization: `Bearer ${kit.alice}` },
      { admitted: true },
    )
    assert.equal(answer.status, 200)
    assert.equal((answer.json as unknown as IdentityJson).username, 'alice')
  })

  it('a required role that is missing is 403 insufficient_scope', async () => {
    const answer = await everyAdapter(
      '/admin',
      { authorization: `Bearer ${kit.bob}` },
      { admitted: false },
    )
    assertBearerError(answer, 403, 'insufficient_scope', 'role_required')
  })

  it('A30: keys that cannot be fetched are 503 with Retry-After, never 200 or 500', async () => {
    const answer = await everyAdapter(
      '/me',
      { authorization: `Bearer ${kit.alice}` },
      { admitted: false, pool: down },
    )
    assert.equal(answer.status, 503)
    assert.match(String(answer.headers['retry-after']), /^\d+$/)
    assert.deepEqual(answer.json, { error: 'provider_unavailable' })
  })

  it('A30: thrown non-Error values and rejections are a generic 500 and never reach the handler', async () => {
    for (const path of ['/me?sync', '/me', '/admin']) {
      const answer = await everyAdapter(
        path,
        { authorization: `Bearer ${kit.alice}` },
        { admitted: false, pool: broken },
      )
      assert.equal(answer.status, 500)
      assert.deepEqual(answer.json, { error: 'internal_error' })
    }
  })
})
