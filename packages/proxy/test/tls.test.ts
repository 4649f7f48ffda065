import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { connect } from 'node:tls'
import { startIdp, type RunningIdp } from '@ssokit/idp'
import { loadProxyConfig, ProxyConfigError, startProxy, type RunningProxy } from '@ssokit/proxy'
import { Agent, fetch as undiciFetch } from 'undici'
import { selfSignedCertificate, type TestCertificate } from '../../../test/support/tls.js'
import { freePort, rawRequest, sink, startEcho, type Echo } from './support.js'

describe('ssokit proxy: TLS termination', () => {
  let dir: string
  let certificate: TestCertificate
  let certFile: string
  let keyFile: string
  let idp: RunningIdp
  let echo: Echo
  let proxy: RunningProxy
  let base: string
  let agent: Agent
  const baseFlags = () => ({
    upstream: echo.origin,
    issuer: idp.issuer,
    'client-id': 'demo-app',
    host: '127.0.0.1',
  })
  const env = { OIDC_CLIENT_SECRET: 'demo-app-secret' }

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-tls-'))
    certificate = await selfSignedCertificate(['localhost'])
    certFile = join(dir, 'cert.pem')
    keyFile = join(dir, 'key.pem')
    await writeFile(certFile, certificate.cert)
    await writeFile(keyFile, certificate.key, { mode: 0o600 })
    idp = await startIdp({ port: 0, log: false })
    echo = await startEcho()
    const port = await freePort()
    const redirectPort = await freePort()
    base = `https://localhost:${port}`
    const config = await loadProxyConfig({
      flags: {
        ...baseFlags(),
        'public-url': base,
        port,
        'tls-cert': certFile,
        'tls-key': keyFile,
        'http-redirect-port': redirectPort,
      },
      env,
    })
    proxy = await startProxy(config, { onEvent: () => {}, accessLog: sink() })
    agent = new Agent({ connect: { ca: certificate.cert } })
  })
  after(async () => {
    await proxy.close()
    await agent.close()
    await echo.close()
    await idp.close()
    await rm(dir, { recursive: true, force: true })
  })

  it('serves https with the configured certificate, and sends the application https as the scheme', async () => {
    assert.match(proxy.url, /^https:\/\//)
    const health = await undiciFetch(`${base}/_ssokit/healthz`, { dispatcher: agent })
    assert.equal(health.status, 200)
    const anonymous = await undiciFetch(`${base}/app`, {
      dispatcher: agent,
      headers: { accept: 'application/json' },
    })
    assert.equal(anonymous.status, 401)
    // Sign-in starts with Secure cookies: the public URL is https.
    const login = await undiciFetch(`${base}/_ssokit/login?returnTo=/`, {
      dispatcher: agent,
      redirect: 'manual',
    })
    assert.equal(login.status, 302)
    for (const cookie of login.headers.getSetCookie()) assert.match(cookie, /; Secure/i)
  })

  it('refuses TLS 1.1 and older, and accepts TLS 1.2 and 1.3', async () => {
    const handshake = async (version: 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3') => {
      const socket = connect({
        host: '127.0.0.1',
        port: proxy.port,
        servername: 'localhost',
        ca: certificate.cert,
        minVersion: version,
        maxVersion: version,
      })
      try {
        await once(socket, 'secureConnect')
        return socket.getProtocol()
      } catch {
        return 'refused'
      } finally {
        socket.destroy()
      }
    }
    assert.equal(await handshake('TLSv1.1'), 'refused')
    assert.equal(await handshake('TLSv1.2'), 'TLSv1.2')
    assert.equal(await handshake('TLSv1.3'), 'TLSv1.3')
  })

  it('answers plain HTTP on --http-redirect-port with a 308 to the same path on the public URL', async () => {
    const port = proxy.redirectPort
    assert.ok(port !== undefined)
    const answer = await rawRequest(port, [
      'GET /reports/2026?page=2 HTTP/1.1',
      'Host: evil.example',
    ])
    assert.equal(answer.status, 308)
    assert.match(answer.head, new RegExp(`^location: ${base}/reports/2026\\?page=2$`, 'im'))
    // The client's Host never chooses where the redirect goes, nor an absolute target.
    const absolute = await rawRequest(port, [
      'GET http://evil.example/x HTTP/1.1',
      'Host: evil.example',
    ])
    assert.equal(absolute.status, 308)
    assert.match(absolute.head, new RegExp(`^location: ${base}/$`, 'im'))
    assert.ok(
      !echo.received.some((r) => r.url.startsWith('/reports')),
      'nothing reached the application',
    )
  })

  it('stops start-up with one line naming the setting for a bad certificate, key or combination', async () => {
    const port = await freePort()
    const wrongKey = await selfSignedCertificate(['localhost'])
    const otherKey = join(dir, 'other-key.pem')
    await writeFile(otherKey, wrongKey.key)
    const notPem = join(dir, 'not.pem')
    await writeFile(notPem, 'hello\n')
    const cases: [Record<string, string | number>, RegExp][] = [
      [{ 'tls-cert': certFile }, /^--tls-cert needs --tls-key too$/],
      [{ 'tls-key': keyFile }, /^--tls-key needs --tls-cert too$/],
      [
        { 'tls-cert': notPem, 'tls-key': keyFile },
        /^--tls-cert: ".*not\.pem" holds no PEM certificate$/,
      ],
      [
        { 'tls-cert': certFile, 'tls-key': notPem },
        /^--tls-key: ".*not\.pem" holds no PEM private key$/,
      ],
      [{ 'tls-cert': certFile, 'tls-key': otherKey }, /^--tls-key does not fit --tls-cert/],
      [
        { 'tls-cert': join(dir, 'missing.pem'), 'tls-key': keyFile },
        /^--tls-cert: cannot read ".*missing\.pem" \(ENOENT\)$/,
      ],
      [{ 'http-redirect-port': port }, /^--http-redirect-port needs TLS/],
      [{ 'http-redirect-port': 'eighty' }, /^--http-redirect-port must be a port number/],
    ]
    for (const [flags, expected] of cases) {
      await assert.rejects(
        loadProxyConfig({
          flags: { ...baseFlags(), 'public-url': `https://localhost:${port}`, port, ...flags },
          env,
        }),
        (error: unknown) => {
          assert.ok(error instanceof ProxyConfigError)
          assert.match(error.message, expected)
          assert.doesNotMatch(error.message, /PRIVATE KEY|\n/)
          return true
        },
      )
    }
    await assert.rejects(
      loadProxyConfig({
        flags: {
          ...baseFlags(),
          'public-url': `http://localhost:${port}`,
          port,
          'tls-cert': certFile,
          'tls-key': keyFile,
        },
        env,
      }),
      /^ProxyConfigError: --public-url must be an https URL when the proxy terminates TLS/,
    )
    await assert.rejects(
      loadProxyConfig({
        flags: { ...baseFlags(), 'public-url': `https://localhost:${port}`, port },
        env: { ...env, SSOKIT_TLS_CERT: certFile },
      }),
      /SSOKIT_TLS_CERT needs --tls-key too/,
    )
  })
})
