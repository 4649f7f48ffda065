/**
 * Requests per second of a session-protected route as a ratio of the same route unprotected:
 * ssokit with the memory store and with Redis, on `node:http` and on Express, and on the same
 * Express handler express-openid-connect (its stateless encrypted cookie, and with
 * express-session's connect-redis store). Each server runs in a child process pinned to core 1
 * (`taskset -c 1`); wrk and redis-server share core 0, as a network hop would take the store's
 * work off the application's host. A real login through a started development provider gives
 * each server its session cookie, sent by wrk as a plain header on every request (the
 * unprotected servers ignore it), so the only difference is the session check. Servers are
 * warmed up, then measured in alternating runs, keeping the best of each; the server's CPU time
 * per request is read from /proc too, the steadier figure on a shared machine. Then the window
 * in which another replica still accepts a cookie after a logout (`session-invalidation.ts`).
 *
 *   npm run bench -- session
 *   node --conditions=source --import tsx bench/session.ts --profile   (adds a per-step breakdown)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import { Redis } from 'ioredis'
import { decodeJwt } from 'jose'
import { CookieJar, DEFAULT_IDP_CONFIG, startIdp } from '@ssokit/idp'
import { RedisSessionStore } from '@ssokit/redis'

import { startRedis } from '../test/support/redis.js'
import { beginLogin, finishLogin } from '../test/support/session-redis.js'

import { summariseProfile } from './profile.js'
import { measureInvalidation, quantile } from './session-invalidation.js'
import {
  SESSION_COOKIE,
  SESSION_SERVERS,
  sessionCookieOf,
  type SessionServer,
} from './session-servers.js'
import { best, hasCommand, pin, wrk, type Run } from './wrk.js'

/** Ratio to the unprotected route each session server must reach. */
const TARGETS: Partial<Record<SessionServer, number>> = { memory: 0.85, redis: 0.75 }
const WRK = ['-t1', '-c32', '-d5s']
const WARM_UP = ['-t1', '-c32', '-d2s']
const ROUNDS = 3
const INVALIDATION_ROUNDS = 40
const SERVERS = fileURLToPath(new URL('./session-servers.ts', import.meta.url))

interface Target {
  readonly name: SessionServer
  readonly child: ChildProcess
  readonly base: string
  /** The `Cookie` header wrk sends. */
  cookie: string
}

function startServer(
  name: SessionServer,
  issuer: string,
  redisUrl: string,
  profilePath: string | undefined,
): Promise<Target> {
  const args = ['--conditions=source', '--import', 'tsx', SERVERS, name, issuer, redisUrl]
  const env =
    profilePath === undefined ? process.env : { ...process.env, BENCH_PROFILE: profilePath }
  const child = spawn(
    pin ? 'taskset' : process.execPath,
    pin ? ['-c', '1', process.execPath, ...args] : args,
    { stdio: ['ignore', 'pipe', 'inherit'], env },
  )
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      reject(new Error(`${name} server exited with ${String(code)}`))
    })
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /^PORT (\d+)$/.exec(line)
      if (match) resolve({ name, child, base: `http://127.0.0.1:${match[1]}`, cookie: '' })
    })
  })
}

/** Signs in on a session server; resolves to the `Cookie` header its session answers to. */
async function login(issuer: string, target: Target): Promise<string> {
  const jar = new CookieJar()
  // The app's public URL is http://localhost:<port>; its cookies are host-only and wrk reaches
  // the same port on 127.0.0.1, so the jar's host-blind cookies serve both.
  const base = target.base.replace('127.0.0.1', 'localhost')
  let authorizeUrl: string
  if (sessionCookieOf(target.name) === SESSION_COOKIE) {
    authorizeUrl = await beginLogin(base, jar)
  } else {
    const start = await jar.fetch(`${base}/login`)
    await start.body?.cancel()
    const location = start.headers.get('location')
    if (start.status !== 302 || location === null)
      throw new Error(`${target.name}: /login answered ${start.status}`)
    authorizeUrl = location
  }
  const { callback } = await finishLogin(issuer, authorizeUrl, 'alice', jar)
  await callback.body?.cancel()
  if (callback.status !== 302)
    throw new Error(`${target.name}: the callback answered ${callback.status}`)
  const name = sessionCookieOf(target.name)
  const pair = jar
    .header(`${base}/api`)
    .split('; ')
    .find((p) => p.startsWith(`${name}=`))
  if (pair === undefined) throw new Error(`${target.name}: no session cookie after the login`)
  const check = await fetch(`${target.base}/api`, { headers: { cookie: pair } })
  await check.body?.cancel()
  if (check.status !== 200)
    throw new Error(`${target.name}: GET /api with the session answered ${check.status}`)
  const anonymous = await fetch(`${target.base}/api`, { headers: { accept: 'application/json' } })
  await anonymous.body?.cancel()
  if (anonymous.status !== 401)
    throw new Error(`${target.name}: the route let an anonymous call in (${anonymous.status})`)
  return pair
}

/** Moves every redis-server listening on `port` to core 0, next to wrk (Linux). */
function pinRedis(port: number): void {
  if (!pin) return
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    let cmdline: string
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
    } catch {
      continue
    }
    const argv = cmdline.split('\0')
    if (argv[0]?.endsWith('redis-server') && argv.includes(String(port))) {
      spawnSync('taskset', ['-a', '-p', '-c', '0', entry], { stdio: 'ignore' })
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Per-step breakdown (--profile): each step of the session check, alone, in this process

async function timeIt(
  label: string,
  iterations: number,
  step: () => unknown,
): Promise<[string, number]> {
  for (let i = 0; i < Math.min(iterations, 2000); i++) await step()
  const start = process.cpuUsage()
  for (let i = 0; i < iterations; i++) await step()
  const used = process.cpuUsage(start)
  return [label, (used.user + used.system) / iterations]
}

async function profile(redisUrl: string, cookie: string): Promise<void> {
  const raw = new Redis(redisUrl)
  const store = new RedisSessionStore({ url: redisUrl })
  try {
    const signed = cookie.slice(SESSION_COOKIE.length + 1)
    const id = signed.slice(0, signed.lastIndexOf('.'))
    const stored = await store.get(id)
    if (stored === undefined) throw new Error('the session is not in Redis')
    const record = JSON.parse(stored.data) as { idToken: string; accessToken: string }
    const key = await crypto.subtle.importKey(
      'raw',
      new Uint8Array(32),
      { name: 'HMAC', hash: 'SHA-256' },
      false,
      ['sign', 'verify'],
    )
    const data = new TextEncoder().encode(`ssokit:session:${id}`)
    const mac = await crypto.subtle.sign('HMAC', key, data)
    const { createHmac, createSecretKey } = await import('node:crypto')
    const macKey = createSecretKey(new Uint8Array(32))
    const rawValue = await raw.get(`ssokit:s:${id}`)
    const rows = [
      await timeIt('cookie MAC check (WebCrypto HMAC verify)', 20_000, () =>
        crypto.subtle.verify('HMAC', key, mac, data),
      ),
      await timeIt('cookie MAC check (node:crypto createHmac, what Keyring uses)', 20_000, () =>
        createHmac('sha256', macKey).update(data).digest('base64url'),
      ),
      await timeIt('store record JSON.parse x2 (header line + session record)', 20_000, () => {
        const text = rawValue ?? '{}\n{}'
        const newline = text.indexOf('\n')
        JSON.parse(text.slice(0, newline))
        return JSON.parse(text.slice(newline + 1)) as unknown
      }),
      await timeIt(
        'decodeJwt x2 (ID + access token claims, on an identity cache miss)',
        20_000,
        () => [decodeJwt(record.idToken), decodeJwt(record.accessToken)],
      ),
      await timeIt('RedisSessionStore.get (round trip, sequential)', 5_000, () => store.get(id)),
      await timeIt('ioredis GET alone (round trip, sequential)', 5_000, () =>
        raw.get(`ssokit:s:${id}`),
      ),
      await timeIt('RedisSessionStore.get x2 at once (session + logout mark)', 5_000, () =>
        Promise.all([store.get(id), store.get('logout-sub:alice')]),
      ),
    ]
    console.log('\nPer-step cost of the session check, in this process (CPU µs per call):')
    console.log('| step | µs |')
    console.log('|---|---:|')
    for (const [label, us] of rows) console.log(`| ${label} | ${us.toFixed(1)} |`)
    console.log(`(session record: ${stored.data.length} bytes of JSON)`)
  } finally {
    await store.close()
    raw.disconnect()
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    child.once('exit', () => {
      resolve()
    })
  })
}

const isOpen = (name: SessionServer) => name === 'open' || name === 'express open'

/** Starts a group of servers, signs in on each, measures them in turns. */
async function measureGroup(
  names: readonly SessionServer[],
  issuer: string,
  redisUrl: string,
  profileDir: string | undefined,
  results: Map<SessionServer, Run>,
): Promise<string | undefined> {
  const targets: Target[] = []
  try {
    for (const name of names) {
      const profilePath =
        profileDir !== undefined && (name === 'memory' || name === 'redis')
          ? join(profileDir, `${name}.cpuprofile`)
          : undefined
      targets.push(await startServer(name, issuer, redisUrl, profilePath))
    }
    for (const target of targets) {
      if (!isOpen(target.name) && target.name !== 'redis-read')
        target.cookie = await login(issuer, target)
    }
    // Every server gets a cookie header; the floor reads the Redis server's session.
    const redisCookie = targets.find((t) => t.name === 'redis')?.cookie ?? ''
    const cookieOf = (target: Target) =>
      isOpen(target.name) || target.name === 'redis-read' ? redisCookie || 'x=y' : target.cookie
    for (const target of targets) {
      const header = `Cookie: ${cookieOf(target)}`
      wrk(WARM_UP, `${target.base}/api`, header, target.child.pid, target.name)
      // Starts the profile of a server run with BENCH_PROFILE (a plain server would die of it).
      if (profileDir !== undefined && (target.name === 'memory' || target.name === 'redis'))
        target.child.kill('SIGUSR2')
    }
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const target of targets) {
        const header = `Cookie: ${cookieOf(target)}`
        const run = wrk(WRK, `${target.base}/api`, header, target.child.pid, target.name)
        results.set(target.name, best(results.get(target.name), run))
      }
    }
    return redisCookie || undefined
  } finally {
    for (const target of targets) {
      target.child.removeAllListeners('exit')
      target.child.kill('SIGTERM')
    }
    await Promise.all(targets.map((t) => exited(t.child)))
  }
}

async function main(): Promise<void> {
  if (!hasCommand('wrk')) throw new Error('wrk is not installed (Debian: apt-get install wrk)')
  const redis = await startRedis()
  pinRedis(redis.port)
  const idp = await startIdp({
    port: 0,
    log: false,
    // Long enough that no refresh happens during the runs: only the steady state is measured.
    accessTokenTtl: 3600,
    config: DEFAULT_IDP_CONFIG,
  })
  const profiling = process.argv.includes('--profile')
  const profileDir = profiling ? mkdtempSync(join(tmpdir(), 'ssokit-bench-')) : undefined
  const results = new Map<SessionServer, Run>()
  let delays: Awaited<ReturnType<typeof measureInvalidation>>
  try {
    for (const framework of ['node', 'express'] as const) {
      const names = (Object.keys(SESSION_SERVERS) as SessionServer[]).filter(
        (name) => SESSION_SERVERS[name] === framework && (profiling || name !== 'redis-read'),
      )
      const redisCookie = await measureGroup(names, idp.issuer, redis.url, profileDir, results)
      if (profiling && framework === 'node' && redisCookie !== undefined)
        await profile(redis.url, redisCookie)
    }
    delays = await measureInvalidation(redis.url, INVALIDATION_ROUNDS)
  } finally {
    await idp.close()
    await redis.stop()
  }
  if (profileDir !== undefined) {
    for (const kind of ['memory', 'redis'] as const) {
      const dir = mkdtempSync(join(tmpdir(), 'ssokit-profile-'))
      try {
        const from = join(profileDir, `${kind}.cpuprofile`)
        spawnSync('cp', [from, dir])
        console.log(`\nWhere the ${kind} server spends its CPU during the measured runs:\n`)
        console.log(summariseProfile(dir, 15))
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }
    rmSync(profileDir, { recursive: true, force: true })
  }

  const fixed = (value: number | undefined, digits: number) =>
    value === undefined ? 'n/a' : value.toFixed(digits)
  console.log(
    `\nwrk ${WRK.join(' ')} on 127.0.0.1, GET /api with a session cookie, best of ${ROUNDS} alternating runs after a warm-up` +
      (pin ? '; servers on core 1, wrk and redis-server on core 0' : ''),
  )
  console.log('| server | req/s | ratio (req/s) | CPU µs/req | ratio (CPU) |')
  console.log('|---|---:|---:|---:|---:|')
  const ratios = new Map<SessionServer, { rate: number; cpu: number | undefined }>()
  for (const [name, run] of results) {
    const open = results.get(SESSION_SERVERS[name] === 'node' ? 'open' : 'express open')
    if (open === undefined) continue
    const rate = run.rate / open.rate
    const cpu = open.cpu === undefined || run.cpu === undefined ? undefined : open.cpu / run.cpu
    ratios.set(name, { rate, cpu })
    console.log(
      `| ${name} | ${fixed(run.rate, 0)} | ${fixed(rate, 2)} | ${fixed(run.cpu, 1)} | ${fixed(cpu, 2)} |`,
    )
  }
  console.log('\nTargets (ratio to the unprotected node:http route, req/s or CPU):')
  for (const [name, target] of Object.entries(TARGETS) as [SessionServer, number][]) {
    const ratio = ratios.get(name)
    if (ratio === undefined) continue
    const reached = Math.max(ratio.rate, ratio.cpu ?? 0)
    console.log(
      `- ${name} store: ${ratio.rate.toFixed(2)} (req/s), ${fixed(ratio.cpu, 2)} (CPU); ` +
        `target >= ${target}: ${reached >= target ? 'met' : 'NOT met'}`,
    )
  }
  const ms = (values: readonly number[], share: number) => quantile(values, share).toFixed(1)
  console.log(
    `\nAfter a logout on replica A, replica B (Redis store, cache on) still accepted the old cookie ` +
      `for, over ${delays.windows.length} logouts under sequential traffic: ` +
      `median ${ms(delays.windows, 0.5)} ms, p95 ${ms(delays.windows, 0.95)} ms, ` +
      `max ${ms(delays.windows, 1)} ms; B's first refusal arrived ` +
      `median ${ms(delays.firstRefusals, 0.5)} ms, p95 ${ms(delays.firstRefusals, 0.95)} ms, ` +
      `max ${ms(delays.firstRefusals, 1)} ms after A answered the logout.`,
  )
}

await main()
