import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { CookieJar, startIdp, type RunningIdp } from '@ssokit/idp'
import { startRedis } from '../../../test/support/redis.js'
import { finishLogin } from '../../../test/support/session-redis.js'
import { idpMetadata, makeKeyPair, SSO_URL } from '../../saml/test/support.js'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))

function start(args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(
    process.execPath,
    ['--conditions=source', '--import', 'tsx', MAIN, 'proxy', ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '', ...env },
    },
  )
}

async function run(args: string[], env: Record<string, string> = {}) {
  const child = start(args, env)
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const [code] = (await once(child, 'close')) as [number | null]
  return { code, stdout, stderr }
}

async function freePort(): Promise<number> {
  const probe = createServer()
  probe.listen(0, '127.0.0.1')
  await once(probe, 'listening')
  const { port } = probe.address() as AddressInfo
  probe.close()
  await once(probe, 'close')
  return port
}

async function listening(port: number): Promise<boolean> {
  try {
    await fetch(`http://127.0.0.1:${port}/_ssokit/healthz`)
    return true
  } catch {
    return false
  }
}

describe('ssokit proxy command', () => {
  let dir: string
  let secretFile: string
  let idp: RunningIdp
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-proxy-cli-'))
    secretFile = join(dir, 'secret')
    await writeFile(secretFile, 'demo-app-secret\n')
    idp = await startIdp({ port: 0, log: false })
  })
  after(async () => {
    await idp.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('stops at a bad value with one line naming the flag, variable or file key, exit 2, nothing listening', async () => {
    const port = await freePort()
    const good = [
      '--upstream',
      'http://127.0.0.1:8000',
      '--issuer',
      idp.issuer,
      '--client-id',
      'demo-app',
      '--client-secret-file',
      secretFile,
      '--public-url',
      `http://localhost:${port}`,
      '--port',
      String(port),
    ]
    const config = join(dir, 'bad.yaml')
    await writeFile(config, 'rules:\n  - path: /api/.*\n    public: true\n')
    const rsaKey = join(dir, 'rsa.pem')
    await writeFile(
      rsaKey,
      generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({
        type: 'pkcs8',
        format: 'pem',
      }),
    )
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        [...good, '--upstream', 'ftp://x'],
        {},
        /^ssokit: --upstream must be an http or https origin .*, not "ftp:\/\/x"$/,
      ],
      [
        good.filter((v, i) => i > 1 && good[i - 1] !== '--upstream' && v !== '--upstream'),
        {},
        /^ssokit: upstream is not set: give --upstream, SSOKIT_UPSTREAM or upstream in the config file$/,
      ],
      [
        [...good, '--public-url', 'http://my-app.example'],
        {},
        /^ssokit: --public-url must be the https origin/,
      ],
      [
        [...good, '--client-secret-file', join(dir, 'missing')],
        {},
        /^ssokit: --client-secret-file: cannot read ".*missing" \(ENOENT\)$/,
      ],
      [
        [...good, '--port', 'abc'],
        {},
        /^ssokit: --port must be a port number from 0 to 65535, not "abc"$/,
      ],
      [
        [...good, '--config', config],
        {},
        /^ssokit: .*bad\.yaml: rules\[0\]\.path is a path of whole segments/,
      ],
      [
        good,
        { SSOKIT_UPSTREAM_TIMEOUT: '0' },
        /^ssokit: SSOKIT_UPSTREAM_TIMEOUT must be a number of seconds from 1 to 3600, not "0"$/,
      ],
      [
        [...good, '--header-preset', 'apache'],
        {},
        /^ssokit: --header-preset must be oauth2-proxy, shibboleth-adfs, shibboleth, none, not "apache"$/,
      ],
      [
        [...good, '--redis-url', 'redis://127.0.0.1:1'],
        {},
        /^ssokit: sessions in Redis need a session secret/,
      ],
      [
        [...good, '--trusted-proxies', '127.0.0.1,proxy.internal'],
        {},
        /^ssokit: --trusted-proxies entry "proxy\.internal" is not an IP address or a CIDR range/,
      ],
      [
        good,
        { SSOKIT_ALLOWED_REDIRECT_DOMAINS: 'https://app.example.org' },
        /^ssokit: SSOKIT_ALLOWED_REDIRECT_DOMAINS entry "https:\/\/app\.example\.org" is not a host name/,
      ],
      [
        [...good, '--assertion-key-file', rsaKey],
        {},
        /^ssokit: --assertion-key-file: ".*rsa\.pem" is not an EC P-256 key \(the assertion is signed with ES256\)$/,
      ],
      [
        good,
        { SSOKIT_PASS_ACCESS_TOKEN: 'maybe' },
        /^ssokit: SSOKIT_PASS_ACCESS_TOKEN must be on or off, not "maybe"$/,
      ],
    ]
    for (const [args, env, message] of cases) {
      const result = await run(args, env)
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`)
      assert.match(result.stderr.split('\n')[0] ?? '', message)
      assert.equal(result.stdout, '')
    }
    assert.equal(await listening(port), false)
  })

  it('runs in front of an upstream from flags and environment, and stops on SIGTERM', async () => {
    const port = await freePort()
    const child = start(
      [
        '--upstream',
        'http://127.0.0.1:9',
        '--issuer',
        idp.issuer,
        '--client-id',
        'demo-app',
        '--public-url',
        `http://localhost:${port}`,
        '--port',
        String(port),
      ],
      { OIDC_CLIENT_SECRET: 'demo-app-secret' },
    )
    let stdout = ''
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
    while (!stdout.includes('listening on')) {
      await once(child.stdout!, 'data')
    }
    const health = await fetch(`http://127.0.0.1:${port}/_ssokit/healthz`)
    assert.equal(health.status, 200)
    const ready = await fetch(`http://127.0.0.1:${port}/_ssokit/readyz`)
    assert.equal(ready.status, 200)
    const anonymous = await fetch(`http://127.0.0.1:${port}/app`, {
      headers: { accept: 'application/json' },
    })
    assert.equal(anonymous.status, 401)
    child.kill('SIGTERM')
    const [code] = (await once(child, 'close')) as [number | null]
    assert.equal(code, 0)
    assert.match(stdout, /Received SIGTERM, stopping/)
  })

  it('signs in through SAML from the --saml-* flags; a certificate without its key stops start-up', async () => {
    const idpKeys = makeKeyPair('idp.example.org')
    const spKeys = makeKeyPair('my-app.example')
    const metadata = join(dir, 'idp.xml')
    const cert = join(dir, 'sp-cert.pem')
    const key = join(dir, 'sp-key.pem')
    await writeFile(metadata, idpMetadata(idpKeys.cert))
    await writeFile(cert, spKeys.cert)
    await writeFile(key, spKeys.key)
    const port = await freePort()
    const base = `http://localhost:${port}`
    const saml = [
      '--upstream',
      'http://127.0.0.1:9',
      '--public-url',
      base,
      '--port',
      String(port),
      '--saml-idp-metadata',
      metadata,
      '--saml-entity-id',
      `${base}/sp`,
    ]
    for (const [flag, file] of [
      ['--saml-cert-file', cert],
      ['--saml-key-file', key],
    ] as const) {
      const refused = await run([...saml, flag, file])
      assert.equal(refused.code, 2, refused.stderr)
      // The flag as typed: --saml-cert-file needs the SAML certificate and key files together
      assert.equal(
        refused.stderr.split('\n')[0],
        `ssokit: ${flag} needs the SAML certificate and key files together`,
      )
      assert.equal(refused.stdout, '')
    }
    assert.equal(await listening(port), false)

    const child = start([...saml, '--saml-cert-file', cert, '--saml-key-file', key])
    try {
      let stdout = ''
      child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
      while (!stdout.includes('Endpoints')) await once(child.stdout!, 'data')
      assert.match(stdout, /SAML IdP +.*idp\.xml \(SP http:\/\/localhost:\d+\/sp\)/)
      const sp = await fetch(`${base}/_ssokit/saml/metadata`)
      assert.equal(sp.status, 200)
      const spXml = await sp.text()
      assert.match(spXml, new RegExp(`entityID="${base}/sp"`))
      const spCertBody = spKeys.cert.replace(/-----[A-Z ]+-----|\s/g, '')
      assert.ok(spXml.replace(/\s/g, '').includes(spCertBody), 'the SP certificate is published')
      const login = await fetch(`${base}/_ssokit/login?returnTo=/`, { redirect: 'manual' })
      assert.equal(login.status, 302)
      const location = new URL(login.headers.get('location') ?? '')
      assert.equal(`${location.origin}${location.pathname}`, SSO_URL)
      // --saml-key-file signs the AuthnRequest (HTTP-Redirect binding: a Signature parameter).
      assert.ok(location.searchParams.has('SAMLRequest'))
      assert.ok(location.searchParams.has('Signature'))
    } finally {
      child.kill('SIGTERM')
      if (child.exitCode === null) await once(child, 'close')
    }

    // Metadata that must be signed (--saml-idp-metadata-cert) but is not: said at start-up,
    // and no sign-in is sent to an IdP nobody vouched for.
    const vouched = start([...saml, '--saml-idp-metadata-cert', cert])
    try {
      let stdout = ''
      vouched.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
      while (!stdout.includes('Warning')) await once(vouched.stdout!, 'data')
      assert.match(
        stdout,
        /Warning +The IdP metadata cannot be used\. The IdP metadata is not signed/,
      )
      const login = await fetch(`${base}/_ssokit/login?returnTo=/`, { redirect: 'manual' })
      assert.equal(login.status, 503)
    } finally {
      vouched.kill('SIGTERM')
      if (vouched.exitCode === null) await once(vouched, 'close')
    }
  })

  it('shares sessions between two proxies through --redis-url; a sign-out on one ends it on both', async () => {
    const redis = await startRedis()
    const children: ChildProcess[] = []
    try {
      const env = {
        OIDC_CLIENT_SECRET: 'demo-app-secret',
        SSOKIT_SESSION_SECRET: 's'.repeat(40),
        SSOKIT_REDIS_URL: redis.url,
      }
      const bases: string[] = []
      for (let i = 0; i < 2; i++) {
        const port = await freePort()
        const child = start(
          [
            '--upstream',
            'http://127.0.0.1:9',
            '--issuer',
            idp.issuer,
            '--client-id',
            'demo-app',
            '--public-url',
            `http://localhost:${port}`,
            '--port',
            String(port),
          ],
          env,
        )
        children.push(child)
        let stdout = ''
        child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
        while (!stdout.includes('Endpoints')) await once(child.stdout!, 'data')
        assert.match(stdout, /Sessions +Redis at redis:\/\/127\.0\.0\.1:/)
        bases.push(`http://localhost:${port}`)
      }
      const [a = '', b = ''] = bases
      const jar = new CookieJar()
      const begin = await jar.fetch(`${a}/_ssokit/login?returnTo=/`)
      const { callback } = await finishLogin(
        idp.issuer,
        begin.headers.get('location') ?? '',
        'alice',
        jar,
      )
      assert.equal(callback.status, 302)
      // Signed in through A; B opens the same session (the upstream is down: 502, not 401).
      const json = { accept: 'application/json' }
      assert.equal((await jar.fetch(`${b}/app`, { headers: json })).status, 502)
      const logout = await jar.fetch(`${a}/_ssokit/logout`, {
        method: 'POST',
        headers: { origin: a, 'sec-fetch-site': 'same-origin' },
      })
      assert.ok(logout.status === 302 || logout.status === 303, String(logout.status))
      assert.equal((await jar.fetch(`${b}/app`, { headers: json })).status, 401)
    } finally {
      for (const child of children) {
        child.kill('SIGTERM')
        if (child.exitCode === null) await once(child, 'close')
      }
      await redis.stop()
    }
  })
})
