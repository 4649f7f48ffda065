import assert from 'node:assert/strict'
import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { createServer as createTcpServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import type { Readable } from 'node:stream'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { startIdp, type RunningIdp } from '@ssokit/idp'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))

async function freePort(): Promise<number> {
  const probe = createTcpServer()
  probe.listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as AddressInfo
  probe.close()
  await once(probe, 'close')
  return port
}

/** An application that takes its time: `/public/slow` answers after 1.5 s, `/public/stuck` never. */
interface SlowApp {
  readonly origin: string
  /** Resolves when the next request reaches the application. */
  nextRequest(): Promise<string>
  close(): Promise<void>
}

async function startSlowApp(): Promise<SlowApp> {
  let waiting: ((url: string) => void) | undefined
  const server: Server = createServer((req, res) => {
    waiting?.(req.url ?? '')
    waiting = undefined
    if (req.url === '/public/stuck') return
    setTimeout(() => {
      res.end('slow answer, complete')
    }, 1500)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    origin: `http://127.0.0.1:${port}`,
    nextRequest: () =>
      new Promise((resolve) => {
        waiting = resolve
      }),
    async close() {
      server.closeAllConnections()
      server.close()
      await once(server, 'close')
    },
  }
}

interface Running {
  readonly child: ChildProcessByStdio<null, Readable, Readable>
  readonly port: number
  stdout(): string
}

async function startProxyProcess(
  idp: RunningIdp,
  app: SlowApp,
  config: string,
  extra: string[] = [],
): Promise<Running> {
  const port = await freePort()
  const child = spawn(
    process.execPath,
    [
      '--conditions=source',
      '--import',
      'tsx',
      MAIN,
      'proxy',
      '--upstream',
      app.origin,
      '--issuer',
      idp.issuer,
      '--client-id',
      'demo-app',
      '--public-url',
      `http://localhost:${port}`,
      '--port',
      String(port),
      '--config',
      config,
      ...extra,
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '', OIDC_CLIENT_SECRET: 'demo-app-secret' },
    },
  )
  let stdout = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.resume()
  while (!stdout.includes('listening on')) {
    if (child.exitCode !== null) throw new Error(`ssokit proxy exited: ${stdout}`)
    await once(child.stdout, 'data')
  }
  return { child, port, stdout: () => stdout }
}

async function waitFor(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 25))
  assert.ok(check())
}

describe('ssokit proxy: graceful shutdown (O14)', () => {
  let dir: string
  let config: string
  let idp: RunningIdp
  let app: SlowApp

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-shutdown-'))
    config = join(dir, 'proxy.yaml')
    await writeFile(config, ['rules:', '  - path: /public', '    public: true'].join('\n'))
    idp = await startIdp({ port: 0, log: false })
    app = await startSlowApp()
  })
  after(async () => {
    await app.close()
    await idp.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('O14 on SIGTERM stops accepting, lets the request in flight finish, then exits 0', async () => {
    const proxy = await startProxyProcess(idp, app, config)
    const reached = app.nextRequest()
    const inFlight = fetch(`http://127.0.0.1:${proxy.port}/public/slow`)
    await reached
    proxy.child.kill('SIGTERM')
    await waitFor(() => proxy.stdout().includes('Received SIGTERM'))
    // No new connection is accepted once the drain has begun.
    await assert.rejects(fetch(`http://127.0.0.1:${proxy.port}/public/other`))
    const response = await inFlight
    assert.equal(response.status, 200)
    assert.equal(await response.text(), 'slow answer, complete')
    const [code] = (await once(proxy.child, 'close')) as [number | null]
    assert.equal(code, 0)
    // The finished request was logged before the exit.
    const line = proxy
      .stdout()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((entry) => entry.path === '/public/slow')
    assert.equal(line?.status, 200)
    assert.equal(line.outcome, 'forwarded')
  })

  it('O14 closes what has not finished after --shutdown-timeout, and still exits 0', async () => {
    const proxy = await startProxyProcess(idp, app, config, ['--shutdown-timeout', '1'])
    const reached = app.nextRequest()
    const stuck = fetch(`http://127.0.0.1:${proxy.port}/public/stuck`).then(
      (response) => response.status,
      () => 'closed',
    )
    await reached
    proxy.child.kill('SIGTERM')
    const [code] = (await once(proxy.child, 'close')) as [number | null]
    assert.equal(code, 0)
    assert.equal(await stuck, 'closed')
    assert.match(proxy.stdout(), /had not finished in time/)
  })
})
