/**
 * Requests per second of a session-protected route as a ratio of the same route unprotected,
 * with the memory store and with Redis. Each server runs in a child process pinned to core 1
 * (`taskset -c 1`); wrk and redis-server share core 0, as a network hop would take the store's
 * work off the application's host. A real login through a started development provider gives
 * the session cookie, sent by wrk as a plain header on every request to every server (the
 * unprotected one ignores it), so the only difference is the session check. Servers are warmed
 * up, then measured in alternating runs, keeping the best of each; the server's CPU time per
 * request is read from /proc too, the steadier figure on a shared machine.
 *
 *   node --conditions=source --import tsx bench/session.ts
 *   node --conditions=source --import tsx bench/session.ts --profile   (adds a per-step breakdown)
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import { Redis } from 'ioredis'
import { decodeJwt } from 'jose'
import { createSessionAuth } from '@ssokit/core'
import { CookieJar, DEFAULT_IDP_CONFIG, startIdp } from '@ssokit/idp'
import { withAuth } from '@ssokit/node'
import { RedisSessionStore } from '@ssokit/redis'

import { startRedis } from '../test/support/redis.js'
import { beginLogin, finishLogin } from '../test/support/session-redis.js'

import { best, hasCommand, pin, wrk, type Run } from './wrk.js'

const KINDS = ['open', 'memory', 'redis'] as const
/**
 * With --profile, also the floor of any design that reads Redis on every request: the session
 * id taken from the cookie without its MAC check, one store read, the record parsed.
 */
const FLOOR = 'redis-read'
type Kind = (typeof KINDS)[number] | typeof FLOOR
const TARGET = 0.7
const WRK = ['-t1', '-c32', '-d5s']
const WARM_UP = ['-t1', '-c32', '-d2s']
const ROUNDS = 3
const SECRET = 'bench-session-secret-0123456789abcdef'
const CLIENT_ID = 'demo-app'
const CLIENT_SECRET = 'demo-app-secret'
const SESSION_COOKIE = 'ssokit-session'

// ------------------------------------------------------------------------------------------------
// Child process: one server

async function serve(kind: Kind, issuer: string | undefined, redisUrl: string | undefined) {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as AddressInfo).port
  if (kind === 'open') {
    const body = JSON.stringify({ subject: 'anonymous' })
    server.on('request', (_req, res) => {
      res.setHeader('content-type', 'application/json')
      res.end(body)
    })
    return port
  }
  if (kind === FLOOR) {
    if (redisUrl === undefined) throw new Error('no Redis URL given')
    const store = new RedisSessionStore({ url: redisUrl })
    const prefix = `${SESSION_COOKIE}=`
    server.on('request', (req, res) => {
      const cookie = (req.headers.cookie ?? '').split('; ').find((c) => c.startsWith(prefix)) ?? ''
      const id = cookie.slice(prefix.length, cookie.lastIndexOf('.'))
      void store.get(id).then((stored) => {
        const record =
          stored === undefined ? undefined : (JSON.parse(stored.data) as { sub: string })
        res.statusCode = record === undefined ? 401 : 200
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ subject: record?.sub }))
      })
    })
    return port
  }
  if (issuer === undefined) throw new Error('no issuer given')
  const auth = createSessionAuth({
    issuer,
    clientId: CLIENT_ID,
    clientSecret: CLIENT_SECRET,
    secret: SECRET,
    publicUrl: `http://localhost:${port}`,
    cookies: { insecureHttpForLocalhost: true },
    ...(kind === 'redis' && redisUrl !== undefined
      ? { store: new RedisSessionStore({ url: redisUrl }) }
      : {}),
  })
  const handler = withAuth(
    (_req, res, identity) => {
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ subject: identity.subject }))
    },
    { auth },
  )
  server.on('request', (req, res) => {
    void handler(req, res)
  })
  return port
}

// ------------------------------------------------------------------------------------------------
// Parent process

function startServer(
  kind: Kind,
  issuer: string,
  redisUrl: string,
  profileDir: string | undefined,
): Promise<Target> {
  const args = [
    ...(profileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profileDir}/${kind}`]),
    '--conditions=source',
    '--import',
    'tsx',
    fileURLToPath(import.meta.url),
    '--serve',
    kind,
    issuer,
    redisUrl,
  ]
  const child = spawn(
    pin ? 'taskset' : process.execPath,
    pin ? ['-c', '1', process.execPath, ...args] : args,
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      reject(new Error(`${kind} server exited with ${String(code)}`))
    })
    const lines = createInterface({ input: child.stdout })
    lines.on('line', (line) => {
      const match = /^PORT (\d+)$/.exec(line)
      if (match) resolve({ kind, child, base: `http://127.0.0.1:${match[1]}`, cookie: '' })
    })
  })
}

interface Target {
  readonly kind: Kind
  readonly child: ChildProcess
  readonly base: string
  /** The `Cookie` header wrk sends. */
  cookie: string
}

/** Signs in on a session server; resolves to the `Cookie` header its session answers to. */
async function login(issuer: string, target: Target): Promise<string> {
  const jar = new CookieJar()
  // The app's public URL is http://localhost:<port>; its cookies are host-only and wrk reaches
  // the same port on 127.0.0.1, so the jar's host-blind cookies serve both.
  const base = target.base.replace('127.0.0.1', 'localhost')
  const { callback } = await finishLogin(issuer, await beginLogin(base, jar), 'alice', jar)
  if (callback.status !== 302)
    throw new Error(`${target.kind}: the callback answered ${callback.status}`)
  const pair = jar
    .header(`${base}/api`)
    .split('; ')
    .find((p) => p.startsWith(`${SESSION_COOKIE}=`))
  if (pair === undefined) throw new Error(`${target.kind}: no session cookie after the login`)
  const check = await fetch(`${target.base}/api`, { headers: { cookie: pair } })
  if (check.status !== 200)
    throw new Error(`${target.kind}: GET /api with the session answered ${check.status}`)
  const anonymous = await fetch(`${target.base}/api`, { headers: { accept: 'application/json' } })
  if (anonymous.status !== 401)
    throw new Error(`${target.kind}: the route let an anonymous call in`)
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
      await timeIt('store record JSON.parse x2 (store envelope + session record)', 20_000, () => {
        const outer = JSON.parse(rawValue ?? '{}') as { data: string }
        return JSON.parse(outer.data) as unknown
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

interface ProfileNode {
  readonly id: number
  readonly callFrame: {
    readonly functionName: string
    readonly url: string
    readonly lineNumber: number
  }
}

/** The functions where a server spent its own CPU time, from the profile --cpu-prof wrote. */
function summariseProfile(dir: string, kind: Kind, top = 15): void {
  let files: string[]
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))
  } catch {
    files = []
  }
  const file = files[0]
  if (file === undefined) {
    console.log(`\n(no CPU profile was written for ${kind})`)
    return
  }
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as {
    nodes: ProfileNode[]
    samples: number[]
    timeDeltas: number[]
  }
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const self = new Map<string, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)?.callFrame
    const delta = profile.timeDeltas[i] ?? 0
    if (
      frame === undefined ||
      frame.functionName === '(idle)' ||
      frame.functionName === '(program)'
    )
      return
    const where = frame.url === '' ? '' : ` ${basename(frame.url)}:${frame.lineNumber + 1}`
    const label = `${frame.functionName || '(anonymous)'}${where}`
    self.set(label, (self.get(label) ?? 0) + delta)
    total += delta
  })
  console.log(`\nWhere the ${kind} server spends its CPU (self time, busy samples only):`)
  console.log('| function | share |')
  console.log('|---|---:|')
  for (const [label, time] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`| \`${label}\` | ${((100 * time) / total).toFixed(1)} % |`)
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
  const targets: Target[] = []
  const results = new Map<Kind, Run>()
  try {
    const kinds: readonly Kind[] = profiling ? [...KINDS, FLOOR] : KINDS
    for (const kind of kinds)
      targets.push(await startServer(kind, idp.issuer, redis.url, profileDir))
    const sessionTargets = targets.filter((t) => t.kind === 'memory' || t.kind === 'redis')
    for (const target of sessionTargets) target.cookie = await login(idp.issuer, target)
    const redisCookie = targets.find((t) => t.kind === 'redis')?.cookie ?? ''
    // Every server gets the same kind of header; the floor reads the Redis server's session.
    const cookieOf = (target: Target) =>
      target.kind === 'open' || target.kind === FLOOR ? redisCookie : target.cookie
    for (const target of targets)
      wrk(
        WARM_UP,
        `${target.base}/api`,
        `Cookie: ${cookieOf(target)}`,
        target.child.pid,
        target.kind,
      )
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const target of targets) {
        results.set(
          target.kind,
          best(
            results.get(target.kind),
            wrk(
              WRK,
              `${target.base}/api`,
              `Cookie: ${cookieOf(target)}`,
              target.child.pid,
              target.kind,
            ),
          ),
        )
      }
    }
    if (profiling) {
      const redisTarget = targets.find((t) => t.kind === 'redis')
      if (redisTarget) await profile(redis.url, redisTarget.cookie)
    }
  } finally {
    for (const target of targets) {
      target.child.removeAllListeners('exit')
      target.child.kill()
    }
    await Promise.all(targets.map((t) => exited(t.child)))
    await idp.close()
    await redis.stop()
  }
  if (profileDir !== undefined) {
    for (const kind of ['memory', 'redis'] as const) summariseProfile(join(profileDir, kind), kind)
    rmSync(profileDir, { recursive: true, force: true })
  }

  const open = results.get('open')
  if (open === undefined) throw new Error('no measurement')
  const fixed = (value: number | undefined, digits: number) =>
    value === undefined ? 'n/a' : value.toFixed(digits)
  const flag = (ratio: number | undefined) =>
    ratio !== undefined && ratio < TARGET ? ` (below ${TARGET})` : ''
  console.log(
    `\nwrk ${WRK.join(' ')} on 127.0.0.1, GET /api with a session cookie, best of ${ROUNDS} alternating runs after a warm-up` +
      (pin ? '; server on core 1, wrk and redis-server on core 0' : ''),
  )
  console.log('| store | req/s | ratio (req/s) | CPU µs/req | ratio (CPU) |')
  console.log('|---|---:|---:|---:|---:|')
  console.log(
    `| none (unprotected) | ${fixed(open.rate, 0)} | 1.00 | ${fixed(open.cpu, 1)} | 1.00 |`,
  )
  for (const kind of ['memory', 'redis', FLOOR] as const) {
    const run = results.get(kind)
    if (run === undefined) continue
    const rateRatio = run.rate / open.rate
    const cpuRatio =
      open.cpu === undefined || run.cpu === undefined ? undefined : open.cpu / run.cpu
    console.log(
      `| ${kind} | ${fixed(run.rate, 0)} | ${fixed(rateRatio, 2)}${flag(rateRatio)} | ` +
        `${fixed(run.cpu, 1)} | ${fixed(cpuRatio, 2)}${flag(cpuRatio)} |`,
    )
  }
}

if (process.argv[2] === '--serve') {
  // A clean exit, so that --cpu-prof writes its profile.
  process.once('SIGTERM', () => process.exit(0))
  const kind = process.argv[3] as Kind
  const port = await serve(kind, process.argv[4], process.argv[5])
  console.log(`PORT ${port}`)
} else {
  await main()
}
