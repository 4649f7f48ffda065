/**
 * What the verifier costs outside HTTP, measured in a child process pinned like the servers:
 *
 *   verifier-costs.ts cost <issuer> <tokens file>
 *     prints `COST <µs>`: CPU time of one cold `verify()` (verified-token cache off), the floor
 *     a cold protected route can approach;
 *   verifier-costs.ts memory <issuer> <tokens file> <count>     (needs --expose-gc)
 *     prints `MEMORY <heap bytes> <rss bytes>` per cached token: `count` tokens, each verified
 *     twice (the cache admits a token on its second sighting), as fresh strings such as a request
 *     header gives, so the figure includes the token text the cache keeps.
 */
import { readFileSync } from 'node:fs'

import { createVerifier } from '@ssokit/core'
// Not public: the benchmark checks that the tokens it counts are really in the cache.
import { cacheLookupOf } from '../packages/core/src/verify/verifier.js'

import { AUDIENCE } from './tokens.js'

const [mode, issuer = '', file = ''] = process.argv.slice(2)
const text = readFileSync(file)
const bounds: [number, number][] = []
for (let start = 0; start < text.length;) {
  const end = text.indexOf(10, start)
  const stop = end === -1 ? text.length : end
  if (stop > start) bounds.push([start, stop])
  start = stop + 1
}
/** A new string for the `i`th token, not shared with any other. */
const tokenAt = (i: number): string => {
  const [start, end] = bounds[i % bounds.length]!
  return text.toString('latin1', start, end)
}

function cpuMicros(): number {
  const { user, system } = process.cpuUsage()
  return user + system
}

if (mode === 'cost') {
  const verifier = createVerifier({ issuer, clientId: AUDIENCE, cacheSize: 0 })
  const calls = Math.min(bounds.length, 4000)
  for (let i = 0; i < 200; i++) await verifier.verify(tokenAt(i))
  let best = Infinity
  for (let round = 0; round < 3; round++) {
    const start = cpuMicros()
    for (let i = 0; i < calls; i++) await verifier.verify(tokenAt(i))
    best = Math.min(best, (cpuMicros() - start) / calls)
  }
  console.log(`COST ${best.toFixed(2)}`)
} else if (mode === 'memory') {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc === undefined) throw new Error('run with --expose-gc')
  const count = Number(process.argv[5] ?? bounds.length)
  const verifier = createVerifier({ issuer, clientId: AUDIENCE, cacheSize: count + 1 })
  await verifier.ready()
  gc()
  const heap = process.memoryUsage().heapUsed
  const rss = process.memoryUsage().rss
  for (let i = 0; i < count; i++) {
    await verifier.verify(tokenAt(i))
    await verifier.verify(tokenAt(i))
  }
  gc()
  const usage = process.memoryUsage()
  // Counted after the reading, as the lookups make strings of their own.
  const lookup = cacheLookupOf(verifier)
  let cached = 0
  for (let i = 0; i < count; i++) if (lookup?.(tokenAt(i)) !== undefined) cached += 1
  if (cached < count * 0.99) throw new Error(`only ${cached} of ${count} tokens were cached`)
  const perEntry = (now: number, before: number) => ((now - before) / cached).toFixed(0)
  console.log(`MEMORY ${perEntry(usage.heapUsed, heap)} ${perEntry(usage.rss, rss)}`)
} else {
  throw new Error('usage: verifier-costs.ts cost|memory <issuer> <tokens file> [count]')
}
