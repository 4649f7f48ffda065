import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import {
  lstat,
  mkdir,
  readdir,
  readFile,
  rm,
  stat,
  symlink,
  writeFile,
  chmod,
} from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'

import { SsoError } from '@ssokit/core'
import { startIdp, type RunningIdp } from '@ssokit/idp'

import {
  cacheDirectory,
  clientCredentials,
  exchange,
  listCredentials,
  type TokenSource,
} from '../src/index.js'
import {
  DEMO_APP,
  fakeJwt,
  json,
  removeTempDirs,
  startFixture,
  tempDir,
  userToken,
} from './helpers.js'

const CHILD = fileURLToPath(new URL('./fixtures/race-child.ts', import.meta.url))

function isCode(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof SsoError, `expected an SsoError, got ${String(error)}`)
    assert.equal(error.code, code)
    return true
  }
}

async function jsonFiles(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((name) => name.endsWith('.json'))
  } catch {
    return []
  }
}

function staticSource(token: string): TokenSource {
  return {
    token: () => Promise.resolve(token),
    identity: () => Promise.reject(new Error('not used')),
    logout: () => Promise.resolve(),
  }
}

const mode = async (path: string) => (await stat(path)).mode & 0o777

describe('credential cache', () => {
  let idp: RunningIdp
  let dir: string
  before(async () => {
    idp = await startIdp({ port: 0, rotateRefreshTokens: true })
  })
  after(async () => {
    await idp.close()
    await removeTempDirs()
  })

  const cached = (home: string, extra: Record<string, string> = {}) =>
    clientCredentials(
      { issuer: idp.issuer, ...DEMO_APP, cache: true },
      { env: { SSOKIT_HOME: home, ...extra } },
    )

  it('D01 creates the directory 0700 and files 0600 even under umask 000, and rewrites atomically', async () => {
    dir = join(await tempDir(), 'home')
    const old = process.umask(0)
    try {
      const source = cached(dir)
      let now = Date.now()
      const timed = clientCredentials(
        { issuer: idp.issuer, ...DEMO_APP, cache: true },
        { env: { SSOKIT_HOME: dir }, clock: () => now },
      )
      await source.token()
      assert.equal(await mode(dir), 0o700)
      const [file] = await jsonFiles(dir)
      assert.ok(file)
      assert.equal(await mode(join(dir, file)), 0o600)
      now += 24 * 3600 * 1000
      await timed.token()
      assert.equal(await mode(join(dir, file)), 0o600)
      assert.deepEqual(
        (await readdir(dir)).filter((n) => !n.endsWith('.json')),
        [],
        'no temporary or lock files left behind',
      )
      await chmod(join(dir, file), 0o644)
      await chmod(dir, 0o755)
      await cached(dir).token()
      assert.equal(await mode(join(dir, file)), 0o600, 'a readable file is tightened')
      assert.equal(await mode(dir), 0o700, 'a readable directory is tightened')
    } finally {
      process.umask(old)
    }
  })

  it('D02 refuses a symlinked credential file or cache directory and leaves the target alone', async () => {
    const base = await tempDir()
    const home = join(base, 'home')
    await cached(home).token()
    const [file] = await jsonFiles(home)
    const victim = join(base, 'victim.txt')
    await writeFile(victim, 'untouched')
    await rm(join(home, file!))
    await symlink(victim, join(home, file!))
    await assert.rejects(cached(home).token(), isCode('credential_cache_unsafe'))
    assert.equal(await readFile(victim, 'utf8'), 'untouched')

    const linked = join(base, 'linked')
    await mkdir(join(base, 'real'), { mode: 0o700 })
    await symlink(join(base, 'real'), linked)
    await assert.rejects(cached(linked).token(), isCode('credential_cache_unsafe'))
    assert.deepEqual(await readdir(join(base, 'real')), [])
  })

  it('D12 keeps one file per issuer, client, audience: B never gets A’s token', async () => {
    const home = join(await tempDir(), 'home')
    const other = await startIdp({ port: 0 })
    try {
      const env = { SSOKIT_HOME: home }
      const a = await clientCredentials(
        { issuer: idp.issuer, ...DEMO_APP, audience: 'demo-api', cache: true },
        { env },
      ).token()
      const b = await clientCredentials(
        { issuer: idp.issuer, ...DEMO_APP, cache: true },
        { env },
      ).token()
      const c = await clientCredentials(
        { issuer: other.issuer, ...DEMO_APP, cache: true },
        { env },
      ).token()
      assert.equal(new Set([a, b, c]).size, 3)
      assert.equal((await jsonFiles(home)).length, 3)
      const listed = await listCredentials({ env })
      assert.deepEqual(listed.map((e) => e.audience ?? '-').sort(), ['-', '-', 'demo-api'])
      assert.ok(
        listed.every((e) => e.valid && !e.refreshable && e.subject === 'service-account-demo-app'),
      )
    } finally {
      await other.close()
    }
  })

  it('D03 two processes renewing at once spend the rotating refresh token once', async () => {
    const home = join(await tempDir(), 'home')
    const subjectToken = await userToken(idp)
    const seed = exchange(
      staticSource(subjectToken),
      { issuer: idp.issuer, ...DEMO_APP, audience: 'demo-api', refreshable: true, cache: true },
      { env: { SSOKIT_HOME: home } },
    )
    const rejected = await seed.token()
    const posts = () =>
      idp.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/token')).length
    const before = posts()
    const children = [0, 1].map(() => {
      const child = spawn(process.execPath, ['--conditions=source', '--import', 'tsx', CHILD], {
        env: {
          ...process.env,
          ISSUER: idp.issuer,
          SUBJECT_TOKEN: subjectToken,
          REJECTED: rejected,
          CACHE: home,
        },
        stdio: ['pipe', 'pipe', 'pipe'],
      })
      let out = ''
      let err = ''
      child.stdout.on('data', (d: Buffer) => (out += d.toString()))
      child.stderr.on('data', (d: Buffer) => (err += d.toString()))
      const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        child.on('close', (code) => {
          resolve({ code, out, err })
        })
      })
      return { child, done }
    })
    // Both are loaded and waiting; the same line releases both.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    for (const { child } of children) child.stdin.end('go\n')
    const results = await Promise.all(children.map((c) => c.done))
    for (const r of results) assert.equal(r.code, 0, r.err)
    const tokens = results.map((r) => r.out.trim())
    assert.equal(tokens[0], tokens[1], 'the second process took the first one’s token')
    assert.notEqual(tokens[0], rejected)
    assert.equal(posts() - before, 1, 'exactly one refresh')
    // The family is intact: the refresh token now in the cache still works.
    const [file] = await jsonFiles(home)
    const { refreshToken } = JSON.parse(await readFile(join(home, file!), 'utf8')) as {
      refreshToken: string
    }
    const response = await fetch(`${idp.issuer}/protocol/openid-connect/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${btoa('demo-app:demo-app-secret')}` },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    })
    assert.equal(response.status, 200)
  })

  it('D04 keeps the stored refresh token when a refresh answer has none, replaces it when there is one', async () => {
    const home = join(await tempDir(), 'home')
    let refreshes = 0
    const fixture = await startFixture((_req, res, body) => {
      const grant = new URLSearchParams(body).get('grant_type')
      const access = fakeJwt({ aud: 'api', sub: 'alice', n: Math.random() })
      if (grant === 'refresh_token') {
        refreshes++
        json(res, 200, {
          access_token: access,
          token_type: 'Bearer',
          expires_in: 60,
          ...(refreshes === 2 ? { refresh_token: 'rt-2' } : {}),
        })
        return
      }
      json(res, 200, {
        access_token: access,
        token_type: 'Bearer',
        expires_in: 60,
        refresh_token: 'rt-1',
        issued_token_type: 'urn:ietf:params:oauth:token-type:refresh_token',
      })
    })
    try {
      let now = Date.now()
      const source = exchange(
        staticSource(fakeJwt({ iss: 'x', sub: 'alice' })),
        {
          issuer: fixture.url,
          clientId: 'c',
          clientSecret: 's',
          audience: 'api',
          refreshable: true,
          cache: true,
        },
        { env: { SSOKIT_HOME: home }, clock: () => now },
      )
      const read = async () => {
        const [file] = await jsonFiles(home)
        return JSON.parse(await readFile(join(home, file!), 'utf8')) as {
          refreshToken: string
          accessToken: string
        }
      }
      const first = await source.token()
      now += 3600_000
      const second = await source.token()
      assert.notEqual(second, first)
      assert.equal((await read()).refreshToken, 'rt-1')
      assert.equal((await read()).accessToken, second)
      now += 3600_000
      await source.token()
      assert.equal((await read()).refreshToken, 'rt-2')
    } finally {
      await fixture.close()
    }
  })

  it('D05 a refused refresh token is dropped; an outage keeps the cache exactly as it was', async () => {
    const home = join(await tempDir(), 'home')
    let refresh: 'refuse' | 'down' = 'refuse'
    let exchangeAnswer: 'ok' | 'refuse' = 'ok'
    const fixture = await startFixture((_req, res, body) => {
      const grant = new URLSearchParams(body).get('grant_type')
      if (grant === 'refresh_token') {
        if (refresh === 'down') json(res, 503, {})
        else json(res, 400, { error: 'invalid_grant' })
        return
      }
      if (exchangeAnswer === 'refuse') {
        json(res, 400, { error: 'invalid_grant' })
        return
      }
      json(res, 200, {
        access_token: fakeJwt({ aud: 'api', sub: 'alice', n: Math.random() }),
        token_type: 'Bearer',
        expires_in: 60,
        refresh_token: `rt-${Math.random()}`,
        issued_token_type: 'urn:ietf:params:oauth:token-type:refresh_token',
      })
    })
    try {
      let now = Date.now()
      const source = exchange(
        staticSource(fakeJwt({ iss: 'x', sub: 'alice' })),
        {
          issuer: fixture.url,
          clientId: 'c',
          clientSecret: 's',
          audience: 'api',
          refreshable: true,
          cache: true,
        },
        { env: { SSOKIT_HOME: home }, clock: () => now },
      )
      const first = await source.token()
      now += 3600_000
      const second = await source.token()
      assert.notEqual(second, first, 'refresh refused: a new exchange replaced the credential')

      refresh = 'down'
      now += 3600_000
      const [file] = await jsonFiles(home)
      const saved = await readFile(join(home, file!), 'utf8')
      await assert.rejects(source.token(), isCode('provider_unavailable'))
      assert.equal(await readFile(join(home, file!), 'utf8'), saved)

      refresh = 'refuse'
      exchangeAnswer = 'refuse'
      await assert.rejects(source.token(), isCode('login_required'))
      assert.deepEqual(await jsonFiles(home), [], 'the dead credential is deleted')
    } finally {
      await fixture.close()
    }
  })

  it('finds its directory: SSOKIT_HOME, else TSGAUTH_AUTHDIR, else XDG_CONFIG_HOME/ssokit, else ~/.config/ssokit', () => {
    assert.equal(
      cacheDirectory({ SSOKIT_HOME: '/a', TSGAUTH_AUTHDIR: '/b', XDG_CONFIG_HOME: '/c' }),
      '/a',
    )
    assert.equal(cacheDirectory({ TSGAUTH_AUTHDIR: '/b', XDG_CONFIG_HOME: '/c' }), '/b')
    assert.equal(cacheDirectory({ XDG_CONFIG_HOME: '/c' }), '/c/ssokit')
    assert.match(cacheDirectory({ XDG_CONFIG_HOME: 'relative' }), /\/\.config\/ssokit$/)
  })

  it('honours TSGAUTH_FORCE_USE_AUTHFILE, TSGAUTH_FORCE_DONT_USE_AUTHFILE and TSGAUTH_LOGLEVEL without logging secrets', async () => {
    const home = join(await tempDir(), 'home')
    await cached(home, { TSGAUTH_FORCE_DONT_USE_AUTHFILE: '1' }).token()
    assert.deepEqual(await jsonFiles(home), [])
    const lines: string[] = []
    const forced = clientCredentials(
      { issuer: idp.issuer, ...DEMO_APP, cache: false },
      {
        env: { SSOKIT_HOME: home, TSGAUTH_FORCE_USE_AUTHFILE: '1', TSGAUTH_LOGLEVEL: 'DEBUG' },
        log: (l) => lines.push(l),
      },
    )
    const token = await forced.token()
    assert.equal((await jsonFiles(home)).length, 1)
    assert.ok(lines.length > 0)
    for (const line of lines) {
      assert.ok(!line.includes(token) && !line.includes(DEMO_APP.clientSecret), line)
    }
    assert.throws(
      () => cached(home, { TSGAUTH_FORCE_USE_AUTHFILE: '1', TSGAUTH_FORCE_DONT_USE_AUTHFILE: '1' }),
      {
        name: 'TypeError',
      },
    )
    assert.throws(() => cached(home, { TSGAUTH_LOGLEVEL: 'LOUD' }), { name: 'TypeError' })
    assert.ok((await lstat(home)).isDirectory())
  })
})
