/**
 * Cold tokens: an API with many different callers, where a token is seldom seen twice. wrk
 * sends a different valid RS256 token on every request (`distinct-tokens.lua`, cycling through
 * more tokens than the verified-token cache could ever hold), so no cache can help. ssokit runs
 * with its cache on and off beside the peers on the same framework, each against the same
 * framework's unprotected route, all measured in turns in the same run. A cold `verify()` and
 * the memory of a cached token are measured in pinned child processes too.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

import { COLD_SERVERS, type ColdServer } from './http-servers.js'
import { summariseProfile } from './profile.js'
import { startBenchIssuer, writeTokens } from './tokens.js'
import { best, pin, wrk, type Run } from './wrk.js'

/** More than the default cache (10 000) admits in its window: every token is cold. */
const TOKENS = 20_000
const MEMORY_ENTRIES = 10_000
const WRK = ['-t1', '-c32', '-d5s']
const WARM_UP = ['-t1', '-c32', '-d2s']
const ROUNDS = 3
const SERVERS = fileURLToPath(new URL('./http-servers.ts', import.meta.url))
const COSTS = fileURLToPath(new URL('./verifier-costs.ts', import.meta.url))
const SCRIPT = fileURLToPath(new URL('./distinct-tokens.lua', import.meta.url))

export const TARGETS = {
  cacheOnOverOff: 0.98,
  cpuOverVerify: 1.5,
  bytesPerEntry: 3 * 1024,
} as const

function nodeArgs(script: string, args: readonly string[], extra: readonly string[] = []) {
  const argv = [...extra, '--conditions=source', '--import', 'tsx', script, ...args]
  return pin
    ? { command: 'taskset', argv: ['-c', '1', process.execPath, ...argv] }
    : { command: process.execPath, argv }
}

interface Started {
  readonly name: ColdServer
  readonly child: ChildProcess
  readonly url: string
}

function startServer(name: ColdServer, issuer: string, profilePath?: string) {
  const { command, argv } = nodeArgs(SERVERS, [name, issuer])
  const env =
    profilePath === undefined ? process.env : { ...process.env, BENCH_PROFILE: profilePath }
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'], env })
  return new Promise<Started>((resolve, reject) => {
    child.once('exit', (code) => {
      reject(new Error(`${name} server exited with ${String(code)}`))
    })
    createInterface({ input: child.stdout }).on('line', (line) => {
      const match = /^PORT (\d+)$/.exec(line)
      if (match) resolve({ name, child, url: `http://127.0.0.1:${match[1]}/api` })
    })
  })
}

function stop(server: Started): Promise<void> {
  server.child.removeAllListeners('exit')
  return new Promise((resolve) => {
    server.child.once('exit', () => {
      resolve()
    })
    server.child.kill('SIGTERM')
  })
}

/** Every protected server takes a valid token and refuses a call without one. */
async function check(server: Started, token: string): Promise<void> {
  const ok = await fetch(server.url, { headers: { authorization: `Bearer ${token}` } })
  if (ok.status !== 200) throw new Error(`${server.name}: a valid token got ${ok.status}`)
  if (server.name.endsWith('open')) return
  const anonymous = await fetch(server.url)
  if (anonymous.status !== 401) {
    throw new Error(`${server.name}: a call without a token got ${anonymous.status}`)
  }
}

async function measureGroup(
  names: readonly ColdServer[],
  issuer: string,
  tokensFile: string,
  token: string,
): Promise<Map<ColdServer, Run>> {
  const script = { path: SCRIPT, args: [tokensFile] }
  const servers = await Promise.all(names.map((name) => startServer(name, issuer)))
  try {
    for (const server of servers) await check(server, token)
    for (const server of servers) wrk(WARM_UP, server.url, script, server.child.pid, server.name)
    const runs = new Map<ColdServer, Run>()
    for (let round = 0; round < ROUNDS; round++) {
      for (const server of servers) {
        const run = wrk(WRK, server.url, script, server.child.pid, server.name)
        runs.set(server.name, best(runs.get(server.name), run))
      }
    }
    return runs
  } finally {
    await Promise.all(servers.map(stop))
  }
}

/** Runs `verifier-costs.ts`, asynchronously: the issuer it fetches keys from is this process. */
async function childLine(
  args: readonly string[],
  extra: readonly string[],
  prefix: string,
): Promise<string[]> {
  const { command, argv } = nodeArgs(COSTS, args, extra)
  const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const status = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  const line = stdout.split('\n').find((l) => l.startsWith(`${prefix} `))
  if (status !== 0 || line === undefined) {
    throw new Error(`verifier-costs ${args[0] ?? ''} failed: ${stderr}`)
  }
  return line.split(' ').slice(1)
}

/** A CPU profile of the cold `node:http` route without cache: where a request's time goes. */
async function profile(issuer: string, tokensFile: string, token: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ssokit-profile-'))
  try {
    const server = await startServer('node ssokit, no cache', issuer, join(dir, 'run.cpuprofile'))
    const script = { path: SCRIPT, args: [tokensFile] }
    await check(server, token)
    wrk(WARM_UP, server.url, script, server.child.pid, server.name)
    server.child.kill('SIGUSR2')
    wrk(WRK, server.url, script, server.child.pid, server.name)
    await stop(server)
    console.log(
      '\nCPU profile of the cold node:http route (cache off) during one measured run, self time:\n',
    )
    console.log(summariseProfile(dir, 25))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const fixed = (value: number | undefined, digits: number) =>
  value === undefined ? 'n/a' : value.toFixed(digits)

export async function runCold(options: { readonly profile: boolean }): Promise<void> {
  const issuer = await startBenchIssuer()
  const dir = mkdtempSync(join(tmpdir(), 'ssokit-cold-'))
  try {
    const tokensFile = join(dir, 'tokens.txt')
    console.log(`\nSigning ${TOKENS} distinct tokens…`)
    const tokens = writeTokens(issuer.signer, TOKENS, tokensFile)
    const token = tokens[0]!
    const runs = new Map<ColdServer, Run>()
    for (const framework of ['node', 'express', 'fastify'] as const) {
      const names = (Object.keys(COLD_SERVERS) as ColdServer[]).filter(
        (name) => COLD_SERVERS[name] === framework,
      )
      const group = await measureGroup(names, issuer.issuer, tokensFile, token)
      for (const [name, run] of group) runs.set(name, run)
    }
    const verifyCost = Number((await childLine(['cost', issuer.issuer, tokensFile], [], 'COST'))[0])
    const [heapPerEntry, rssPerEntry] = (
      await childLine(
        ['memory', issuer.issuer, tokensFile, String(MEMORY_ENTRIES)],
        ['--expose-gc'],
        'MEMORY',
      )
    ).map(Number)

    console.log(
      `\nDistinct tokens (${TOKENS}, cycled; a different one on every request): wrk ${WRK.join(' ')}, ` +
        `best of ${ROUNDS} alternating runs after a warm-up` +
        (pin ? '; servers on core 1, wrk on core 0' : ''),
    )
    console.log(
      '| server | req/s | CPU µs/req | ratio to unprotected (req/s) | CPU µs/req over unprotected |',
    )
    console.log('|---|---:|---:|---:|---:|')
    for (const [name, run] of runs) {
      const open = runs.get(`${COLD_SERVERS[name]} open` as ColdServer)
      const over = open?.cpu === undefined || run.cpu === undefined ? undefined : run.cpu - open.cpu
      console.log(
        `| ${name} | ${fixed(run.rate, 0)} | ${fixed(run.cpu, 1)} | ` +
          `${open === undefined ? 'n/a' : fixed(run.rate / open.rate, 2)} | ${name.endsWith('open') ? '' : fixed(over, 1)} |`,
      )
    }

    console.log('\nTargets:')
    const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met')
    for (const framework of ['node', 'express', 'fastify'] as const) {
      const on = runs.get(`${framework} ssokit` as ColdServer)
      const off = runs.get(`${framework} ssokit, no cache` as ColdServer)
      if (on === undefined || off === undefined) continue
      const rate = on.rate / off.rate
      const cpu = on.cpu !== undefined && off.cpu !== undefined ? off.cpu / on.cpu : undefined
      console.log(
        `- ${framework}: distinct tokens, cache on / cache off = ${rate.toFixed(2)} (req/s), ` +
          `${fixed(cpu, 2)} (CPU); target >= ${TARGETS.cacheOnOverOff}: ` +
          verdict(Math.max(rate, cpu ?? 0) >= TARGETS.cacheOnOverOff),
      )
    }
    const nodeOn = runs.get('node ssokit')
    const nodeOpen = runs.get('node open')
    if (nodeOn?.cpu !== undefined && nodeOpen?.cpu !== undefined) {
      const over = nodeOn.cpu - nodeOpen.cpu
      const ratio = over / verifyCost
      console.log(
        `- cold node:http route: ${over.toFixed(1)} µs of server CPU per request over the unprotected ` +
          `route = ${ratio.toFixed(2)}x a cold verify() (${verifyCost.toFixed(1)} µs, same run); ` +
          `target <= ${TARGETS.cpuOverVerify}x: ${verdict(ratio <= TARGETS.cpuOverVerify)}`,
      )
    }
    console.log(
      `- memory per cached token (${MEMORY_ENTRIES} entries): ${fixed(heapPerEntry, 0)} B heap, ` +
        `${fixed(rssPerEntry, 0)} B RSS; target <= ${TARGETS.bytesPerEntry} B: ` +
        verdict(
          Math.max(heapPerEntry ?? Infinity, rssPerEntry ?? Infinity) <= TARGETS.bytesPerEntry,
        ),
    )
    if (options.profile) await profile(issuer.issuer, tokensFile, token)
  } finally {
    rmSync(dir, { recursive: true, force: true })
    await issuer.close()
  }
}
