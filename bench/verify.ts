/**
 * Token verification speed, as ratios against raw `crypto.verify` measured in the same run.
 *
 *   node --conditions=source --import tsx bench/verify.ts
 *
 * Cold: distinct valid RS256 tokens, verified-token cache off, so every call parses, checks the
 * signature and the claims. Warm: the same tokens again and again (ssokit's cache, fast-jwt's
 * cache). Contenders alternate in small chunks, and time is the process's CPU time (user +
 * system), so other load on a shared machine distorts the ratios as little as possible.
 */
import { verify as cryptoVerify } from 'node:crypto'

import { createVerifier as createFastJwtVerifier } from 'fast-jwt'
import { jwtVerify } from 'jose'

import { createVerifier } from '@ssokit/core'

import { AUDIENCE, createSigner } from './tokens.js'

const ISSUER = 'https://sso.example.org/auth/realms/bench'
const CLIENT = AUDIENCE
const TOKENS = 2000
const CHUNK = 100
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4)
const WARM_TOKENS = 100
const WARM_CALLS = 100_000

const signer = createSigner(ISSUER)
const { publicKey, publicPem } = signer
const jwk = signer.jwks.keys[0]
const makeToken = (i: number) => signer.token(i)

const tokens = Array.from({ length: TOKENS }, (_, i) => makeToken(i))
const rawInputs = tokens.map((token) => {
  const dot = token.lastIndexOf('.')
  return {
    data: Buffer.from(token.slice(0, dot)),
    signature: Buffer.from(token.slice(dot + 1), 'base64url'),
  }
})

const jwksFetch = () => Promise.resolve(new Response(JSON.stringify({ keys: [jwk] })))
const cold = createVerifier({
  issuer: ISSUER,
  clientId: CLIENT,
  jwksUri: 'https://sso.example.org/certs',
  cacheSize: 0,
  expert: { fetch: jwksFetch },
})
const warm = createVerifier({
  issuer: ISSUER,
  clientId: CLIENT,
  jwksUri: 'https://sso.example.org/certs',
  expert: { fetch: jwksFetch },
})
const fastJwtCold = createFastJwtVerifier({
  key: publicPem,
  algorithms: ['RS256'],
  allowedIss: ISSUER,
  allowedAud: CLIENT,
})
const fastJwtWarm = createFastJwtVerifier({
  key: publicPem,
  algorithms: ['RS256'],
  allowedIss: ISSUER,
  allowedAud: CLIENT,
  cache: 10_000,
})
const joseOptions = { issuer: ISSUER, audience: CLIENT, algorithms: ['RS256'] }

/** CPU milliseconds used by this process so far. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage()
  return (user + system) / 1000
}

type Contender = (from: number, to: number) => Promise<void> | void

const contenders: Record<string, Contender> = {
  'crypto.verify': (from, to) => {
    for (let i = from; i < to; i++) {
      const input = rawInputs[i]!
      if (!cryptoVerify('sha256', input.data, publicKey, input.signature))
        throw new Error('raw verify failed')
    }
  },
  ssokit: async (from, to) => {
    for (let i = from; i < to; i++) await cold.verify(tokens[i]!)
  },
  'jose jwtVerify': async (from, to) => {
    for (let i = from; i < to; i++) await jwtVerify(tokens[i]!, publicKey, joseOptions)
  },
  'fast-jwt': (from, to) => {
    for (let i = from; i < to; i++) fastJwtCold(tokens[i]!)
  },
}

async function main(): Promise<void> {
  // Warm-up: JIT, key import, JWKS load.
  for (const run of Object.values(contenders)) await run(0, CHUNK)
  const spent = new Map<string, number>(Object.keys(contenders).map((name) => [name, 0]))
  for (let round = 0; round < ROUNDS; round++) {
    for (let from = 0; from < TOKENS; from += CHUNK) {
      for (const [name, run] of Object.entries(contenders)) {
        const start = cpuMs()
        await run(from, from + CHUNK)
        spent.set(name, (spent.get(name) ?? 0) + cpuMs() - start)
      }
    }
  }
  const calls = ROUNDS * TOKENS
  const ops = (name: string) => (calls / (spent.get(name) ?? 1)) * 1000
  const raw = ops('crypto.verify')
  console.log(
    `Cold verification: ${calls} distinct RS256 tokens per contender, node ${process.version}, CPU time\n`,
  )
  console.log('| contender | ops/s | ratio to crypto.verify |')
  console.log('|---|---:|---:|')
  for (const name of Object.keys(contenders)) {
    console.log(`| ${name} | ${ops(name).toFixed(0)} | ${(ops(name) / raw).toFixed(2)} |`)
  }

  const warmTokens = tokens.slice(0, WARM_TOKENS)
  for (const t of warmTokens) {
    await warm.verify(t)
    fastJwtWarm(t)
  }
  const warmSpent = { ssokit: 0, 'fast-jwt (cache)': 0 }
  for (let round = 0; round < 10; round++) {
    let start = cpuMs()
    for (let i = 0; i < WARM_CALLS / 10; i++) await warm.verify(warmTokens[i % WARM_TOKENS]!)
    warmSpent.ssokit += cpuMs() - start
    start = cpuMs()
    for (let i = 0; i < WARM_CALLS / 10; i++) fastJwtWarm(warmTokens[i % WARM_TOKENS]!)
    warmSpent['fast-jwt (cache)'] += cpuMs() - start
  }
  console.log(`\nWarm verification: ${WARM_CALLS} calls over ${WARM_TOKENS} repeated tokens\n`)
  console.log('| contender | ops/s | ratio to cold crypto.verify |')
  console.log('|---|---:|---:|')
  for (const [name, ms] of Object.entries(warmSpent)) {
    const rate = (WARM_CALLS / ms) * 1000
    console.log(`| ${name} | ${rate.toFixed(0)} | ${(rate / raw).toFixed(1)} |`)
  }
}

await main()
