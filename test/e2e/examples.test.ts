/**
 * The examples in examples/ run as a user would start them, configured through the environment
 * (loadConfig), against the development provider: a token for `demo-api` is accepted, none is
 * refused, and a misspelt variable is named on stderr. examples/legacy-flask starts with its one
 * command (run.sh: uWSGI, ssokit idp, ssokit proxy) and its Flask app sees the signed-in user.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'

import { CookieJar, startIdp, type RunningIdp } from '@ssokit/idp'
import type { Browser } from 'playwright-core'

import {
  approveDeviceInChromium,
  browserSignIn,
  launchChromium,
} from '../../packages/client/test/chromium.js'
import { freePort } from '../support/redis.js'
import { finishLogin } from '../support/session-redis.js'

const root = fileURLToPath(new URL('../..', import.meta.url))
const EXAMPLES = ['express', 'fastify', 'hono', 'node'] as const

interface Example {
  readonly url: string
  readonly child: ChildProcess
  stderr(): string
}

const running = new Set<ChildProcess>()
const groups = new Set<number>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
  // run.sh leads a process group of its own; its servers must not outlive the tests either.
  for (const pid of groups) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
})

/** Starts an example with `env` added to this process's environment; resolves on its banner. */
function startExample(name: string, env: Record<string, string>): Promise<Example> {
  const child = spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', join('examples', name, 'server.ts')],
    { cwd: root, env: { ...process.env, ...env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] },
  )
  running.add(child)
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
      const match = /(http:\/\/127\.0\.0\.1:\d+)\/api\/me/.exec(stdout)
      if (match?.[1] !== undefined) resolve({ url: match[1], child, stderr: () => stderr })
    })
    child.once('error', reject)
    child.once('exit', (code) => {
      reject(new Error(`${name} exited with ${String(code)} before listening: ${stderr}`))
    })
  })
}

async function stop(example: Example): Promise<void> {
  const exited = new Promise((resolve) => example.child.once('exit', resolve))
  example.child.kill('SIGTERM')
  await exited
  running.delete(example.child)
}

let idp: RunningIdp
let dir: string
let token: string

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ssokit-examples-'))
  idp = await startIdp({ port: 0, keys: join(dir, 'keys.json'), log: false })
  const response = await fetch(`${idp.issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'demo-app',
      client_secret: 'demo-app-secret',
      audience: 'demo-api',
    }),
  })
  token = ((await response.json()) as { access_token: string }).access_token
})
after(async () => {
  await idp.close()
  await rm(dir, { recursive: true, force: true })
})

describe('examples configured through the environment', () => {
  for (const name of EXAMPLES) {
    it(`${name}: OIDC_ISSUER points it at the provider; tokens for demo-api pass`, async () => {
      const example = await startExample(name, { OIDC_ISSUER: idp.issuer })
      try {
        const none = await fetch(`${example.url}/api/me`)
        assert.equal(none.status, 401)
        assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="demo-api"')
        const me = await fetch(`${example.url}/api/me`, {
          headers: { authorization: `Bearer ${token}` },
        })
        assert.equal(me.status, 200)
        assert.equal(((await me.json()) as { subject: string }).subject, 'service-account-demo-app')
        assert.doesNotMatch(example.stderr(), /ssokit warn/)
      } finally {
        await stop(example)
      }
    })
  }

  it('a misspelt variable is named on stderr, with the intended name', async () => {
    const example = await startExample('node', {
      OIDC_ISSUER: idp.issuer,
      OIDC_CLIENTID: 'other-api',
      TSGAUTH_ALLOWED_ALGS: 'RS256',
    })
    try {
      assert.match(
        example.stderr(),
        /ssokit warn: OIDC_CLIENTID is not a setting ssokit reads, so it is ignored: did you mean OIDC_CLIENT_ID\? \[env_unknown\]/,
      )
      // The client id stayed the example's own.
      const me = await fetch(`${example.url}/api/me`, {
        headers: { authorization: `Bearer ${token}` },
      })
      assert.equal(me.status, 200)
    } finally {
      await stop(example)
    }
  })
})

interface LegacyFlask {
  readonly child: ChildProcess
  readonly ports: { readonly app: number; readonly idp: number; readonly proxy: number }
  output(): string
}

/** `examples/legacy-flask/run.sh` on free ports; resolves once it says where to open the app. */
async function startLegacyFlask(): Promise<LegacyFlask> {
  const ports = { app: await freePort(), idp: await freePort(), proxy: await freePort() }
  const child = spawn('bash', [join('examples', 'legacy-flask', 'run.sh')], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      APP_PORT: String(ports.app),
      IDP_PORT: String(ports.idp),
      PROXY_PORT: String(ports.proxy),
      SSOKIT: `${process.execPath} --conditions=source --import tsx ${join(root, 'packages/cli/src/main.ts')}`,
    },
  })
  if (child.pid !== undefined) groups.add(child.pid)
  let output = ''
  child.stdout.on('data', (d: Buffer) => (output += d.toString()))
  child.stderr.on('data', (d: Buffer) => (output += d.toString()))
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', () => {
      if (output.includes(`open http://localhost:${ports.proxy}/`)) resolve()
    })
    child.once('exit', (code) => {
      reject(new Error(`run.sh exited with ${String(code)} before it was ready:\n${output}`))
    })
  })
  return { child, ports, output: () => output }
}

async function closed(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/`)
    return false
  } catch {
    return true
  }
}

describe('examples/legacy-flask: a Shibboleth/ADFS-era Flask app behind ssokit proxy', () => {
  it('starts with run.sh; the app reads the signed-in user from HTTP_ADFS_*; Ctrl-C stops all', async () => {
    const flask = await startLegacyFlask()
    const base = `http://localhost:${flask.ports.proxy}`
    try {
      // Without the proxy the app finds no ADFS attributes: it depends on the front server.
      assert.equal((await fetch(`http://127.0.0.1:${flask.ports.app}/whoami`)).status, 401)
      // A script claiming to be someone is asked to sign in; the claim never reaches the app.
      const spoofed = await fetch(`${base}/whoami`, { headers: { 'ADFS-LOGIN': 'mallory' } })
      assert.equal(spoofed.status, 401)
      const jar = new CookieJar()
      const start = await jar.fetch(`${base}/_ssokit/login?returnTo=/whoami`)
      const issuer = `http://127.0.0.1:${flask.ports.idp}/auth/realms/dev`
      const { callback } = await finishLogin(
        issuer,
        start.headers.get('location') ?? '',
        'alice',
        jar,
      )
      assert.equal(callback.status, 302)
      assert.equal(callback.headers.get('location'), `${base}/whoami`)
      const me = await jar.fetch(`${base}/whoami`, { headers: { adfs_login: 'mallory' } })
      assert.equal(me.status, 200, flask.output())
      assert.deepEqual(await me.json(), {
        username: 'alice',
        email: 'alice@example.org',
        fullname: 'Alice Example',
        groups: ['admin', 'user'],
      })
      const page = await jar.fetch(`${base}/`, { headers: { accept: 'text/html' } })
      assert.match(await page.text(), /Hello, <span id="fullname">Alice Example<\/span>/)
    } finally {
      flask.child.kill('SIGINT')
      if (flask.child.exitCode === null) await once(flask.child, 'exit')
    }
    for (const port of Object.values(flask.ports)) assert.ok(await closed(port), `${port} open`)
  })
})

/** A code block of the docs marked `<!-- tested: KIND [device|browser] expect=TEXT [env=K=V] -->`. */
interface DocBlock {
  readonly where: string
  readonly kind: 'shell' | 'node' | 'python'
  readonly login: 'device' | 'browser' | undefined
  readonly expect: string
  readonly env: Record<string, string>
  readonly code: string
}

async function docBlocks(file: string): Promise<DocBlock[]> {
  const text = await readFile(join(root, file), 'utf8')
  const blocks: DocBlock[] = []
  for (const match of text.matchAll(/<!-- tested: ([^>]*?) -->\s*\n```\w*\n([\s\S]*?)```/g)) {
    const [, marker = '', code = ''] = match
    const [kind, ...words] = marker.split(' ')
    assert.ok(kind === 'shell' || kind === 'node' || kind === 'python', `${file}: ${marker}`)
    const value = (name: string) =>
      words.filter((w) => w.startsWith(`${name}=`)).map((w) => w.slice(name.length + 1))
    const env = Object.fromEntries(
      value('env').map((pair) => pair.split('=', 2) as [string, string]),
    )
    blocks.push({
      where: `${file}: ${marker}`,
      kind,
      login: words.includes('device')
        ? 'device'
        : words.includes('browser')
          ? 'browser'
          : undefined,
      expect: value('expect')[0] ?? '',
      env,
      code,
    })
  }
  return blocks
}

describe('the quick starts of docs/client.md and docs/cli.md, run as written against ssokit demo', () => {
  const main = join(root, 'packages/cli/src/main.ts')
  let demo: ChildProcess
  let idpOrigin: string
  let appUrl: string
  let bin: string
  let browser: Browser
  let scripts: string

  before(async () => {
    bin = await mkdtemp(join(tmpdir(), 'ssokit-docs-bin-'))
    // Scripts that import @ssokit/client must sit inside the repository to resolve it.
    scripts = await mkdtemp(join(root, 'node_modules', '.ssokit-docs-'))
    await writeFile(
      join(bin, 'ssokit'),
      `#!/bin/sh\nexec "${process.execPath}" --conditions=source --import tsx "${main}" "$@"\n`,
      { mode: 0o755 },
    )
    browser = await launchChromium()
    demo = spawn(
      process.execPath,
      [
        '--conditions=source',
        '--import',
        'tsx',
        main,
        'demo',
        '--idp-port',
        '0',
        '--app-port',
        '0',
      ],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    )
    running.add(demo)
    let banner = ''
    await new Promise<void>((resolve, reject) => {
      demo.stdout?.on('data', (d: Buffer) => {
        banner += d.toString()
        const app = /Application +(http:\/\/localhost:\d+)/.exec(banner)?.[1]
        const idpUrl = /Identity provider +(http:\/\/127\.0\.0\.1:\d+)\//.exec(banner)?.[1]
        if (app !== undefined && idpUrl !== undefined) {
          appUrl = app
          idpOrigin = idpUrl
          resolve()
        }
      })
      demo.once('exit', (code) => {
        reject(new Error(`ssokit demo exited with ${String(code)}: ${banner}`))
      })
    })
  })
  after(async () => {
    demo.kill('SIGTERM')
    if (demo.exitCode === null) await once(demo, 'exit')
    running.delete(demo)
    await browser.close()
    await rm(bin, { recursive: true, force: true })
    await rm(scripts, { recursive: true, force: true })
  })

  async function runBlock(block: DocBlock, home: string): Promise<string> {
    const code = block.code
      .replaceAll('http://127.0.0.1:4000', idpOrigin)
      .replaceAll('http://localhost:3000', appUrl)
    const file = join(
      scripts,
      `block-${blocks.indexOf(block)}.${block.kind === 'shell' ? 'sh' : block.kind === 'node' ? 'mjs' : 'py'}`,
    )
    await writeFile(file, code)
    const [command, args] =
      block.kind === 'shell'
        ? ['bash', ['-e', file]]
        : block.kind === 'node'
          ? [process.execPath, ['--conditions=source', '--import', 'tsx', file]]
          : ['python3', [file]]
    // Nothing of this machine's provider settings: only what the block itself says.
    const inherited = Object.entries(process.env).filter(
      ([name]) => !['SSOKIT_CLIENT_SECRET', 'OIDC_CLIENT_SECRET', 'OIDC_ISSUER'].includes(name),
    )
    const env: NodeJS.ProcessEnv = {
      ...Object.fromEntries(inherited),
      ...block.env,
      SSOKIT_HOME: home,
      PATH: `${bin}:${process.env.PATH ?? ''}`,
    }
    const child = spawn(command, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
    running.add(child)
    let stdout = ''
    let stderr = ''
    let signingIn: Promise<unknown> | undefined
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      if (signingIn !== undefined) return
      const alice = { username: 'alice', password: 'alice' }
      const device = /Or open (\S+)/.exec(stderr)?.[1]
      const page = /open this URL in a browser on this machine:\n(\S+)/.exec(stderr)?.[1]
      if (block.login === 'device' && device !== undefined) {
        signingIn = approveDeviceInChromium(browser, device, alice)
      } else if (block.login === 'browser' && page !== undefined) {
        signingIn = browserSignIn(browser, page, alice)
      }
    })
    const [status] = (await once(child, 'close')) as [number | null]
    running.delete(child)
    await signingIn
    assert.equal(status, 0, `${block.where}\n${stderr}`)
    if (block.login !== undefined) assert.ok(signingIn, `${block.where}: no sign-in was asked for`)
    return stdout
  }

  let blocks: DocBlock[] = []
  it('marks the quick starts of both documents as tested', async () => {
    const client = await docBlocks('docs/client.md')
    const cli = await docBlocks('docs/cli.md')
    blocks = [...client, ...cli]
    assert.deepEqual(
      client.map((b) => `${b.kind} ${b.login ?? ''}`),
      ['node ', 'node device', 'python '],
    )
    assert.deepEqual(
      cli.map((b) => `${b.kind} ${b.login ?? ''}`),
      ['shell ', 'shell device', 'shell browser'],
    )
  })

  it('each quick start calls the protected API of the demo and gets the expected identity', async () => {
    assert.ok(blocks.length > 0)
    for (const block of blocks) {
      const home = await mkdtemp(join(tmpdir(), 'ssokit-docs-home-'))
      try {
        const stdout = await runBlock(block, home)
        assert.ok(stdout.includes(block.expect), `${block.where} printed:\n${stdout}`)
      } finally {
        await rm(home, { recursive: true, force: true })
      }
    }
  })
})
