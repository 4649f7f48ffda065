/** `ssokit demo` as a user runs it: the real command line, in a child process. */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer, type Server } from 'node:net'
import { fileURLToPath } from 'node:url'
import { after, describe, it } from 'node:test'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))

interface Finished {
  code: number | null
  stdout: string
  stderr: string
}

const children = new Set<ChildProcess>()

function start(args: string[]): ChildProcess {
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', MAIN, 'demo', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  children.add(child)
  child.on('close', () => children.delete(child))
  return child
}

function finished(child: ChildProcess): Promise<Finished> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  return new Promise((resolve) =>
    child.on('close', (code) => {
      resolve({ code, stdout, stderr })
    }),
  )
}

async function occupiedPort(host = '127.0.0.1'): Promise<{ server: Server; port: number }> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, resolve)
  })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return { server, port: address.port }
}

describe('ssokit demo (command line)', () => {
  after(() => {
    for (const child of children) child.kill('SIGKILL')
  })

  it('prints the URLs, users and a token example, serves both parts and stops on SIGTERM', async () => {
    const child = start(['--idp-port', '0', '--app-port', '0'])
    const done = finished(child)
    let stdout = ''
    const ready = await new Promise<boolean>((resolve) => {
      child.stdout?.on('data', (d: Buffer) => {
        stdout += d.toString()
        if (stdout.includes('Press Ctrl-C')) resolve(true)
      })
      child.on('close', () => {
        resolve(false)
      })
    })
    assert.ok(ready, stdout)
    const app = /Application +(http:\/\/localhost:\d+)\n/.exec(stdout)?.[1]
    const issuer = /Identity provider +(http:\/\/127\.0\.0\.1:\d+\/auth\/realms\/dev)\n/.exec(
      stdout,
    )?.[1]
    assert.ok(app !== undefined && issuer !== undefined, stdout)
    assert.match(stdout, /alice \/ alice +roles admin, user/)
    assert.match(stdout, /bob \/ bob +no roles/)
    assert.ok(
      stdout.includes(
        `curl -s -u demo-app:demo-app-secret -d grant_type=client_credentials ${issuer}/protocol/openid-connect/token`,
      ),
      stdout,
    )
    assert.ok(stdout.includes(`curl -H "Authorization: Bearer $TOKEN" ${app}/api/whoami`))
    assert.ok(
      stdout.includes(
        `curl -H "Authorization: Bearer $(ssokit token --issuer ${issuer} --client-id demo-app)" ${app}/api/whoami`,
      ),
      stdout,
    )

    // The proxy line names this demo's provider and its client.
    const proxyLine = stdout.split('\n').find((line) => line.includes('ssokit proxy --upstream'))
    assert.ok(
      proxyLine?.includes(
        `OIDC_CLIENT_SECRET=demo-app-secret ssokit proxy --upstream http://127.0.0.1:8000 --issuer ${issuer} --client-id demo-app --public-url http://localhost:4180 --port 4180`,
      ),
      stdout,
    )

    const home = await fetch(`${app}/`, { headers: { accept: 'text/html' } })
    assert.equal(home.status, 200)
    assert.match(await home.text(), /Hello, World!/)
    const discovery = await fetch(`${issuer}/.well-known/openid-configuration`)
    assert.equal(discovery.status, 200)
    const whoami = await fetch(`${app}/api/whoami`)
    assert.equal(whoami.status, 401)

    child.kill('SIGTERM')
    const result = await done
    assert.equal(result.code, 0, result.stderr)
    assert.match(result.stdout, /Received SIGTERM, stopping\./)
  })

  it('exits 1 with a plain message when a port is taken', async () => {
    const { server, port } = await occupiedPort()
    try {
      const app = await finished(start(['--idp-port', '0', '--app-port', String(port)]))
      assert.equal(app.code, 1)
      assert.match(app.stderr, new RegExp(`port ${port} is already in use.*--app-port`))
      assert.doesNotMatch(app.stderr, /\n\s+at /)

      const idp = await finished(start(['--idp-port', String(port), '--app-port', '0']))
      assert.equal(idp.code, 1)
      assert.match(idp.stderr, new RegExp(`port ${port} is already in use.*--idp-port`))
      assert.doesNotMatch(idp.stderr, /\n\s+at /)
    } finally {
      server.close()
    }
  })

  it('refuses a port taken on ::1 only, where a browser may send localhost', async () => {
    const { server, port } = await occupiedPort('::1')
    try {
      const app = await finished(start(['--idp-port', '0', '--app-port', String(port)]))
      assert.equal(app.code, 1)
      assert.match(app.stderr, new RegExp(`port ${port} is already in use.*--app-port`))
    } finally {
      server.close()
    }
  })

  it('names two equal ports as such', async () => {
    const result = await finished(start(['--idp-port', '4123', '--app-port', '4123']))
    assert.equal(result.code, 2)
    assert.match(
      result.stderr,
      /^ssokit: --idp-port and --app-port are both 4123; the identity provider and the application need different ports\n/,
    )
  })

  it('exits 2 on a bad option', async () => {
    const result = await finished(start(['--app-port', 'eighty']))
    assert.equal(result.code, 2)
    assert.match(result.stderr, /--app-port must be a port number/)
    const help = await finished(start(['--help']))
    assert.equal(help.code, 0)
    assert.match(help.stdout, /--redis <url>/)
  })
})
