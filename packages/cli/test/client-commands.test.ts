import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'

import { exchange } from '@ssokit/client'
import { startIdp, type RunningIdp } from '@ssokit/idp'

import { userToken } from '../../client/test/helpers.js'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))
const SECRET = 'demo-app-secret'

interface Finished {
  code: number | null
  stdout: string
  stderr: string
}

function run(args: string[], env: Record<string, string>, stdin?: string): Promise<Finished> {
  const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  child.stdin.end(stdin ?? '')
  return new Promise((resolve) => {
    child.on('close', (code) => {
      resolve({ code, stdout, stderr })
    })
  })
}

const payload = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >

describe('ssokit token, status and logout', () => {
  let idp: RunningIdp
  let dir: string
  before(async () => {
    idp = await startIdp({ port: 0 })
    dir = await mkdtemp(join(tmpdir(), 'ssokit-cli-client-'))
  })
  after(async () => {
    await idp.close()
    await rm(dir, { recursive: true, force: true })
  })

  const home = (name: string) => join(dir, name)

  it('prints only a valid access token on stdout, the same one while it is fresh', async () => {
    const env = { SSOKIT_HOME: home('token'), SSOKIT_CLIENT_SECRET: SECRET }
    const args = [
      'token',
      '--issuer',
      idp.issuer,
      '--client-id',
      'demo-app',
      '--audience',
      'demo-api',
    ]
    const first = await run(args, env)
    assert.equal(first.code, 0, first.stderr)
    assert.equal(first.stderr, '')
    assert.match(first.stdout, /^[\w-]+\.[\w-]+\.[\w-]+\n$/)
    const token = first.stdout.trim()
    assert.equal(payload(token).aud, 'demo-api')
    const second = await run(args, env)
    assert.equal(second.stdout, first.stdout)
    const files = await readdir(home('token'))
    assert.equal(files.filter((f) => f.endsWith('.json')).length, 1)
    assert.equal((await stat(join(home('token'), files[0]!))).mode & 0o777, 0o600)

    const json = await run([...args, '--json'], env)
    const body = JSON.parse(json.stdout) as Record<string, unknown>
    assert.equal(body.access_token, token)
    assert.equal(body.token_type, 'Bearer')
    assert.deepEqual(body.audience, ['demo-api'])
    const decoded = await run([...args, '--decode'], env)
    const claims = JSON.parse(decoded.stdout) as { payload: Record<string, unknown> }
    assert.equal(claims.payload.sub, 'service-account-demo-app')
  })

  it('D16 refuses a secret on the command line and a secret file others can read; takes a 0600 file and stdin', async () => {
    const env = { SSOKIT_HOME: home('d16') }
    const args = ['token', '--issuer', idp.issuer, '--client-id', 'demo-app']
    for (const form of [['--client-secret', 'argv-secret-1'], ['--client-secret=argv-secret-1']]) {
      const refused = await run([...args, ...form], env)
      assert.equal(refused.code, 2)
      assert.match(refused.stderr, /not accepted on the command line/)
      assert.ok(!refused.stderr.includes('argv-secret-1'))
      assert.equal(refused.stdout, '')
    }
    const file = join(dir, 'secret.txt')
    await writeFile(file, `${SECRET}\n`, { mode: 0o644 })
    await chmod(file, 0o644)
    const open = await run([...args, '--client-secret-file', file], env)
    assert.equal(open.code, 2)
    assert.match(open.stderr, /readable by other users/)
    await chmod(file, 0o600)
    const ok = await run([...args, '--client-secret-file', file], env)
    assert.equal(ok.code, 0, ok.stderr)
    const piped = await run(
      [...args, '--client-secret-stdin'],
      { SSOKIT_HOME: home('d16-stdin') },
      `${SECRET}\n`,
    )
    assert.equal(piped.code, 0, piped.stderr)
    // Without a secret it is a login token; with no login cached and no terminal, it says so.
    const none = await run(args, { SSOKIT_HOME: home('d16-none') })
    assert.equal(none.code, 1)
    assert.match(none.stderr, /no usable login for demo-app is cached: run `ssokit login/)
  })

  it('D14 prints no secret or token on stderr, with debug logging and on failure', async () => {
    const debug = await run(['token', '--issuer', idp.issuer, '--client-id', 'demo-app'], {
      SSOKIT_HOME: home('d14'),
      SSOKIT_CLIENT_SECRET: SECRET,
      TSGAUTH_LOGLEVEL: 'DEBUG',
    })
    assert.equal(debug.code, 0, debug.stderr)
    assert.match(debug.stderr, /ssokit debug:/)
    assert.ok(!debug.stderr.includes(SECRET))
    assert.ok(!debug.stderr.includes(debug.stdout.trim()))
    const status = await run(['status', '--json'], { SSOKIT_HOME: home('d14') })
    assert.ok(!status.stdout.includes(debug.stdout.trim()), 'status shows no token')
    const wrong = await run(['token', '--issuer', idp.issuer, '--client-id', 'demo-app'], {
      SSOKIT_HOME: home('d14-wrong'),
      SSOKIT_CLIENT_SECRET: 'wrong-secret-value',
      TSGAUTH_LOGLEVEL: 'DEBUG',
    })
    assert.equal(wrong.code, 1)
    assert.match(wrong.stderr, /refused the client credentials/)
    assert.ok(!wrong.stderr.includes('wrong-secret-value'))
    assert.equal(wrong.stdout, '')
    assert.deepEqual(
      (await readdir(home('d14-wrong'))).filter((f) => f.endsWith('.json')),
      [],
      'nothing cached',
    )
  })

  it('D13 refuses a plain-http issuer that is not loopback', async () => {
    const result = await run(
      ['token', '--issuer', 'http://sso.example.org/realms/x', '--client-id', 'demo-app'],
      {
        SSOKIT_HOME: home('d13'),
        SSOKIT_CLIENT_SECRET: SECRET,
      },
    )
    assert.notEqual(result.code, 0)
    assert.match(result.stderr, /https/)
    assert.equal(result.stdout, '')
  })

  it('status lists the cached credentials as a table and exits 1 when one has expired', async () => {
    const env = { SSOKIT_HOME: home('status'), SSOKIT_CLIENT_SECRET: SECRET }
    const empty = await run(['status'], env)
    assert.equal(empty.code, 0)
    assert.match(empty.stdout, /No cached credentials/)
    await run(
      ['token', '--issuer', idp.issuer, '--client-id', 'demo-app', '--audience', 'demo-api'],
      env,
    )
    const listed = await run(['status'], env)
    assert.equal(listed.code, 0, listed.stderr)
    const [header, row] = listed.stdout.trim().split('\n')
    assert.match(header!, /^CLIENT\s+AUDIENCE\s+WHO\s+EXPIRES\s+VALID\s+REFRESHABLE\s+ISSUER$/)
    assert.match(
      row!,
      /^demo-app\s+demo-api\s+service-account-demo-app\s+in \d+m\s+yes\s+no\s+http/,
    )
    const [file] = (await readdir(home('status'))).filter((f) => f.endsWith('.json'))
    const path = join(home('status'), file!)
    const credential = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>
    await writeFile(path, JSON.stringify({ ...credential, renewAt: 0, expiresAt: 0 }), {
      mode: 0o600,
    })
    const expired = await run(['status', '--json'], env)
    assert.equal(expired.code, 1)
    const entries = JSON.parse(expired.stdout) as { valid: boolean; client_id: string }[]
    assert.deepEqual(
      entries.map((e) => [e.client_id, e.valid]),
      [['demo-app', false]],
    )
  })

  it('logout revokes the refresh token at the provider and deletes the entry; --all deletes every one', async () => {
    const env = { SSOKIT_HOME: home('logout'), SSOKIT_CLIENT_SECRET: SECRET }
    const subject = await userToken(idp)
    const source = exchange(
      {
        token: () => Promise.resolve(subject),
        identity: () => Promise.reject(new Error('unused')),
        logout: () => Promise.resolve(),
      },
      {
        issuer: idp.issuer,
        clientId: 'demo-app',
        clientSecret: SECRET,
        audience: 'demo-api',
        refreshable: true,
        cache: true,
      },
      { env: { SSOKIT_HOME: home('logout') } },
    )
    await source.token()
    const [file] = (await readdir(home('logout'))).filter((f) => f.endsWith('.json'))
    const { refreshToken } = JSON.parse(await readFile(join(home('logout'), file!), 'utf8')) as {
      refreshToken: string
    }
    await run(['token', '--issuer', idp.issuer, '--client-id', 'demo-app'], env)

    const one = await run(['logout', '--client-id', 'demo-app', '--audience', 'demo-api'], env)
    assert.equal(one.code, 0, one.stderr)
    assert.match(one.stdout, /Logged out of 1 credential; 1 refresh token revoked/)
    const refreshed = await fetch(`${idp.issuer}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${btoa(`demo-app:${SECRET}`)}` },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    })
    assert.equal(refreshed.status, 400, 'the refresh token is revoked')
    assert.equal((await readdir(home('logout'))).filter((f) => f.endsWith('.json')).length, 1)

    const all = await run(['logout', '--all'], env)
    assert.equal(all.code, 0, all.stderr)
    assert.match(all.stdout, /Logged out of 1 credential; 0 refresh tokens revoked/)
    assert.deepEqual(
      (await readdir(home('logout'))).filter((f) => f.endsWith('.json')),
      [],
    )
  })

  it('has --help with examples for every command, and refuses a bad combination with status 2', async () => {
    for (const name of ['token', 'status', 'logout']) {
      const help = await run([name, '--help'], {})
      assert.equal(help.code, 0)
      assert.match(help.stdout, new RegExp(`Examples:\\n[\\s\\S]*ssokit ${name} `))
    }
    const both = await run(['logout', '--all', '--client-id', 'x'], {})
    assert.equal(both.code, 2)
    const cern = await run(['token', '--cern', '--issuer', idp.issuer, '--client-id', 'x'], {})
    assert.equal(cern.code, 2)
  })
})
