/**
 * Requests per second of a protected route as a ratio of the same route unprotected, for each
 * adapter. The server runs in a child process pinned to one core (`taskset -c 1`), wrk on the
 * other; both servers are warmed up, then measured in alternating runs. Besides requests per
 * second, the server's CPU time per request is read from /proc: on a busy machine it is the
 * steadier figure, and its ratio is the same one when the server is CPU-bound. One token, issued
 * by a started development provider, is sent on every request to both servers (the normal case
 * for an API), so the only difference is the check. Then the same with a different token on
 * every request (`http-cold.ts`), against peers too.
 *
 *   npm run bench -- http
 *   node --conditions=source --import tsx bench/http.ts [node fastify express hono]
 *       [--repeated | --cold] [--profile]
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import express from 'express'
import Fastify from 'fastify'
import { Hono } from 'hono'
import { createBearerAuthenticator, type Authenticator } from '@ssokit/core'
import * as ssokitExpress from '@ssokit/express'
import { ssokit as ssokitFastify, requireAuth as fastifyRequireAuth } from '@ssokit/fastify'
import * as ssokitHono from '@ssokit/hono'
import { sendWebResponse, toWebRequest, withAuth } from '@ssokit/node'
import { startIdp } from '@ssokit/idp'

import { runCold } from './http-cold.js'
import { best, hasCommand, pin, wrk, type Run } from './wrk.js'

const FRAMEWORKS = ['node', 'fastify', 'express', 'hono'] as const
type Framework = (typeof FRAMEWORKS)[number]
const TARGET = 0.85
const WRK = ['-t1', '-c32', '-d5s']
const WARM_UP = ['-t1', '-c32', '-d2s']
const ROUNDS = 3

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      resolve((server.address() as AddressInfo).port)
    })
  })
}

/** Child-process side: serve GET /api, protected or not, and print the port. */
async function serve(framework: Framework, auth: Authenticator | undefined): Promise<number> {
  switch (framework) {
    case 'node': {
      const protectedHandler = auth
        ? withAuth(
            (_req, res, identity) => {
              res.setHeader('content-type', 'application/json')
              res.end(JSON.stringify({ subject: identity.subject }))
            },
            { auth },
          )
        : undefined
      const server = createServer((req, res) => {
        if (protectedHandler) {
          void protectedHandler(req, res)
          return
        }
        // The same work as the protected handler, bar the check.
        res.setHeader('content-type', 'application/json')
        res.end(JSON.stringify({ subject: 'anonymous' }))
      })
      return listen(server)
    }
    case 'express': {
      const app = express()
      const send = (req: express.Request, res: express.Response) => {
        res.json({ subject: req.auth?.subject ?? 'anonymous' })
      }
      if (auth) app.get('/api', ssokitExpress.requireAuth({ auth }), send)
      else app.get('/api', send)
      return listen(createServer(app))
    }
    case 'fastify': {
      const app = Fastify()
      if (auth) await app.register(ssokitFastify, { auth })
      app.get('/api', auth ? { onRequest: fastifyRequireAuth() } : {}, (request) => ({
        subject: request.auth?.subject ?? 'anonymous',
      }))
      await app.listen({ host: '127.0.0.1', port: 0 })
      return (app.server.address() as AddressInfo).port
    }
    case 'hono': {
      const app = new Hono()
      if (auth) app.use('/api', ssokitHono.requireAuth({ auth }))
      app.get('/api', (c) => {
        const identity = auth ? c.get('auth') : undefined
        return c.json({ subject: identity?.subject ?? 'anonymous' })
      })
      const server = createServer((req, res) => {
        void (async () => {
          await sendWebResponse(res, await app.fetch(toWebRequest(req)))
        })()
      })
      return listen(server)
    }
  }
}

function startServer(
  framework: Framework,
  issuer: string | undefined,
): Promise<{ child: ChildProcess; port: number }> {
  const args = [
    '--conditions=source',
    '--import',
    'tsx',
    fileURLToPath(import.meta.url),
    '--serve',
    framework,
  ]
  if (issuer !== undefined) args.push(issuer)
  const command = pin ? 'taskset' : process.execPath
  const child = spawn(command, pin ? ['-c', '1', process.execPath, ...args] : args, {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      reject(new Error(`${framework} server exited with ${String(code)}`))
    })
    const lines = createInterface({ input: child.stdout })
    lines.on('line', (line) => {
      const match = /^PORT (\d+)$/.exec(line)
      if (match) resolve({ child, port: Number(match[1]) })
    })
  })
}

interface Target {
  readonly child: ChildProcess
  readonly url: string
  /** The `Authorization` header wrk sends. */
  readonly header: string
}

/** Starts a server; both kinds get the same requests, token included, so only the check differs. */
async function startTarget(
  framework: Framework,
  issuer: string | undefined,
  token: string,
): Promise<Target> {
  const { child, port } = await startServer(framework, issuer)
  const url = `http://127.0.0.1:${port}/api`
  const check = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
  if (check.status !== 200) throw new Error(`${framework}: GET /api answered ${check.status}`)
  const anonymous = await fetch(url)
  if (issuer !== undefined && anonymous.status !== 401) {
    throw new Error(`${framework}: the protected route let an anonymous call in`)
  }
  return { child, url, header: `Authorization: Bearer ${token}` }
}

function stop(target: Target): void {
  target.child.removeAllListeners('exit')
  target.child.kill()
}

/**
 * Both servers run side by side and are measured in turns, keeping the best run of each: on a
 * shared machine, other load only ever lowers a figure, so the best runs are the comparable ones.
 */
interface Measure {
  readonly open: Run
  readonly guarded: Run
}

/**
 * Both servers run side by side and are measured in turns, keeping the best run of each: on a
 * shared machine, other load only ever lowers a figure, so the best runs are the comparable ones.
 * The server's CPU time per request is measured too; it hardly moves with other load.
 */
async function measure(framework: Framework, issuer: string, token: string): Promise<Measure> {
  const open = await startTarget(framework, undefined, token)
  const guarded = await startTarget(framework, issuer, token)
  try {
    wrk(WARM_UP, open.url, open.header, open.child.pid, framework)
    wrk(WARM_UP, guarded.url, guarded.header, guarded.child.pid, framework)
    let openBest: Run | undefined
    let guardedBest: Run | undefined
    for (let round = 0; round < ROUNDS; round += 1) {
      openBest = best(openBest, wrk(WRK, open.url, open.header, open.child.pid, framework))
      guardedBest = best(
        guardedBest,
        wrk(WRK, guarded.url, guarded.header, guarded.child.pid, framework),
      )
    }
    if (openBest === undefined || guardedBest === undefined) throw new Error('no measurement')
    return { open: openBest, guarded: guardedBest }
  } finally {
    stop(open)
    stop(guarded)
  }
}

async function fetchToken(issuer: string): Promise<string> {
  const response = await fetch(`${issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'demo-app',
      client_secret: 'demo-app-secret',
      audience: 'demo-api',
    }),
  })
  const body = (await response.json()) as { access_token?: string }
  if (!response.ok || body.access_token === undefined)
    throw new Error(`no token: ${response.status}`)
  return body.access_token
}

/** Repeated-token ratios recorded in docs/performance.md, which later runs must not fall below. */
const RECORDED: Partial<Record<Framework, number>> = { node: 0.89, fastify: 0.93 }

async function main(): Promise<void> {
  if (!hasCommand('wrk')) throw new Error('wrk is not installed (Debian: apt-get install wrk)')
  const args = process.argv.slice(2)
  if (!args.includes('--cold')) await repeated(args)
  if (!args.includes('--repeated')) await runCold({ profile: args.includes('--profile') })
}

async function repeated(args: readonly string[]): Promise<void> {
  const selected = args.filter((a): a is Framework => (FRAMEWORKS as readonly string[]).includes(a))
  const frameworks = selected.length > 0 ? selected : FRAMEWORKS
  const idp = await startIdp({ port: 0, log: false })
  const rows: { framework: Framework; result: Measure }[] = []
  try {
    const token = await fetchToken(idp.issuer)
    for (const framework of frameworks) {
      rows.push({ framework, result: await measure(framework, idp.issuer, token) })
    }
  } finally {
    await idp.close()
  }
  const fixed = (value: number | undefined, digits: number) =>
    value === undefined ? 'n/a' : value.toFixed(digits)
  console.log(
    `\nwrk ${WRK.join(' ')} on 127.0.0.1, best of ${ROUNDS} alternating runs after a warm-up` +
      (pin ? '; server on core 1, wrk on core 0' : ''),
  )
  console.log(
    '| adapter | unprotected req/s | protected req/s | ratio (req/s) | unprotected CPU µs/req | protected CPU µs/req | ratio (CPU) |',
  )
  console.log('|---|---:|---:|---:|---:|---:|---:|')
  for (const { framework, result } of rows) {
    const rateRatio = result.guarded.rate / result.open.rate
    const cpuRatio =
      result.open.cpu === undefined || result.guarded.cpu === undefined
        ? undefined
        : result.open.cpu / result.guarded.cpu
    const floor = Math.max(TARGET, RECORDED[framework] ?? 0)
    const flag = (ratio: number | undefined) =>
      ratio !== undefined && ratio < floor ? ` (below ${floor})` : ''
    console.log(
      `| ${framework} | ${fixed(result.open.rate, 0)} | ${fixed(result.guarded.rate, 0)} | ` +
        `${fixed(rateRatio, 2)}${flag(rateRatio)} | ${fixed(result.open.cpu, 1)} | ${fixed(result.guarded.cpu, 1)} | ` +
        `${fixed(cpuRatio, 2)}${flag(cpuRatio)} |`,
    )
  }
}

if (process.argv[2] === '--serve') {
  const framework = process.argv[3] as Framework
  const issuer = process.argv[4]
  const auth =
    issuer === undefined ? undefined : createBearerAuthenticator({ issuer, clientId: 'demo-api' })
  const port = await serve(framework, auth)
  console.log(`PORT ${port}`)
} else {
  await main()
}
