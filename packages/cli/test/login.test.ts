import assert from 'node:assert/strict'
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'

import { startIdp, type RunningIdp } from '@ssokit/idp'
import type { Browser } from 'playwright-core'

import {
  approveDeviceInChromium,
  browserSignIn,
  launchChromium,
} from '../../client/test/chromium.js'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))

interface Running {
  readonly child: ChildProcessWithoutNullStreams
  /** Resolves with the first match of `pattern` in stderr so far or to come. */
  stderrMatch(pattern: RegExp): Promise<RegExpExecArray>
  readonly done: Promise<{ code: number | null; stdout: string; stderr: string }>
}

function start(args: string[], env: Record<string, string>): Running {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  const waiters: (() => void)[] = []
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString()
    for (const wake of waiters.splice(0)) wake()
  })
  child.stdin.end()
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('close', (code) => {
      for (const wake of waiters.splice(0)) wake()
      resolve({ code, stdout, stderr })
    })
  })
  return {
    child,
    done,
    async stderrMatch(pattern) {
      for (;;) {
        const found = pattern.exec(stderr)
        if (found) return found
        if (child.exitCode !== null) throw new Error(`exited before ${pattern}: ${stderr}`)
        await new Promise<void>((resolve) => waiters.push(resolve))
      }
    },
  }
}

const run = (args: string[], env: Record<string, string>) => start(args, env).done

const payload = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >

describe('ssokit login, and ssokit token with the login', () => {
  let idp: RunningIdp
  let browser: Browser
  let dir: string
  before(async () => {
    ;[idp, browser, dir] = await Promise.all([
      startIdp({ port: 0 }),
      launchChromium(),
      mkdtemp(join(tmpdir(), 'ssokit-cli-login-')),
    ])
  })
  after(async () => {
    await Promise.all([idp.close(), browser.close()])
    await rm(dir, { recursive: true, force: true })
  })

  it('logs in with the device flow approved in Chromium; ssokit token then prints the user token from the cache', async () => {
    const env = { SSOKIT_HOME: join(dir, 'device') }
    const login = start(['login', '--issuer', idp.issuer, '--client-id', 'demo-cli', '--qr'], env)
    const [, code] = await login.stderrMatch(/enter the code: (\S+)\n/)
    const [, complete] = await login.stderrMatch(/Or open (\S+) or scan this QR code:\n/)
    assert.equal(complete, `${idp.issuer}/device?user_code=${code}`)
    await approveDeviceInChromium(browser, complete, { username: 'alice', password: 'alice' })
    const finished = await login.done
    assert.equal(finished.code, 0, finished.stderr)
    assert.match(
      finished.stdout,
      /^Logged in as alice to demo-cli; the access token is valid until /,
    )
    assert.match(finished.stderr, /[▀▄█]/, 'the QR code, asked for with --qr')
    assert.ok(!/⠋/.test(finished.stderr) && !finished.stderr.includes('\u001b[2K'), 'no spinner')

    const token = await run(['token', '--issuer', idp.issuer, '--client-id', 'demo-cli'], env)
    assert.equal(token.code, 0, token.stderr)
    assert.equal(token.stderr, '')
    assert.match(token.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/)
    assert.equal(payload(token.stdout.trim()).sub, 'alice')
    assert.equal(payload(token.stdout.trim()).azp, 'demo-cli')

    const status = await run(['status', '--json'], env)
    const entries = JSON.parse(status.stdout) as Record<string, unknown>[]
    assert.equal(entries.length, 1)
    assert.deepEqual(
      entries.map((e) => [e.grant, e.username, e.refreshable]),
      [['login', 'alice', true]],
    )

    const again = await run(['login', '--issuer', idp.issuer, '--client-id', 'demo-cli'], env)
    assert.equal(again.code, 0, again.stderr)
    assert.match(again.stdout, /^Already logged in as alice to demo-cli/)
    assert.equal(again.stderr, '')

    const out = await run(['logout', '--client-id', 'demo-cli'], env)
    assert.equal(out.code, 0, out.stderr)
    const none = await run(['token', '--issuer', idp.issuer, '--client-id', 'demo-cli'], env)
    assert.equal(none.code, 1)
    assert.equal(none.stdout, '')
    assert.match(
      none.stderr,
      /no usable login for demo-cli is cached: run `ssokit login --client-id demo-cli --issuer /,
    )
  })

  it('logs in with --browser: Chromium follows the printed URL to the loopback listener', async () => {
    const env = { SSOKIT_HOME: join(dir, 'browser') }
    const login = start(
      ['login', '--issuer', idp.issuer, '--client-id', 'demo-cli', '--browser'],
      env,
    )
    const [, url] = await login.stderrMatch(/open this URL in a browser on this machine:\n(\S+)\n/)
    const done = await browserSignIn(browser, url ?? '', { username: 'bob', password: 'bob' })
    assert.match(done.text, /You are signed in/)
    const finished = await login.done
    assert.equal(finished.code, 0, finished.stderr)
    assert.match(finished.stdout, /^Logged in as bob to demo-cli/)
    const token = await run(['token', '--issuer', idp.issuer, '--client-id', 'demo-cli'], env)
    assert.equal(token.code, 0, token.stderr)
    assert.equal(payload(token.stdout.trim()).sub, 'bob')
  })

  it('ends a waiting device login on Ctrl-C with exit status 1 and nothing cached', async () => {
    const env = { SSOKIT_HOME: join(dir, 'cancel') }
    const login = start(['login', '--issuer', idp.issuer, '--client-id', 'demo-cli'], env)
    await login.stderrMatch(/enter the code: /)
    login.child.kill('SIGINT')
    const finished = await login.done
    assert.equal(finished.code, 1)
    assert.match(finished.stderr, /The login was cancelled\./)
    const status = await run(['status', '--json'], env)
    assert.deepEqual(JSON.parse(status.stdout), [])
  })

  it("ssokit token during another process's device login says so at once, naming its pid; after it, uses its login", async () => {
    const env = { SSOKIT_HOME: join(dir, 'concurrent') }
    const args = ['--issuer', idp.issuer, '--client-id', 'demo-cli']
    const login = start(['login', ...args, '--qr'], env)
    const [, complete] = await login.stderrMatch(/Or open (\S+) or scan this QR code:\n/)
    // The login holds the credential's lock while it waits for the user.
    const waiting = await run(['token', ...args], env)
    assert.equal(waiting.code, 1)
    assert.equal(waiting.stdout, '')
    assert.match(
      waiting.stderr,
      new RegExp(
        `^ssokit: Another login for this credential is in progress \\(process ${String(login.child.pid)}\\)`,
      ),
    )
    await approveDeviceInChromium(browser, complete ?? '', { username: 'alice', password: 'alice' })
    const finished = await login.done
    assert.equal(finished.code, 0, finished.stderr)
    const token = await run(['token', ...args], env)
    assert.equal(token.code, 0, token.stderr)
    assert.equal(payload(token.stdout.trim()).sub, 'alice')
  })

  it('refuses two login methods, --audience with a login, and a secret on the command line', async () => {
    const base = ['--issuer', idp.issuer, '--client-id', 'demo-cli']
    const both = await run(['login', ...base, '--device', '--browser'], {})
    assert.equal(both.code, 2)
    assert.match(both.stderr, /give one of --device, --browser, not several/)
    const audience = await run(['token', ...base, '--audience', 'demo-api'], {})
    assert.equal(audience.code, 2)
    assert.match(audience.stderr, /--audience needs a client secret/)
    const secret = await run(['login', ...base, '--client-secret', 'argv-secret-2'], {})
    assert.equal(secret.code, 2)
    assert.ok(!secret.stderr.includes('argv-secret-2'))
  })

  it('--help lists the login methods and examples', async () => {
    const help = await run(['login', '--help'], {})
    assert.equal(help.code, 0)
    assert.match(help.stdout, /--device\s+Device flow/)
    assert.match(help.stdout, /Examples:\n {2}ssokit login --cern --client-id/)
  })
})
