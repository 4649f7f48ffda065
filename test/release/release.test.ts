/**
 * The release check: the packages as `npm run pack` builds them, installed with plain
 * `npm install <tarballs>` into a new project outside the workspace, used only through their
 * public entry points, and linted with publint and arethetypeswrong.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'
import { publint } from 'publint'
import {
  documentedExpressServer,
  FASTIFY_SERVER,
  tsconfig,
  TYPESCRIPT_CONSUMER,
} from './consumer.js'
import { killAll, run, startServer, type Finished } from './processes.js'
import { selfSignedCertificate } from '../support/tls.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')
const ATTW = join(ROOT, 'node_modules/@arethetypeswrong/cli/dist/index.js')

/** The version the workspace itself uses, so that the install is served from the npm cache. */
async function workspaceVersion(name: string): Promise<string> {
  const manifest = JSON.parse(
    await readFile(join(ROOT, 'node_modules', name, 'package.json'), 'utf8'),
  ) as { version: string }
  return `${name}@${manifest.version}`
}

function ok(result: Finished, what: string): void {
  assert.equal(result.code, 0, `${what} failed:\n${result.stdout}\n${result.stderr}`)
}

async function serviceToken(issuer: string): Promise<string> {
  const response = await fetch(`${issuer}/protocol/openid-connect/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'demo-app',
      client_secret: 'demo-app-secret',
      audience: 'demo-api',
    }),
  })
  assert.equal(response.status, 200)
  const { access_token: token } = (await response.json()) as { access_token: string }
  return token
}

/** Every file under `dir`, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true })
  return entries
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(dir.length + 1))
}

describe('release: packed tarballs installed outside the workspace', () => {
  let base: string
  let project: string
  let tarballs: string[]
  let attw: Promise<Finished[]>
  let typecheck: Promise<Finished[]>
  const ssokit = () => join(project, 'node_modules/.bin/ssokit')

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'ssokit-release-'))
    project = join(base, 'project')
    const pack = await run(
      process.execPath,
      [join(ROOT, 'scripts/pack.mjs'), '--out', join(base, 'tarballs')],
      ROOT,
    )
    ok(pack, 'npm run pack')
    // pack.mjs prints paths relative to its working directory; npm runs elsewhere.
    tarballs = pack.stdout
      .trim()
      .split('\n')
      .map((path) => resolve(ROOT, path))
    assert.equal(tarballs.length, (await readdir(join(ROOT, 'packages'))).length)

    // attw reads each tarball on its own, so it runs while npm installs.
    attw = (async () => {
      const results: Finished[] = []
      for (const tarball of tarballs) {
        results.push(
          await run(
            process.execPath,
            [ATTW, tarball, '--profile', 'esm-only', '--no-definitely-typed', '--format', 'ascii'],
            base,
          ),
        )
      }
      return results
    })()
    attw.catch(() => undefined)

    await run('mkdir', [project], base)
    await writeFile(
      join(project, 'package.json'),
      JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
    )
    const install = await run(
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        // Without optional dependencies (the native kerberos module): all but Kerberos works.
        '--omit=optional',
        ...tarballs,
        ...(await Promise.all(
          // ioredis, a peer of @ssokit/redis, too: npm would pick its newest release, whose
          // declarations import an untyped module and fail any consumer's strict lib check.
          ['express', 'fastify', 'hono', 'ioredis', '@types/express', '@types/node'].map(
            workspaceVersion,
          ),
        )),
      ],
      project,
    )
    ok(install, 'npm install')

    // Both type-checks run while the servers below are tested.
    await writeFile(join(project, 'consumer.ts'), TYPESCRIPT_CONSUMER)
    typecheck = Promise.all(
      (['nodenext', 'bundler'] as const).map(async (resolution) => {
        const config = join(project, `tsconfig.${resolution}.json`)
        await writeFile(config, tsconfig(resolution))
        return run(process.execPath, [TSC, '-p', config], project)
      }),
    )
    typecheck.catch(() => undefined)
  })

  after(async () => {
    killAll()
    await rm(base, { recursive: true, force: true })
  })

  it('passes publint and arethetypeswrong (esm-only) for every tarball', async () => {
    for (const tarball of tarballs) {
      const data = await readFile(tarball)
      const { messages } = await publint({
        pack: { tarball: data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) },
        level: 'warning',
      })
      assert.deepEqual(messages, [], `publint ${tarball}`)
    }
    for (const [i, result] of (await attw).entries()) ok(result, `attw ${tarballs[i] ?? ''}`)
  })

  it('publishes with provenance, every package after the packages it depends on', async () => {
    const plan = await run(
      process.execPath,
      [join(ROOT, 'scripts/publish.mjs'), '--dry-run', '--from', join(base, 'tarballs')],
      ROOT,
    )
    ok(plan, 'publish --dry-run')
    const lines = plan.stdout.trim().split('\n')
    const order = lines.map((line) => {
      const found =
        /^npm publish \S+\/ssokit-([a-z]+)-[^/ ]+\.tgz --provenance --access public$/.exec(line)
      assert.ok(found, line)
      return `@ssokit/${found[1] ?? ''}`
    })
    for (const name of await readdir(join(ROOT, 'packages'))) {
      const manifest = JSON.parse(
        await readFile(join(ROOT, 'packages', name, 'package.json'), 'utf8'),
      ) as { name: string; dependencies?: Record<string, string> }
      assert.ok(order.includes(manifest.name), manifest.name)
      for (const dependency of Object.keys(manifest.dependencies ?? {})) {
        if (!dependency.startsWith('@ssokit/')) continue
        assert.ok(
          order.indexOf(dependency) < order.indexOf(manifest.name),
          `${dependency} before ${manifest.name}`,
        )
      }
    }
  })

  it('ships compiled files only, with no development condition', async () => {
    for (const name of await readdir(join(project, 'node_modules/@ssokit'))) {
      const dir = join(project, 'node_modules/@ssokit', name)
      const files = await filesUnder(dir)
      const stray = files.filter(
        (file) =>
          /\.(map|tsbuildinfo)$/.test(file) ||
          (file.endsWith('.ts') && !file.endsWith('.d.ts')) ||
          /(^|\/)(src|test)\//.test(file),
      )
      assert.deepEqual(stray, [], name)
      assert.ok(files.includes('README.md') && files.includes('LICENSE'), name)
      const manifest = await readFile(join(dir, 'package.json'), 'utf8')
      assert.doesNotMatch(manifest, /"source"/, name)
    }
  })

  it('protects an Express and a Fastify API against ssokit idp from the tarball', async () => {
    await writeFile(
      join(project, 'server.mjs'),
      await documentedExpressServer(new URL('../../docs/', import.meta.url)),
    )
    await writeFile(join(project, 'fastify-server.mjs'), FASTIFY_SERVER)
    const idp = await startServer(
      ssokit(),
      ['idp', '--port', '0'],
      project,
      /realm ready at (\S+)\n/,
    )
    const issuer = idp.ready[1] ?? ''
    const env = { OIDC_ISSUER: issuer, OIDC_CLIENT_ID: 'demo-api', PORT: '0' }
    const apps = await Promise.all(
      ['server.mjs', 'fastify-server.mjs'].map((file) =>
        startServer(
          'env',
          [...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'node', file],
          project,
          /API on (\S+)\n/,
        ),
      ),
    )
    const token = await serviceToken(issuer)
    for (const app of apps) {
      const url = app.ready[1] ?? ''
      const anonymous = await fetch(url)
      assert.equal(anonymous.status, 401, app.output())
      assert.equal(anonymous.headers.get('www-authenticate'), 'Bearer realm="demo-api"')
      const signed = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
      assert.equal(signed.status, 200, app.output())
      assert.equal(
        ((await signed.json()) as { subject: string }).subject,
        'service-account-demo-app',
      )
      const forbidden = await fetch(url.replace('/api/me', '/api/items/1'), {
        method: 'DELETE',
        headers: { authorization: `Bearer ${token}` },
      })
      assert.equal(forbidden.status, 403, app.output())
    }
    for (const server of [...apps, idp]) {
      server.child.kill('SIGTERM')
      await server.exited
    }
  })

  it('calls a protected API with @ssokit/client and with ssokit token from the tarballs', async () => {
    await writeFile(
      join(project, 'server.mjs'),
      await documentedExpressServer(new URL('../../docs/', import.meta.url)),
    )
    await writeFile(
      join(project, 'client.mjs'),
      `import { authFetch, clientCredentials } from '@ssokit/client'
const [issuer, url] = process.argv.slice(2)
const source = clientCredentials({ issuer, clientId: 'demo-app', clientSecret: process.env.SSOKIT_CLIENT_SECRET, audience: 'demo-api' })
const response = await authFetch(source)(url)
console.log(response.status, (await response.json()).subject)
`,
    )
    const idp = await startServer(
      ssokit(),
      ['idp', '--port', '0'],
      project,
      /realm ready at (\S+)\n/,
    )
    const issuer = idp.ready[1] ?? ''
    const app = await startServer(
      'env',
      [`OIDC_ISSUER=${issuer}`, 'OIDC_CLIENT_ID=demo-api', 'PORT=0', 'node', 'server.mjs'],
      project,
      /API on (\S+)\n/,
    )
    const url = app.ready[1] ?? ''
    const env = [`SSOKIT_HOME=${join(base, 'ssokit-home')}`, 'SSOKIT_CLIENT_SECRET=demo-app-secret']
    const script = await run('env', [...env, 'node', 'client.mjs', issuer, url], project)
    ok(script, 'node client.mjs')
    assert.equal(script.stdout, '200 service-account-demo-app\n')
    const printed = await run(
      'env',
      [
        ...env,
        ssokit(),
        'token',
        '--issuer',
        issuer,
        '--client-id',
        'demo-app',
        '--audience',
        'demo-api',
      ],
      project,
    )
    ok(printed, 'ssokit token')
    const signed = await fetch(url, {
      headers: { authorization: `Bearer ${printed.stdout.trim()}` },
    })
    assert.equal(signed.status, 200)
    for (const server of [app, idp]) {
      server.child.kill('SIGTERM')
      await server.exited
    }
  })

  it('runs ssokit --help, --version and demo from the installed command', async () => {
    const help = await run(ssokit(), ['--help'], project)
    ok(help, 'ssokit --help')
    assert.match(help.stdout, /Usage: ssokit <command>/)
    const { version } = JSON.parse(
      await readFile(join(ROOT, 'packages/cli/package.json'), 'utf8'),
    ) as { version: string }
    const printed = await run(ssokit(), ['--version'], project)
    ok(printed, 'ssokit --version')
    assert.equal(printed.stdout, `${version}\n`)

    const pidFile = join(project, 'demo.pid')
    const demo = await startServer(
      ssokit(),
      ['demo', '--idp-port', '0', '--app-port', '0', '--pid-file', pidFile],
      project,
      /Application +(\S+)\n[\s\S]*Identity provider +(\S+)\n[\s\S]*Press Ctrl-C/,
    )
    const [, app = '', issuer = ''] = demo.ready
    const home = await fetch(app, { headers: { accept: 'text/html' } })
    assert.equal(home.status, 200)
    assert.match(await home.text(), /Hello, World!/)
    assert.equal((await fetch(`${app}/api/whoami`)).status, 401)
    assert.equal((await fetch(`${issuer}/.well-known/openid-configuration`)).status, 200)
    // The documented way to stop a demo started in the background.
    process.kill(Number(await readFile(pidFile, 'utf8')), 'SIGTERM')
    const stopped = await demo.exited
    assert.equal(stopped.code, 0, demo.output())
    assert.match(stopped.stdout, /Received SIGTERM, stopping\./)
  })

  it('says how to install the optional kerberos module when a Kerberos login needs it', async () => {
    await assert.rejects(readFile(join(project, 'node_modules/kerberos/package.json')), {
      code: 'ENOENT',
    })
    const idp = await startServer(
      ssokit(),
      ['idp', '--port', '0'],
      project,
      /realm ready at (\S+)\n/,
    )
    const login = await run(
      'env',
      [
        `SSOKIT_HOME=${join(base, 'kerberos-home')}`,
        ssokit(),
        'token',
        '--kerberos',
        '--issuer',
        idp.ready[1] ?? '',
        '--client-id',
        'demo-cli',
      ],
      project,
    )
    idp.child.kill('SIGTERM')
    await idp.exited
    assert.equal(login.code, 1, login.stderr)
    assert.equal(login.stdout, '')
    assert.match(login.stderr, /optional "kerberos" module: run `npm install kerberos`/)

    await writeFile(
      join(project, 'kerberos-realm.json'),
      JSON.stringify({
        users: [{ username: 'alice', password: 'alice' }],
        kerberos: { keytab: 'http.keytab', realm: 'EXAMPLE.ORG' },
      }),
    )
    const refused = await run(
      ssokit(),
      ['idp', '--port', '0', '--config', 'kerberos-realm.json'],
      project,
    )
    assert.equal(refused.code, 1, refused.stderr)
    assert.match(refused.stderr, /"kerberos" module is not installed: run `npm install kerberos`/)
  })

  it('runs ssokit proxy with SAML sign-in, loading @ssokit/saml (its optional peer) from the tarball', async () => {
    const idp = await selfSignedCertificate(['idp.example.org'])
    const sp = await selfSignedCertificate(['app.example.org'])
    const body = (pem: string) => pem.replace(/-----[A-Z ]+-----|\s/g, '')
    await writeFile(
      join(project, 'idp.xml'),
      `<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="https://idp.example.org/idp"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${body(idp.cert)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor><md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.org/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>`,
    )
    await writeFile(join(project, 'sp-cert.pem'), sp.cert)
    await writeFile(join(project, 'sp-key.pem'), sp.key)
    const proxy = await startServer(
      ssokit(),
      [
        'proxy',
        '--upstream',
        'http://127.0.0.1:9',
        '--public-url',
        'http://localhost:4180',
        '--port',
        '0',
        '--saml-idp-metadata',
        'idp.xml',
        '--saml-entity-id',
        'https://app.example.org/sp',
        '--saml-cert-file',
        'sp-cert.pem',
        '--saml-key-file',
        'sp-key.pem',
      ],
      project,
      /listening on (\S+),[\s\S]*Endpoints/,
    )
    const url = proxy.ready[1] ?? ''
    const metadata = await fetch(`${url}/_ssokit/saml/metadata`)
    assert.equal(metadata.status, 200, proxy.output())
    const xml = await metadata.text()
    assert.match(xml, /entityID="https:\/\/app\.example\.org\/sp"/)
    assert.ok(xml.includes(body(sp.cert)), 'the SP certificate is published')
    const login = await fetch(`${url}/_ssokit/login?returnTo=/`, { redirect: 'manual' })
    assert.equal(login.status, 302, proxy.output())
    assert.match(
      login.headers.get('location') ?? '',
      /^https:\/\/idp\.example\.org\/sso\?SAMLRequest=/,
    )
    proxy.child.kill('SIGTERM')
    assert.equal((await proxy.exited).code, 0, proxy.output())
  })

  it('type-checks a TypeScript consumer with nodenext and with bundler resolution', async () => {
    const [nodenext, bundler] = await typecheck
    ok(nodenext!, 'tsc (moduleResolution nodenext)')
    ok(bundler!, 'tsc (moduleResolution bundler)')
  })
})
