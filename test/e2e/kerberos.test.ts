/**
 * Kerberos single sign-on against a real MIT KDC started once for this file: its own realm on
 * 127.0.0.1, principals for the users and HTTP/localhost, tickets from kinit, and the idp
 * accepting SPNEGO with the KDC's keytab. Tokens and cookie files through the library and the
 * `ssokit` command in child processes; cookie files read by the real curl, in front of the demo
 * app and of `ssokit proxy` with a Python app under uWSGI; the one-time code prompt on a real
 * terminal (util-linux `script`).
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import kerberos from 'kerberos'
import { Secret, TOTP } from 'otpauth'
import {
  cookieSession,
  kerberos as kerberosAuth,
  kerberosLogin,
  readCookieFile,
  writeCookieFile,
  type KerberosLoginOptions,
} from '@ssokit/client'
import { MemorySessionStore, SsoError } from '@ssokit/core'
import { CookieJar, startIdp, type IdpConfig, type RunningIdp } from '@ssokit/idp'
import type { RunningProxy } from '@ssokit/proxy'
import { execFile, spawn } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startDemo, startDemoApp, type RunningDemoApp } from '../../packages/cli/src/demo/index.js'
import { startKdc, type RunningKdc } from '../support/kdc.js'
import { tempDir } from '../support/redis.js'
import { startProxyFor } from '../support/proxy.js'
import { startUwsgi, type RunningUwsgi } from '../support/uwsgi.js'

const OTP_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'
const REDIRECT = 'http://localhost:8765/callback'

let kdc: RunningKdc
let idp: RunningIdp
let aliceCache: string
let apps: RunningDemoApp[] = []

function realmConfig(): IdpConfig {
  return {
    realm: 'krb',
    users: [
      { username: 'alice', password: 'alice', roles: { '*': ['admin'] } },
      { username: 'bob', password: 'bob', otp_secret: OTP_SECRET },
      // Codes are single-use per user: the idp's own tests use carol, the client's bob, the
      // terminal prompt's dave, the secret file's erin.
      { username: 'carol', password: 'carol', otp_secret: OTP_SECRET },
      { username: 'dave', password: 'dave', otp_secret: OTP_SECRET },
      { username: 'erin', password: 'erin', otp_secret: OTP_SECRET },
      { username: 'robot', password: 'robot' },
    ],
    clients: [
      {
        client_id: 'demo-app',
        secret: 'demo-app-secret',
        grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: ['http://localhost:*/*', 'http://127.0.0.1:*/*'],
        post_logout_redirect_uris: ['http://localhost:*/*'],
      },
      {
        client_id: 'cli',
        grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: ['http://localhost:*/*', 'http://127.0.0.1:*/*'],
      },
      {
        client_id: 'asks-consent',
        name: 'Consenting tool',
        grant_types: ['authorization_code', 'refresh_token'],
        redirect_uris: ['http://localhost:*/*'],
        consent_required: true,
      },
    ],
    kerberos: { keytab: kdc.keytab, realm: kdc.realm },
  }
}

function totp(offsetSteps = 0): string {
  const generator = new TOTP({ secret: Secret.fromBase32(OTP_SECRET), digits: 6, period: 30 })
  return generator.generate({ timestamp: Date.now() + offsetSteps * 30_000 })
}

/** A SPNEGO token for `HTTP@127.0.0.1` from the ticket cache `ccache`. */
async function spnego(ccache: string): Promise<string> {
  process.env.KRB5CCNAME = ccache
  const client = await kerberos.initializeClient('HTTP@127.0.0.1', {
    mechOID: kerberos.GSS_MECH_OID_SPNEGO,
  })
  return client.step('')
}

function authorizeUrl(clientId = 'cli'): string {
  const verifier = randomBytes(32).toString('base64url')
  const url = new URL(`${idp.issuer}/protocol/openid-connect/auth`)
  url.search = new URLSearchParams({
    client_id: clientId,
    response_type: 'code',
    scope: 'openid',
    redirect_uri: REDIRECT,
    state: 'st',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString()
  return url.href
}

/** Follows the idp's redirects from `url` until a page (200/4xx) or a redirect off the idp. */
async function walk(jar: CookieJar, url: string, init: RequestInit = {}) {
  let current = url
  let response = await jar.fetch(current, init)
  for (let hop = 0; hop < 10; hop++) {
    const location = response.headers.get('location')
    if (response.status < 300 || response.status >= 400 || location === null) break
    const next = new URL(location, current).href
    if (!next.startsWith(idp.issuer)) return { response, url: next, html: '' }
    await response.body?.cancel()
    current = next
    response = await jar.fetch(current)
  }
  return { response, url: current, html: await response.text() }
}

function attribute(html: string, id: string, name: string): string | undefined {
  const tag = new RegExp(`<[^>]*id="${id}"[^>]*>`).exec(html)?.[0]
  const value = tag === undefined ? undefined : new RegExp(`${name}="([^"]*)"`).exec(tag)?.[1]
  return value?.replace(/&amp;/g, '&')
}

function errorText(html: string): string | undefined {
  return /id="kc-error-message"[^>]*>([^<]*)</.exec(html)?.[1]
}

before(async () => {
  kdc = await startKdc({
    users: [
      { name: 'alice', password: 'alice-pw' },
      { name: 'bob', password: 'bob-pw' },
      { name: 'robot', password: 'robot-pw' },
      { name: 'dave', password: 'dave-pw' },
      { name: 'erin', password: 'erin-pw' },
      // Its tickets live two seconds at most, for the expired-ticket test.
      { name: 'brief', password: 'brief-pw', maxLife: '2s' },
    ],
  })
  // The GSSAPI library reads its configuration from the process environment.
  process.env.KRB5_CONFIG = kdc.krb5Config
  aliceCache = await kdc.kinit('alice', 'alice-pw')
  idp = await startIdp({ port: 0, config: realmConfig() })
  apps = [
    await startDemoApp({ port: 0, issuer: idp.issuer }),
    await startDemoApp({ port: 0, issuer: idp.issuer }),
  ]
})

after(async () => {
  for (const app of apps) await app.close()
  await idp.close()
  await kdc.stop()
})

describe('the test realm', () => {
  it('issues a ticket that a keytab-backed acceptor takes as SPNEGO', async () => {
    const token = await spnego(aliceCache)
    const server = await kerberos.initializeServer('')
    await server.step(token)
    assert.equal(server.username, 'alice@SSOKIT.TEST')
    assert.equal(server.contextComplete, true)
  })

  it('refuses a wrong password at kinit', async () => {
    await assert.rejects(kdc.kinit('bob', 'wrong'), /kinit/)
  })
})

describe('idp: Kerberos sign-in', () => {
  it('offers "Sign in with Kerberos", answering Negotiate and taking a ticket', async () => {
    const jar = new CookieJar()
    const login = await walk(jar, authorizeUrl())
    const href = attribute(login.html, 'social-kerberos', 'href')
    assert.ok(href, 'the login page links to Kerberos')
    const endpoint = new URL(href, login.url).href
    const challenge = await jar.fetch(endpoint)
    assert.equal(challenge.status, 401)
    assert.equal(challenge.headers.get('www-authenticate'), 'Negotiate')
    await challenge.body?.cancel()
    const before = idp.kerberosExchanges
    const done = await walk(jar, endpoint, {
      headers: { authorization: `Negotiate ${await spnego(aliceCache)}` },
    })
    assert.equal(idp.kerberosExchanges, before + 1)
    assert.ok(done.url.startsWith(REDIRECT), done.url)
    assert.ok(new URL(done.url).searchParams.get('code'))
  })

  it('refuses a token that is not a valid SPNEGO token, with the reason on the page', async () => {
    const jar = new CookieJar()
    const login = await walk(jar, authorizeUrl())
    const endpoint = new URL(attribute(login.html, 'social-kerberos', 'href') ?? '', login.url)
    const refused = await walk(jar, endpoint.href, {
      headers: { authorization: `Negotiate ${Buffer.from('not a token').toString('base64')}` },
    })
    assert.equal(refused.response.status, 403)
    assert.match(errorText(refused.html) ?? '', /not accepted/)
  })

  it('is off unless configured: no link on the page', async () => {
    const plain = await startIdp({ port: 0 })
    try {
      const page = await (await fetch(`${plain.issuer}/protocol/openid-connect/auth`)).text()
      assert.ok(!page.includes('social-kerberos'))
    } finally {
      await plain.close()
    }
  })
})

/** Submits the form `formId` of `page` with `fields`, following the idp's redirects. */
function submit(
  jar: CookieJar,
  page: { html: string; url: string },
  formId: string,
  fields: Record<string, string>,
) {
  const action = attribute(page.html, formId, 'action')
  assert.ok(action, `the page shows #${formId}`)
  return walk(jar, new URL(action, page.url).href, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields),
  })
}

async function passwordLogin(jar: CookieJar, username: string, clientId = 'cli') {
  const login = await walk(jar, authorizeUrl(clientId))
  return submit(jar, login, 'kc-form-login', { username, password: username })
}

describe('idp: one-time codes', () => {
  async function submitOtp(jar: CookieJar, page: { html: string; url: string }, otp: string) {
    const action = attribute(page.html, 'kc-otp-login-form', 'action')
    assert.ok(action, 'the one-time code form is shown')
    return walk(jar, new URL(action, page.url).href, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ otp }),
    })
  }

  it('asks a user with a TOTP secret for a code after the password, and accepts it once', async () => {
    const jar = new CookieJar()
    const form = await passwordLogin(jar, 'carol')
    const wrong = await submitOtp(jar, form, '000000')
    assert.match(errorText(wrong.html) ?? '', /Invalid authenticator code/)
    const code = totp()
    const done = await submitOtp(jar, wrong, code)
    assert.ok(new URL(done.url).searchParams.get('code'), done.url)
    // The same code a second time (another sign-in) is refused: codes are single-use.
    const other = new CookieJar()
    const again = await submitOtp(other, await passwordLogin(other, 'carol'), code)
    assert.match(errorText(again.html) ?? '', /Invalid authenticator code/)
  })

  it('ends the sign-in with access_denied after three wrong codes', async () => {
    const jar = new CookieJar()
    let page = await passwordLogin(jar, 'carol')
    for (let i = 0; i < 3; i++) page = await submitOtp(jar, page, '000000')
    assert.equal(new URL(page.url).searchParams.get('error'), 'access_denied')
  })

  it('does not ask a user without a secret', async () => {
    const done = await passwordLogin(new CookieJar(), 'alice')
    assert.ok(new URL(done.url).searchParams.get('code'))
  })
})

describe('idp: consent pages', () => {
  it('asks a client\'s consent at the first sign-in, like Keycloak\'s "Consent required"; No ends it with access_denied', async () => {
    const jar = new CookieJar()
    const page = await passwordLogin(jar, 'robot', 'asks-consent')
    assert.equal(page.response.status, 200)
    assert.ok(attribute(page.html, 'kc-oauth', 'id'), 'the consent page is shown')
    assert.match(page.html, /Grant access to Consenting tool/)
    assert.match(page.html, /<li>openid<\/li>/)
    const refused = await submit(jar, page, 'kc-oauth-form', { cancel: 'no' })
    assert.equal(new URL(refused.url).searchParams.get('error'), 'access_denied')
  })

  it('gives a code after Yes, and asks no more at the next sign-in', async () => {
    const jar = new CookieJar()
    const page = await passwordLogin(jar, 'robot', 'asks-consent')
    const granted = await submit(jar, page, 'kc-oauth-form', { accept: 'yes' })
    assert.ok(new URL(granted.url).searchParams.get('code'), granted.url)
    const again = await passwordLogin(new CookieJar(), 'robot', 'asks-consent')
    assert.ok(new URL(again.url).searchParams.get('code'), again.url)
  })
})

describe('client: kerberosLogin', () => {
  function login(options: Partial<KerberosLoginOptions> = {}) {
    return kerberosLogin({
      issuer: idp.issuer,
      clientId: 'cli',
      redirectUri: REDIRECT,
      cache: false,
      ccache: aliceCache,
      ...options,
    })
  }

  it('gets a token for a plain user from the ticket cache, through the Kerberos link', async () => {
    const before = idp.kerberosExchanges
    const source = login()
    const identity = (await source.token(), await source.identity())
    assert.equal(identity.username, 'alice')
    assert.equal(identity.refreshable, true)
    assert.equal(idp.kerberosExchanges, before + 1)
  })

  it('gets a token for a two-factor user with the code from a TOTP secret', async () => {
    const bob = await kdc.kinit('bob', 'bob-pw')
    const source = login({ ccache: bob, otp: () => totp() })
    assert.ok(await source.token())
    assert.equal((await source.identity()).username, 'bob')
  })

  it('fails clearly after three wrong one-time codes', async () => {
    const bob = await kdc.kinit('bob', 'bob-pw')
    let asked = 0
    const source = login({
      ccache: bob,
      otp: () => {
        asked += 1
        return '000000'
      },
    })
    await assert.rejects(source.token(), (error: unknown) => {
      assert.ok(error instanceof SsoError)
      assert.equal(error.code, 'otp_rejected')
      assert.match(error.message, /3 times/)
      return true
    })
    assert.equal(asked, 3)
  })

  it('says to run kinit when there is no ticket', async () => {
    const source = login({ ccache: `FILE:${kdc.dir}/no-such.ccache` })
    await assert.rejects(source.token(), (error: unknown) => {
      assert.ok(error instanceof SsoError)
      assert.equal(error.code, 'kerberos_ticket_missing')
      assert.match(error.message, /kinit/)
      return true
    })
  })

  it('gets a token with a keytab instead of a ticket cache', async () => {
    const keytab = await kdc.userKeytab('robot')
    const source = login({ ccache: undefined, keytab, principal: kdc.principal('robot') })
    assert.ok(await source.token())
    assert.equal((await source.identity()).username, 'robot')
  })

  it('ends at a consent page with an error saying so, naming the page', async () => {
    const source = login({ clientId: 'asks-consent' })
    await assert.rejects(source.token(), (error: unknown) => {
      assert.ok(error instanceof SsoError)
      assert.equal(error.code, 'login_page_unexpected')
      assert.match(error.message, /consent page/)
      assert.match(error.message, /Grant access to Consenting tool/)
      return true
    })
  })

  it("ends at a page it cannot answer with the page's message (kc-error-message)", async () => {
    // A loopback redirect URI the client has not registered: the provider shows an error page.
    const source = login({ redirectUri: 'http://[::1]:8765/callback' })
    await assert.rejects(source.token(), (error: unknown) => {
      assert.ok(error instanceof SsoError)
      assert.equal(error.code, 'login_page_unexpected')
      assert.match(error.message, /status 400/)
      assert.match(error.message, /redirect_uri did not match/)
      return true
    })
  })

  it('says the ticket has expired, naming kinit', async () => {
    const brief = await kdc.kinit('brief', 'brief-pw')
    // The KDC issued a ticket of at most two seconds: wait until it gives no more service
    // tickets for it (it counts whole seconds, so klist's "expired" can come a second earlier).
    while (
      await spnego(brief).then(
        () => true,
        () => false,
      )
    ) {
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    await assert.rejects(login({ ccache: brief }).token(), (error: unknown) => {
      assert.ok(error instanceof SsoError)
      assert.equal(error.code, 'kerberos_ticket_expired')
      assert.match(error.message, /kinit/)
      return true
    })
  })
})

/** `curl -s -b <file> <url>`: the status line and body, as a user's shell would see them. */
function curl(file: string, url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    execFile(
      'curl',
      // --max-time: a server that never answers fails the test instead of hanging it.
      [
        '-s',
        '--max-time',
        '120',
        '-b',
        file,
        '-H',
        'accept: application/json',
        '-w',
        '\n%{http_code}',
        url,
      ],
      (error, stdout) => {
        if (error) reject(new Error(`curl failed: ${error.message}`))
        else {
          const cut = stdout.lastIndexOf('\n')
          resolve({ status: Number(stdout.slice(cut + 1)), body: stdout.slice(0, cut) })
        }
      },
    )
  })
}

describe('client: cookieSession and cookie files', () => {
  const dir = tempDir('ssokit-cookies-')

  it('signs in to a site with Kerberos, writes a file curl -b uses, and reuses the provider session for a second site', async () => {
    const [first, second] = apps
    assert.ok(first && second)
    const login = kerberosAuth({ ccache: aliceCache })
    const before = idp.kerberosExchanges
    const session = await cookieSession(`${first.url}/admin`, { issuer: idp.issuer, login })
    assert.equal(session.status, 200)
    assert.equal(session.kerberosUsed, true)
    assert.equal(session.principal, 'alice@SSOKIT.TEST')
    assert.equal(idp.kerberosExchanges, before + 1)
    const file = join(dir, 'cookies.txt')
    await writeCookieFile(file, session.jar, { owner: session.principal })
    const text = await (await import('node:fs/promises')).readFile(file, 'utf8')
    assert.match(text, /^#HttpOnly_localhost\tFALSE\t\//m)
    assert.match(text, /^# ssokit-owner: alice@SSOKIT.TEST$/m)
    // Every cookie, session cookies too, has an expiry: curl drops none and readers agree.
    const lines = text.split('\n').filter((l) => l !== '' && !/^#(?!HttpOnly_)/.test(l))
    assert.ok(lines.length > 0)
    for (const line of lines) {
      const fields = line.split('\t')
      assert.equal(fields.length, 7, line)
      assert.ok(Number.isInteger(Number(fields[4])) && Number(fields[4]) > 0, line)
    }
    const { mode } = await (await import('node:fs/promises')).stat(file)
    assert.equal(mode & 0o777, 0o600)

    const whoami = await curl(file, `${first.url}/api/whoami`)
    assert.equal(whoami.status, 200)
    assert.equal((JSON.parse(whoami.body) as { username: string }).username, 'alice')

    // The second site: the file's provider cookies sign in without a new Kerberos exchange.
    const saved = await readCookieFile(file)
    assert.equal(saved.owner, 'alice@SSOKIT.TEST')
    const again = await cookieSession(`${second.url}/admin`, {
      issuer: idp.issuer,
      login: kerberosAuth({ ccache: `FILE:${kdc.dir}/no-ticket-needed.ccache` }),
      jar: saved.jar,
    })
    assert.equal(again.status, 200)
    assert.equal(again.kerberosUsed, false)
    assert.equal(idp.kerberosExchanges, before + 1)
    await writeCookieFile(file, again.jar, { owner: 'alice@SSOKIT.TEST' })
    const other = await curl(file, `${second.url}/api/whoami`)
    assert.equal(other.status, 200)
  })

  it("notices that the site's session ended and signs in again with the provider's session, without Kerberos", async () => {
    const store = new MemorySessionStore()
    const app = await startDemoApp({ port: 0, issuer: idp.issuer, store })
    try {
      const session = await cookieSession(`${app.url}/admin`, {
        issuer: idp.issuer,
        login: kerberosAuth({ ccache: aliceCache }),
      })
      assert.equal(session.status, 200)
      assert.equal(session.kerberosUsed, true)
      const exchanges = idp.kerberosExchanges
      const signIns = () => idp.requests.filter((r) => r.path.endsWith('/auth')).length
      const before = signIns()
      const page = await session.fetch(`${app.url}/admin`)
      assert.equal(page.status, 200)
      assert.equal(signIns(), before, 'a live site session needs no sign-in')

      // The site ends every session of alice's (as an administrator would).
      assert.equal(await store.deleteBySubject('alice'), 1)
      const cookie = await session.jar.getCookieString(`${app.url}/api/whoami`)
      const ended = await fetch(`${app.url}/api/whoami`, {
        headers: { cookie, accept: 'application/json' },
      })
      await ended.body?.cancel()
      assert.equal(ended.status, 401, "the site's cookie names no session any more")

      const again = await session.fetch(`${app.url}/admin`)
      assert.equal(again.status, 200)
      assert.match(await again.text(), /alice/)
      assert.equal(signIns(), before + 1, 'signed in again at the provider')
      assert.equal(idp.kerberosExchanges, exchanges, "the provider's session did, not Kerberos")
      const cookieAfter = await session.jar.getCookieString(`${app.url}/api/whoami`)
      const whoami = await fetch(`${app.url}/api/whoami`, {
        headers: { cookie: cookieAfter, accept: 'application/json' },
      })
      assert.equal(whoami.status, 200)
      assert.equal(((await whoami.json()) as { username: string }).username, 'alice')
    } finally {
      await app.close()
    }
  })

  it('signs in with Kerberos again only when the provider session has ended too', async () => {
    const app = apps[0]
    assert.ok(app)
    const session = await cookieSession(`${app.url}/admin`, {
      issuer: idp.issuer,
      login: kerberosAuth({ ccache: aliceCache }),
    })
    assert.equal(session.status, 200)
    // Sign out at the site, which signs out at the provider too (RP-initiated logout).
    const out = await session.fetch(`${app.url}/auth/logout`, {
      method: 'POST',
      headers: { origin: app.url },
    })
    await out.body?.cancel()
    assert.equal(out.status, 302)
    const endSession = new URL(out.headers.get('location') ?? '')
    assert.ok(endSession.href.startsWith(`${idp.issuer}/protocol/openid-connect/logout`))
    const signedOut = await session.fetch(endSession)
    assert.equal(signedOut.status, 200)
    assert.match(await signedOut.text(), /Hello, World!/, "back on the site's home page")

    const exchanges = idp.kerberosExchanges
    const again = await session.fetch(`${app.url}/admin`)
    assert.equal(again.status, 200)
    assert.match(await again.text(), /alice/)
    assert.equal(idp.kerberosExchanges, exchanges + 1)
  })

  it("refuses to overwrite another principal's cookie file without force", async () => {
    const file = join(dir, 'theirs.txt')
    const session = await cookieSession(`${apps[0]?.url ?? ''}/admin`, {
      issuer: idp.issuer,
      login: kerberosAuth({ ccache: aliceCache }),
    })
    await writeCookieFile(file, session.jar, { owner: 'bob@SSOKIT.TEST' })
    await assert.rejects(
      writeCookieFile(file, session.jar, { owner: 'alice@SSOKIT.TEST' }),
      (error: unknown) => {
        assert.ok(error instanceof SsoError)
        assert.equal(error.code, 'credential_cache_unsafe')
        assert.match(error.message, /bob@SSOKIT.TEST/)
        return true
      },
    )
    await writeCookieFile(file, session.jar, { owner: 'alice@SSOKIT.TEST', force: true })
    assert.equal((await readCookieFile(file)).owner, 'alice@SSOKIT.TEST')
  })
})

const MAIN = new URL('../../packages/cli/src/main.ts', import.meta.url).pathname

/** The `ssokit` command in a child process, with the realm's Kerberos configuration. */
function ssokit(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--conditions=source', '--import', 'tsx', MAIN, ...args],
      {
        env: {
          PATH: process.env.PATH ?? '',
          HOME: process.env.HOME ?? '',
          KRB5_CONFIG: kdc.krb5Config,
          ...env,
        },
        // Generous: a loaded machine starts tsx slowly; the exit status still has to be right.
        timeout: 180_000,
      },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr })
      },
    )
  })
}

function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`
}

/**
 * `command` (a shell line) on a real terminal: util-linux `script` gives it a pseudo-terminal as
 * stdin, stdout and stderr, and passes on what is typed into its own stdin.
 */
function onTerminal(command: string, env: Record<string, string>) {
  const child = spawn('script', ['-q', '-f', '-e', '-c', command, '/dev/null'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      SHELL: '/bin/sh',
      TERM: 'dumb',
      KRB5_CONFIG: kdc.krb5Config,
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  // A terminal whose command has ended refuses what is still typed or closed (EPIPE).
  child.stdin.on('error', () => undefined)
  let output = ''
  const waiting = new Set<() => void>()
  const collect = (chunk: Buffer) => {
    output += chunk.toString()
    for (const check of waiting) check()
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  const exitCode = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      for (const check of waiting) check()
      resolve(code)
    })
  })
  return {
    exitCode,
    output: () => output,
    type(line: string) {
      child.stdin.write(`${line}\r`)
    },
    /** Ends the terminal if the command still runs (a failed test): its processes get SIGHUP. */
    stop() {
      if (child.exitCode === null) child.kill('SIGTERM')
      child.stdin.end()
    },
    /** Resolves when the terminal shows `pattern`; rejects if the command ends first. */
    waitFor(pattern: RegExp): Promise<void> {
      return new Promise((resolve, reject) => {
        const check = () => {
          if (pattern.test(output)) {
            waiting.delete(check)
            resolve()
          } else if (child.exitCode !== null) {
            waiting.delete(check)
            reject(new Error(`the command ended before ${String(pattern)}:\n${output}`))
          }
        }
        waiting.add(check)
        check()
      })
    },
  }
}

describe('CLI: ssokit token --kerberos, ssokit cookie, ssokit status', () => {
  const home = tempDir('ssokit-krb-home-')

  it('prints a token for the user of the ticket', async () => {
    const result = await ssokit(
      [
        'token',
        '--kerberos',
        '--issuer',
        idp.issuer,
        '--client-id',
        'cli',
        '--redirect-uri',
        REDIRECT,
        '--decode',
      ],
      { KRB5CCNAME: aliceCache, SSOKIT_HOME: home },
    )
    assert.equal(result.code, 0, result.stderr)
    const decoded = JSON.parse(result.stdout) as { payload: { preferred_username: string } }
    assert.equal(decoded.payload.preferred_username, 'alice')
  })

  it('ssokit login --kerberos keeps a login that ssokit token then uses without Kerberos', async () => {
    const env = { KRB5CCNAME: aliceCache, SSOKIT_HOME: tempDir('ssokit-krb-login-') }
    const common = ['--issuer', idp.issuer, '--client-id', 'cli']
    const login = await ssokit(['login', '--kerberos', ...common, '--redirect-uri', REDIRECT], env)
    assert.equal(login.code, 0, login.stderr)
    assert.match(login.stdout, /alice/)
    const before = idp.kerberosExchanges
    const token = await ssokit(['token', ...common], env)
    assert.equal(token.code, 0, token.stderr)
    assert.ok(token.stdout.trim().length > 0)
    assert.equal(idp.kerberosExchanges, before)
  })

  it('says to run kinit when there is no ticket, exit 1', async () => {
    const result = await ssokit(
      [
        'token',
        '--kerberos',
        '--issuer',
        idp.issuer,
        '--client-id',
        'cli',
        '--redirect-uri',
        REDIRECT,
      ],
      { KRB5CCNAME: `FILE:${kdc.dir}/none.ccache`, SSOKIT_HOME: tempDir('ssokit-krb-empty-') },
    )
    assert.equal(result.code, 1)
    assert.match(result.stderr, /kinit/)
    assert.equal(result.stdout, '')
  })

  it('asks for the one-time code on the terminal, never on stdout, and again after a refused code', async () => {
    const dave = await kdc.kinit('dave', 'dave-pw')
    const out = join(home, 'prompted-token.json')
    const command = [
      ...[process.execPath, '--conditions=source', '--import', 'tsx', MAIN, 'token', '--kerberos'],
      ...['--issuer', idp.issuer, '--client-id', 'cli', '--redirect-uri', REDIRECT, '--decode'],
    ]
    const terminal = onTerminal(`${command.map(shellQuote).join(' ')} > ${shellQuote(out)}`, {
      KRB5CCNAME: dave,
      SSOKIT_HOME: tempDir('ssokit-krb-prompt-'),
    })
    try {
      await terminal.waitFor(/One-time code: /)
      terminal.type('000000')
      await terminal.waitFor(/One-time code \(try 2\): /)
      terminal.type(totp())
      assert.equal(await terminal.exitCode, 0, terminal.output())
    } finally {
      terminal.stop()
    }
    const printed = await readFile(out, 'utf8')
    assert.doesNotMatch(printed, /One-time code/)
    const decoded = JSON.parse(printed) as { payload: { preferred_username: string } }
    assert.equal(decoded.payload.preferred_username, 'dave')
  })

  it('takes the one-time code from a TOTP secret file (0600) for a two-factor user', async () => {
    const erin = await kdc.kinit('erin', 'erin-pw')
    const secretFile = join(home, 'erin-totp')
    await writeFile(secretFile, `${OTP_SECRET}\n`, { mode: 0o600 })
    const result = await ssokit(
      [
        ...['token', '--kerberos', '--issuer', idp.issuer, '--client-id', 'cli'],
        ...['--redirect-uri', REDIRECT, '--otp-secret-file', secretFile, '--decode'],
      ],
      { KRB5CCNAME: erin, SSOKIT_HOME: tempDir('ssokit-krb-otpfile-') },
    )
    assert.equal(result.code, 0, result.stderr)
    const decoded = JSON.parse(result.stdout) as { payload: { preferred_username: string } }
    assert.equal(decoded.payload.preferred_username, 'erin')
  })

  it('without a terminal and without a code source, fails at once naming the options', async () => {
    const dave = await kdc.kinit('dave', 'dave-pw')
    const result = await ssokit(
      ['token', '--kerberos', '--issuer', idp.issuer, '--client-id', 'cli'],
      { KRB5CCNAME: dave, SSOKIT_HOME: tempDir('ssokit-krb-noprompt-') },
    )
    assert.equal(result.code, 1)
    assert.equal(result.stdout, '')
    assert.match(result.stderr, /one-time code/)
    assert.match(result.stderr, /--otp-command/)
  })

  it('writes a cookie file that curl -b uses to reach the demo app, listed by ssokit status', async () => {
    const app = apps[1]
    assert.ok(app)
    const file = join(home, 'site-cookies.txt')
    const result = await ssokit(
      ['cookie', `${app.url}/admin`, '--issuer', idp.issuer, '-o', file, '--json'],
      { KRB5CCNAME: aliceCache, SSOKIT_HOME: home },
    )
    assert.equal(result.code, 0, result.stderr)
    const written = JSON.parse(result.stdout) as { owner: string; status: number }
    assert.equal(written.owner, 'alice@SSOKIT.TEST')
    assert.equal(written.status, 200)
    const whoami = await curl(file, `${app.url}/api/whoami`)
    assert.equal(whoami.status, 200)
    assert.equal((JSON.parse(whoami.body) as { username: string }).username, 'alice')

    const status = await ssokit(['status', '--json'], { SSOKIT_HOME: home })
    const entries = JSON.parse(status.stdout) as {
      kind?: string
      file: string
      owner: string
      valid: boolean
    }[]
    const listed = entries.find((e) => e.kind === 'cookies')
    assert.equal(listed?.file, file)
    assert.equal(listed.owner, 'alice@SSOKIT.TEST')
    assert.equal(listed.valid, true)
  })
})

describe('ssokit demo with Kerberos', () => {
  it('offers "Sign in with Kerberos" in the built-in realm, and a ticket gets the cookies', async () => {
    const demo = await startDemo({
      idpPort: 0,
      appPort: 0,
      kerberos: { keytab: kdc.keytab, realm: kdc.realm },
    })
    try {
      const session = await cookieSession(`${demo.app.url}/admin`, {
        issuer: demo.idp.issuer,
        login: kerberosAuth({ ccache: aliceCache }),
      })
      assert.equal(session.status, 200)
      assert.equal(session.kerberosUsed, true)
    } finally {
      await demo.close()
    }
  })
})

describe('ssokit cookie behind ssokit proxy', () => {
  let upstream: RunningUwsgi
  let proxy: RunningProxy
  let base = ''
  const home = tempDir('ssokit-krb-proxy-')

  before(async () => {
    upstream = await startUwsgi()
    ;({ proxy, base } = await startProxyFor(idp.issuer, upstream.origin, {
      flags: { 'access-log': 'off' },
    }))
  })

  after(async () => {
    await proxy.close()
    await upstream.stop()
  })

  it("follows the proxy's sign-in to the provider and writes a file with which curl -b reaches the application as the user", async () => {
    const file = join(home, 'cookies.txt')
    const anonymous = await fetch(`${base}/reports/`, { headers: { accept: 'application/json' } })
    await anonymous.body?.cancel()
    assert.equal(anonymous.status, 401, 'the proxy lets no one through without a session')

    const exchanges = idp.kerberosExchanges
    const result = await ssokit(
      ['cookie', `${base}/reports/`, '--issuer', idp.issuer, '-o', file, '--json'],
      { KRB5CCNAME: aliceCache, SSOKIT_HOME: home },
    )
    assert.equal(result.code, 0, result.stderr)
    const written = JSON.parse(result.stdout) as {
      url: string
      status: number
      owner: string
      kerberos: boolean
    }
    assert.equal(written.url, `${base}/reports/`)
    assert.equal(written.status, 200)
    assert.equal(written.owner, 'alice@SSOKIT.TEST')
    assert.equal(written.kerberos, true)
    assert.equal(idp.kerberosExchanges, exchanges + 1)
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    // The proxy's sign-in that found no provider session was finished with Kerberos, not left
    // behind for a second one: no transaction cookie of an abandoned sign-in is in the file.
    assert.doesNotMatch(await readFile(file, 'utf8'), /ssokit-tx-/)

    const seen = await curl(file, `${base}/reports/`)
    assert.equal(seen.status, 200)
    const { path, headers } = JSON.parse(seen.body) as {
      path: string
      headers: Record<string, string>
    }
    assert.equal(path, '/reports/')
    assert.equal(headers.HTTP_X_FORWARDED_PREFERRED_USERNAME, 'alice')
    assert.equal(headers.HTTP_X_FORWARDED_USER, 'alice')
    // The proxy keeps its session cookie to itself.
    assert.doesNotMatch(headers.HTTP_COOKIE ?? '', /ssokit/)
  })

  it("session.fetch sends the caller's headers to the application and never to the provider, and stops on its signal", async () => {
    const session = await cookieSession(`${base}/`, {
      issuer: idp.issuer,
      login: kerberosAuth({ ccache: aliceCache }),
    })
    assert.equal(session.status, 200)
    const page = await session.fetch(`${base}/reports/`, {
      headers: { accept: 'application/json', 'x-report-format': 'wide', cookie: 'forged=1' },
    })
    assert.equal(page.status, 200)
    const { headers } = (await page.json()) as { headers: Record<string, string> }
    assert.equal(headers.HTTP_X_REPORT_FORMAT, 'wide')
    assert.equal(headers.HTTP_ACCEPT, 'application/json', "the caller's headers win")
    assert.equal(headers.HTTP_X_FORWARDED_USER, 'alice')
    assert.doesNotMatch(headers.HTTP_COOKIE ?? '', /forged/, 'the jar alone sets the cookies')

    const aborted = new AbortController()
    aborted.abort()
    await assert.rejects(session.fetch(`${base}/reports/`, { signal: aborted.signal }), {
      name: 'AbortError',
    })
  })

  it('signs in at a second proxied application with the same file, without Kerberos', async () => {
    // Another host name: cookies do not tell ports apart, so two proxies on one host name would
    // share one session cookie (in a browser too).
    const other = await startProxyFor(idp.issuer, upstream.origin, {
      host: '127.0.0.1',
      flags: { 'access-log': 'off' },
    })
    try {
      const file = join(home, 'cookies.txt')
      const exchanges = idp.kerberosExchanges
      const result = await ssokit(
        ['cookie', `${other.base}/`, '--issuer', idp.issuer, '-o', file, '--json'],
        { KRB5CCNAME: `FILE:${kdc.dir}/no-ticket-needed.ccache`, SSOKIT_HOME: home },
      )
      assert.equal(result.code, 0, result.stderr)
      assert.equal((JSON.parse(result.stdout) as { kerberos: boolean }).kerberos, false)
      assert.equal(idp.kerberosExchanges, exchanges)
      for (const at of [base, other.base]) {
        const seen = await curl(file, `${at}/`)
        assert.equal(seen.status, 200, at)
        const { headers } = JSON.parse(seen.body) as { headers: Record<string, string> }
        assert.equal(headers.HTTP_X_FORWARDED_PREFERRED_USERNAME, 'alice', at)
      }
    } finally {
      await other.proxy.close()
    }
  })
})
