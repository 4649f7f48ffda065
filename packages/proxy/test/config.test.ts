import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { CERN_ISSUER, loadProxyConfig, ProxyConfigError } from '@ssokit/proxy'

const REQUIRED = {
  upstream: 'http://127.0.0.1:8000',
  issuer: 'https://auth.example.org/realms/main',
  'client-id': 'my-app',
  'public-url': 'https://my-app.example',
}
const SECRET = 'a-client-secret-that-must-never-be-printed'

async function refusal(promise: Promise<unknown>): Promise<ProxyConfigError> {
  try {
    await promise
  } catch (error) {
    assert.ok(error instanceof ProxyConfigError, String(error))
    assert.doesNotMatch(error.message, /\n/)
    assert.ok(!error.message.includes(SECRET))
    return error
  }
  assert.fail('the configuration was accepted')
}

describe('proxy configuration', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-proxy-config-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('reads tsgauth and SSOKIT_* variables, with defaults for the rest', async () => {
    const config = await loadProxyConfig({
      env: {
        SSOKIT_PRESET: 'cern',
        SSOKIT_UPSTREAM: 'http://127.0.0.1:8000/',
        OIDC_CLIENT_ID: 'my-app',
        OIDC_CLIENT_SECRET: SECRET,
        SSOKIT_PUBLIC_URL: 'https://my-app.example',
        OIDC_SESSION_LIFETIME: '3600',
        OIDC_SESSION_STORE_TYPE: 'redis',
        OIDC_SESSION_STORE_HOST: 'redis.internal',
        SSOKIT_SESSION_SECRET: `${'n'.repeat(32)},${'o'.repeat(32)}`,
        SSOKIT_HEADER_PRESET: 'shibboleth-adfs',
      },
    })
    assert.equal(config.upstream, 'http://127.0.0.1:8000')
    assert.equal(config.issuer, CERN_ISSUER)
    assert.equal(config.clientSecret, SECRET)
    assert.equal(config.sessionLifetime, 3600)
    assert.equal(config.redisUrl, 'redis://redis.internal:6379')
    assert.deepEqual(config.sessionSecrets, ['n'.repeat(32), 'o'.repeat(32)])
    assert.equal(config.headers.names.username, 'ADFS-LOGIN')
    assert.equal(config.headers.separator, ';')
    assert.equal(config.port, 4180)
    assert.equal(config.host, '127.0.0.1')
    assert.equal(config.prefix, '/_ssokit')
    assert.equal(config.maxHeaderSize, 65_536)
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.headers))
  })

  it('has no default provider: OIDC_ISSUER, or SSOKIT_PRESET=cern for CERN', async () => {
    const withoutIssuer: Record<string, string> = { ...REQUIRED }
    delete withoutIssuer.issuer
    const missing = await refusal(
      loadProxyConfig({ flags: withoutIssuer, env: { OIDC_CLIENT_SECRET: SECRET } }),
    )
    assert.equal(
      missing.message,
      "issuer is not set: give --issuer, OIDC_ISSUER or issuer in the config file (SSOKIT_PRESET=cern for CERN's)",
    )
    const wrong = await refusal(
      loadProxyConfig({
        flags: REQUIRED,
        env: { OIDC_CLIENT_SECRET: SECRET, SSOKIT_PRESET: 'keycloak' },
      }),
    )
    assert.match(wrong.message, /^SSOKIT_PRESET must be cern/)
  })

  it('reads the OIDC_ names under TSGAUTH_OIDC_PREFIX', async () => {
    const config = await loadProxyConfig({
      flags: { upstream: REQUIRED.upstream, 'public-url': REQUIRED['public-url'] },
      env: {
        TSGAUTH_OIDC_PREFIX: 'APP_',
        APP_OIDC_ISSUER: 'https://auth.example.org/realms/app',
        APP_OIDC_CLIENT_ID: 'app',
        APP_OIDC_CLIENT_SECRET: SECRET,
        OIDC_CLIENT_ID: 'not-this-one',
      },
    })
    assert.equal(config.issuer, 'https://auth.example.org/realms/app')
    assert.equal(config.clientId, 'app')
    const missing = await refusal(
      loadProxyConfig({
        flags: {
          upstream: REQUIRED.upstream,
          'public-url': REQUIRED['public-url'],
          issuer: REQUIRED.issuer,
        },
        env: { TSGAUTH_OIDC_PREFIX: 'APP_', OIDC_CLIENT_ID: 'app', APP_OIDC_CLIENT_SECRET: SECRET },
      }),
    )
    assert.match(missing.message, /^clientId is not set: give --client-id, APP_OIDC_CLIENT_ID or/)
  })

  it('lets flags win over the environment, and the environment over the file', async () => {
    const file = join(dir, 'proxy.yaml')
    await writeFile(
      file,
      [
        'upstream: http://127.0.0.1:1111',
        'issuer: https://auth.example.org/realms/main',
        'clientId: from-file',
        'publicUrl: https://file.example',
        'port: 9000',
        'headers:',
        '  preset: none',
        '  user: X-User',
        '  assertion: false',
        'rules:',
        '  - path: /health',
        '    public: true',
      ].join('\n'),
    )
    const config = await loadProxyConfig({
      file,
      flags: { upstream: 'http://127.0.0.1:3333' },
      env: {
        SSOKIT_UPSTREAM: 'http://127.0.0.1:2222',
        OIDC_CLIENT_ID: 'from-env',
        OIDC_CLIENT_SECRET: SECRET,
      },
    })
    assert.equal(config.upstream, 'http://127.0.0.1:3333')
    assert.equal(config.clientId, 'from-env')
    assert.equal(config.publicUrl, 'https://file.example')
    assert.equal(config.port, 9000)
    assert.deepEqual(config.headers.names, { user: 'X-User' })
    assert.equal(config.headers.assertion, false)
    assert.deepEqual(config.rules, [{ path: '/health', public: true }])
  })

  it('reads the client secret from --client-secret-file', async () => {
    const file = join(dir, 'secret')
    await writeFile(file, `${SECRET}\n`)
    const config = await loadProxyConfig({ flags: { ...REQUIRED, 'client-secret-file': file } })
    assert.equal(config.clientSecret, SECRET)
    await writeFile(join(dir, 'empty'), '\n')
    const empty = await refusal(
      loadProxyConfig({ flags: { ...REQUIRED, 'client-secret-file': join(dir, 'empty') } }),
    )
    assert.match(empty.message, /^--client-secret-file: ".*empty" is empty$/)
  })

  it('names the source of each bad value in one line, and never prints a secret', async () => {
    const env = { OIDC_CLIENT_SECRET: SECRET }
    const cases: [Record<string, string>, Record<string, string>, RegExp][] = [
      [
        { ...REQUIRED, upstream: 'http://127.0.0.1:8000/app' },
        env,
        /^--upstream must be .*\(no path\), not "http:\/\/127\.0\.0\.1:8000\/app"$/,
      ],
      [{ ...REQUIRED, 'public-url': 'https://my-app.example/base' }, env, /^--public-url must be/],
      [{ ...REQUIRED, issuer: 'http://auth.example' }, env, /^--issuer must be an https URL/],
      [
        { ...REQUIRED },
        {},
        /^clientSecret is not set: give OIDC_CLIENT_SECRET or clientSecret in the config file$/,
      ],
      [
        { ...REQUIRED },
        { ...env, SSOKIT_SESSION_SECRET: 'short' },
        /^SSOKIT_SESSION_SECRET must be at least 32 characters/,
      ],
      [
        { ...REQUIRED, 'max-header-size': '12' },
        env,
        /^--max-header-size must be a number of bytes from 1024 to 1048576, not "12"$/,
      ],
      [
        { ...REQUIRED, 'redis-url': 'http://x' },
        env,
        /^--redis-url must be a URL such as redis:\/\/127\.0\.0\.1:6379, not "http:\/\/x"$/,
      ],
    ]
    for (const [flags, vars, message] of cases) {
      const error = await refusal(loadProxyConfig({ flags, env: vars }))
      assert.match(error.message, message)
    }
  })

  it('C04 trusts no proxy by default, and reads trusted proxies and redirect domains from every source', async () => {
    const env = { OIDC_CLIENT_SECRET: SECRET }
    const plain = await loadProxyConfig({ flags: REQUIRED, env })
    assert.deepEqual(plain.trustedProxies, [])
    assert.deepEqual(plain.allowedRedirectDomains, [])
    const fromFlags = await loadProxyConfig({
      flags: { ...REQUIRED, 'trusted-proxies': '10.0.0.0/8, 127.0.0.1 ::1' },
      env: { ...env, SSOKIT_ALLOWED_REDIRECT_DOMAINS: '.Example.org,app.example.net:8443' },
    })
    assert.deepEqual(fromFlags.trustedProxies, ['10.0.0.0/8', '127.0.0.1', '::1'])
    assert.deepEqual(fromFlags.allowedRedirectDomains, ['.example.org', 'app.example.net:8443'])
    const file = join(dir, 'trusted.yaml')
    await writeFile(file, 'trustedProxies: [192.168.0.0/16, "fd00::/8"]\n')
    const fromFile = await loadProxyConfig({ flags: REQUIRED, env, file })
    assert.deepEqual(fromFile.trustedProxies, ['192.168.0.0/16', 'fd00::/8'])
    for (const [flags, pattern] of [
      [
        { 'trusted-proxies': 'proxy.internal' },
        /^--trusted-proxies entry "proxy.internal" is not an IP address/,
      ],
      [
        { 'trusted-proxies': '10.0.0.0/33' },
        /^--trusted-proxies entry "10.0.0.0\/33" has a CIDR prefix/,
      ],
      [{ 'trusted-proxies': '0.0.0.0/0x' }, /CIDR prefix/],
      [
        { 'allowed-redirect-domains': 'https://app.example.org' },
        /^--allowed-redirect-domains entry "https:\/\/app.example.org" is not a host name/,
      ],
      [{ 'allowed-redirect-domains': '*.example.org' }, /is not a host name/],
      [{ 'allowed-redirect-domains': '..example.org' }, /empty label/],
    ] as const) {
      const error = await refusal(loadProxyConfig({ flags: { ...REQUIRED, ...flags }, env }))
      assert.match(error.message, pattern)
    }
    await writeFile(file, 'trustedProxies: [10.0.0.1, everyone]\n')
    const inFile = await refusal(loadProxyConfig({ flags: REQUIRED, env, file }))
    assert.match(
      inFile.message,
      /trusted\.yaml: trustedProxies entry "everyone" is not an IP address/,
    )
  })

  it('C08 refuses rule patterns that are not whole segments, and unknown keys', async () => {
    const patterns: [string, RegExp][] = [
      ['^/public', /must start with "\/"/],
      ['/api/public.*', /not a regular expression/],
      ['/foo/(.*)/bar$', /not a regular expression/],
      ['/public?x', /path only/],
      ['/public/', /empty segment/],
      ['/public/../admin', /"\." or "\.\." segment/],
      ['/a%2fb', /characters a canonical path never holds/],
    ]
    for (const [pattern, message] of patterns) {
      const file = join(dir, 'rules.yaml')
      await writeFile(file, `rules:\n  - path: ${JSON.stringify(pattern)}\n    public: true\n`)
      const error = await refusal(
        loadProxyConfig({ file, flags: REQUIRED, env: { OIDC_CLIENT_SECRET: SECRET } }),
      )
      assert.match(error.message, /rules\[0\]\.path /)
      assert.match(error.message, message)
    }
    const file = join(dir, 'unknown.yaml')
    await writeFile(file, 'upstrem: http://127.0.0.1:8000\n')
    const unknown = await refusal(loadProxyConfig({ file, flags: REQUIRED }))
    assert.match(unknown.message, /unknown key "upstrem"$/)
    await writeFile(file, 'headers:\n  usr: X-User\n')
    const nested = await refusal(
      loadProxyConfig({ file, flags: REQUIRED, env: { OIDC_CLIENT_SECRET: SECRET } }),
    )
    assert.match(nested.message, /headers: unknown key "usr"$/)
  })
})
