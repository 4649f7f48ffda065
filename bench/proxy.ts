/**
 * `ssokit proxy` against the front servers it replaces, measured side by side in one run:
 * requests/s and p99 latency of
 *
 *   (a) the upstream alone                       (b) nginx, a bare proxy_pass
 *   (c) ssokit proxy, a valid bearer token       (d) ssokit proxy, a session cookie (memory, Redis)
 *   (e) Apache + mod_auth_openidc, bearer token (AuthType oauth20) + mod_proxy_http
 *
 * and an engine comparison: the same bearer check and forwarding on undici (what @ssokit/proxy
 * uses) and on http-proxy-3. wrk runs on core 0 with the upstream and redis-server behind the
 * servers (as another host would); every server measured is pinned to core 1, where the others
 * sit idle ((a) is a second upstream there). Each is warmed up, then measured in alternating
 * rounds, keeping the best of each. Targets: (c) >= 2x (e), (c) >= 0.5x (b); a missed one is
 * printed NOT MET. Each server's CPU time per request (its process and workers, from /proc) is
 * printed too, and the same ratios from it: on a busy machine the requests/s follow the share of
 * the core each server happened to get, while its cost per request hardly moves. The provider runs in this process and cannot answer while wrk runs, so every
 * server fetches its keys (and the session servers sign in) before the runs.
 *
 *   npm run bench -- proxy
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import { CookieJar, startIdp } from '@ssokit/idp'

import { freePort, startRedis } from '../test/support/redis.js'
import { finishLogin } from '../test/support/session-redis.js'

import { startApache, startNginx, type FrontServer } from './proxy-front.js'
import { cpuPerRequest, hasCommand, pin, treeCpuTicks } from './wrk.js'

/** The development provider's demo client, which the servers use too. */
const CLIENT_ID = 'demo-app'
const CLIENT_SECRET = 'demo-app-secret'
const WRK = ['-t1', '-c32', '-d5s', '--latency']
const WARM_UP = ['-t1', '-c32', '-d2s']
const ROUNDS = 2
const SERVERS = fileURLToPath(new URL('./proxy-servers.ts', import.meta.url))

interface Measured {
  rate: number
  /** Milliseconds. */
  p99: number
  /** Microseconds of the server's CPU (all its processes) per request, when /proc tells. */
  cpu: number | undefined
}

interface Target {
  readonly label: string
  readonly url: string
  readonly header: string | undefined
  /** The server's process; its workers are its children. */
  readonly pid: number | undefined
  best?: Measured
  /** Requests wrk gave up on, over every run. */
  timeouts?: number
}

const children: ChildProcess[] = []
const fronts: FrontServer[] = []

interface Started {
  readonly port: number
  readonly pid: number | undefined
}

function node(core: number, args: readonly string[]): Promise<Started> {
  const argv = ['--conditions=source', '--import', 'tsx', SERVERS, ...args]
  const child = spawn(
    pin ? 'taskset' : process.execPath,
    pin ? ['-c', String(core), process.execPath, ...argv] : argv,
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  children.push(child)
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      reject(new Error(`${args[0] ?? ''} server exited with ${String(code)}`))
    })
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /^PORT (\d+)$/.exec(line)
      if (match) resolve({ port: Number(match[1]), pid: child.pid })
    })
  })
}

function millis(value: string, unit: string): number {
  return Number(value) * (unit === 'us' ? 0.001 : unit === 's' ? 1000 : 1)
}

function wrk(args: readonly string[], target: Target): Measured {
  const argv = [...args, ...(target.header === undefined ? [] : ['-H', target.header]), target.url]
  const before = treeCpuTicks(target.pid)
  const result = spawnSync(pin ? 'taskset' : 'wrk', pin ? ['-c', '0', 'wrk', ...argv] : argv, {
    encoding: 'utf8',
  })
  const after = treeCpuTicks(target.pid)
  const total = /(\d+) requests in/.exec(result.stdout)
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(result.stdout)
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(result.stdout)
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(result.stdout)
  const timeouts = /Socket errors: .*timeout (\d+)/.exec(result.stdout)
  if (result.status !== 0 || !rate) throw new Error(`wrk failed: ${result.stderr}`)
  if (errors) throw new Error(`${target.label}: ${errors[1]} requests were rejected`)
  // A timeout (no answer in wrk's 2 s) is counted, not fatal: it happens on a loaded machine.
  target.timeouts = (target.timeouts ?? 0) + Number(timeouts?.[1] ?? 0)
  return {
    rate: Number(rate[1]),
    p99: p99 ? millis(p99[1] ?? '0', p99[2] ?? 'ms') : NaN,
    cpu: cpuPerRequest(before, after, Number(total?.[1] ?? 0)),
  }
}

async function sessionCookie(base: string, issuer: string): Promise<string> {
  const jar = new CookieJar()
  const start = await jar.fetch(`${base}/_ssokit/login?returnTo=/`)
  const { callback } = await finishLogin(issuer, start.headers.get('location') ?? '', 'alice', jar)
  if (callback.status !== 302) throw new Error(`login through ${base} answered ${callback.status}`)
  return jar.header(`${base}/`)
}

async function main(): Promise<void> {
  for (const binary of ['nginx', 'apache2']) {
    if (!hasCommand(binary) && !hasCommand(`/usr/sbin/${binary}`)) {
      throw new Error(
        `bench/proxy.ts needs ${binary}: apt-get install nginx apache2 libapache2-mod-auth-openidc`,
      )
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'ssokit-bench-proxy-'))
  const idp = await startIdp({ port: 0, log: false, accessTokenTtl: 3600 })
  const redis = await startRedis()
  try {
    const response = await fetch(`${idp.issuer}/protocol/openid-connect/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
      }),
    })
    const token = ((await response.json()) as { access_token: string }).access_token
    const bearer = `Authorization: Bearer ${token}`

    const alone = await node(1, ['upstream'])
    const backendPort = await node(0, ['upstream'])
    const backend = `http://127.0.0.1:${backendPort.port}`
    const log = (name: string) => join(dir, `${name}-access.log`)
    const ssokitMemory = await node(1, ['ssokit', backend, idp.issuer, log('ssokit-memory')])
    const ssokitRedis = await node(1, [
      'ssokit',
      backend,
      idp.issuer,
      log('ssokit-redis'),
      redis.url,
    ])
    const ssokitPlain = await node(1, [
      'ssokit-no-assertion',
      backend,
      idp.issuer,
      log('ssokit-no-assertion'),
    ])
    const undici = await node(1, ['undici', backend, idp.issuer])
    const httpProxy3 = await node(1, ['http-proxy-3', backend, idp.issuer])
    const nginx = await startNginx(dir, await freePort(), backend, 1)
    fronts.push(nginx)
    const apache = await startApache(dir, await freePort(), backend, idp.issuer, token, 1)
    fronts.push(apache)
    const memoryBase = `http://localhost:${ssokitMemory.port}`
    const redisBase = `http://localhost:${ssokitRedis.port}`
    const at = (server: Started) => ({ url: `http://127.0.0.1:${server.port}/`, pid: server.pid })
    const front = (server: FrontServer) => ({ url: server.url, pid: server.pid })

    const targets: Target[] = [
      { label: '(a) upstream alone (no proxy)', ...at(alone), header: undefined },
      { label: '(b) nginx proxy_pass (no auth)', ...front(nginx), header: undefined },
      {
        label: '(c) ssokit proxy, bearer (headers + assertion)',
        ...at(ssokitMemory),
        header: bearer,
      },
      {
        label: '    the same without the signed assertion',
        ...at(ssokitPlain),
        header: bearer,
      },
      {
        label: '(d) ssokit proxy, session (memory)',
        ...at(ssokitMemory),
        header: `Cookie: ${await sessionCookie(memoryBase, idp.issuer)}`,
      },
      {
        label: '(d) ssokit proxy, session (Redis)',
        ...at(ssokitRedis),
        header: `Cookie: ${await sessionCookie(redisBase, idp.issuer)}`,
      },
      {
        label: '(e) Apache + mod_auth_openidc, bearer (1 header)',
        ...front(apache),
        header: bearer,
      },
      { label: 'engine: undici, bearer', ...at(undici), header: bearer },
      { label: 'engine: http-proxy-3, bearer', ...at(httpProxy3), header: bearer },
    ]
    // wrk runs synchronously, so the provider in this process cannot answer during a run: each
    // server fetches the provider's keys now, with one request.
    for (const target of targets) {
      const [name, ...value] = (target.header ?? '').split(': ')
      const res = await fetch(target.url, {
        headers: target.header === undefined ? {} : { [name ?? '']: value.join(': ') },
      })
      await res.arrayBuffer()
      if (res.status !== 200) throw new Error(`${target.label}: ${res.status} before the run`)
    }
    const before = loadavg()
    for (const target of targets) wrk(WARM_UP, target)
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
        const run = wrk(WRK, target)
        const cpu = [target.best?.cpu, run.cpu].filter((v) => v !== undefined)
        target.best = {
          rate: Math.max(target.best?.rate ?? 0, run.rate),
          p99: Math.min(target.best?.p99 ?? Infinity, run.p99),
          cpu: cpu.length === 0 ? undefined : Math.min(...cpu),
        }
      }
    }
    const after = loadavg()

    console.log(
      `wrk ${WRK.join(' ')}, best of ${ROUNDS} rounds; wrk on core 0, server on core ${pin ? '1' : '(not pinned: no taskset)'}`,
    )
    console.log(
      'each server: one process (nginx one worker, Apache one process of 64 threads), keep-alive to the same upstream, an access log line per request to a file',
    )
    console.log(
      `load average (1 min) before ${before[0]?.toFixed(2) ?? '?'}, after ${after[0]?.toFixed(2) ?? '?'}`,
    )
    console.log(
      `${'server'.padEnd(48)} ${'req/s'.padStart(9)} ${'p99 ms'.padStart(8)} ${'timeouts'.padStart(9)} ${'CPU us/req'.padStart(11)}`,
    )
    for (const t of targets) {
      console.log(
        `${t.label.padEnd(48)} ${(t.best?.rate ?? 0).toFixed(0).padStart(9)} ${(t.best?.p99 ?? NaN).toFixed(2).padStart(8)} ${String(t.timeouts ?? 0).padStart(9)} ${(t.best?.cpu ?? NaN).toFixed(1).padStart(11)}`,
      )
    }
    const rate = (label: string) => targets.find((t) => t.label.startsWith(label))?.best?.rate ?? 0
    const ratios: [string, number, number][] = [
      ['(c) / (e) Apache + mod_auth_openidc', rate('(c)') / rate('(e)'), 2],
      ['(c) / (b) nginx proxy_pass', rate('(c)') / rate('(b)'), 0.5],
    ]
    for (const [label, value, target] of ratios) {
      const met = value >= target
      console.log(
        `${label.padEnd(48)} ${value.toFixed(2)}x (target >= ${target}x) ${met ? 'met' : 'NOT MET'}`,
      )
    }
    // CPU per request is what a busy machine distorts least: requests/s follow the share of the
    // core each server happened to get, its cost per request does not.
    const cpu = (label: string) =>
      targets.find((t) => t.label.startsWith(label))?.best?.cpu ?? Number.NaN
    for (const [label, value, target] of [
      ['(c) / (e) by CPU per request', cpu('(e)') / cpu('(c)'), 2],
      ['(c) / (b) by CPU per request', cpu('(b)') / cpu('(c)'), 0.5],
    ] as const) {
      console.log(
        `${label.padEnd(48)} ${value.toFixed(2)}x (target >= ${target}x) ${value >= target ? 'met' : 'NOT MET'}`,
      )
    }
    console.log(
      `engine: undici / http-proxy-3 ${(rate('engine: undici') / rate('engine: http-proxy-3')).toFixed(2)}x`,
    )
  } finally {
    for (const front of fronts) await front.stop()
    for (const child of children) child.kill('SIGTERM')
    await redis.stop()
    await idp.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
