/**
 * Per-path rules on groups and claims, in both modes, against the real development provider:
 * alice holds the roles admin and user, the realm role staff and cern_person_id 100001; bob holds
 * no role at all. Both have `email_verified: true` (a boolean).
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request, type IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { CookieJar } from '@ssokit/idp'
import { loadProxyConfig, ProxyConfigError } from '@ssokit/proxy'
import { rawRequest, signIn, startRig, type Rig } from './support.js'

const RULES = [
  'trustedProxies: [127.0.0.1]',
  'rules:',
  '  - path: /open',
  '    public: true',
  '  - path: /team',
  '    groups: [no-such-group, admin]',
  '  - path: /person',
  '    claims:',
  '      cern_person_id: 100001',
  '  - path: /verified',
  '    claims:',
  '      email_verified: true',
  '  - path: /verified-text',
  '    claims:',
  '      email_verified: "true"',
  '  - path: /realm',
  '    claims:',
  '      realm_access.roles: [auditor, staff]',
  '  - path: /admins',
  '    claims:',
  '      cern_roles: admin',
  '  - path: /both',
  '    groups: [admin]',
  '    claims:',
  '      email_verified: true',
  '      cern_person_id: [1, 2]',
].join('\n')

const JSON_ACCEPT = { accept: 'application/json' }

/** A forward-auth check from loopback, as nginx's `auth_request` sends it. */
async function check(port: number, uri: string, cookie: string): Promise<number> {
  const req = request({
    host: '127.0.0.1',
    port,
    path: '/_ssokit/auth',
    headers: {
      'x-original-uri': uri,
      'x-original-method': 'GET',
      'x-forwarded-host': 'localhost:8080',
      'x-forwarded-proto': 'http',
      ...(cookie === '' ? {} : { cookie }),
    },
    agent: false,
  })
  req.end()
  const [res] = (await once(req, 'response')) as [IncomingMessage]
  res.resume()
  await once(res, 'end')
  return res.statusCode ?? 0
}

describe('ssokit proxy: rules on groups and claims', () => {
  let dir: string
  let rig: Rig
  let alice: CookieJar
  let bob: CookieJar

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-rules-'))
    const file = join(dir, 'proxy.yaml')
    await writeFile(file, RULES)
    rig = await startRig({ file })
    alice = await signIn(rig, 'alice')
    bob = await signIn(rig, 'bob')
  })
  after(async () => {
    await rig.close()
    await rm(dir, { recursive: true, force: true })
  })

  const status = async (jar: CookieJar, path: string) => {
    const response = await jar.fetch(`${rig.base}${path}`, { headers: JSON_ACCEPT })
    await response.arrayBuffer()
    return response.status
  }

  it('lets in a user holding any one of the groups, and refuses one holding none with 403', async () => {
    assert.equal(await status(alice, '/team/page'), 200)
    assert.equal(rig.echo.received.at(-1)?.url, '/team/page')
    const seen = rig.echo.received.length
    assert.equal(await status(bob, '/team/page'), 403)
    assert.equal(rig.echo.received.length, seen, 'a refused request never reaches the application')
  })

  it('compares claim values exactly, by type: true is not "true"', async () => {
    assert.equal(await status(alice, '/person'), 200)
    assert.equal(await status(bob, '/person'), 403)
    assert.equal(await status(alice, '/verified'), 200)
    assert.equal(await status(bob, '/verified'), 200)
    assert.equal(await status(alice, '/verified-text'), 403)
    assert.equal(await status(bob, '/verified-text'), 403)
  })

  it('matches a list-valued claim, nested by a dotted path, when any entry is accepted', async () => {
    assert.equal(await status(alice, '/realm/x'), 200)
    assert.equal(await status(bob, '/realm/x'), 403)
    assert.equal(await status(alice, '/admins'), 200)
    assert.equal(await status(bob, '/admins'), 403)
  })

  it('needs every condition of a rule: groups and each claim', async () => {
    // alice has the group and email_verified, but cern_person_id 100001 is not 1 or 2.
    assert.equal(await status(alice, '/both'), 403)
  })

  it('names what the rule requires in the 403, never what the user holds', async () => {
    const body = async (jar: CookieJar, path: string) => {
      const response = await jar.fetch(`${rig.base}${path}`, { headers: JSON_ACCEPT })
      assert.equal(response.status, 403)
      assert.match(response.headers.get('www-authenticate') ?? '', /error="insufficient_scope"/)
      return (await response.json()) as { error: string; required: unknown; message: string }
    }
    const team = await body(bob, '/team/page')
    assert.equal(team.error, 'role_required')
    assert.deepEqual(team.required, { any_group: ['no-such-group', 'admin'] })
    assert.match(team.message, /one of the groups "no-such-group", "admin"/)
    assert.deepEqual((await body(bob, '/person')).required, {
      claim: 'cern_person_id',
      any_value: [100001],
    })
    // alice's own claims (her person id, her roles) appear nowhere in her refusal.
    const both = await alice.fetch(`${rig.base}/both`, { headers: JSON_ACCEPT })
    const text = await both.text()
    assert.equal(both.status, 403)
    assert.deepEqual((JSON.parse(text) as { required: unknown }).required, {
      claim: 'cern_person_id',
      any_value: [1, 2],
    })
    assert.doesNotMatch(text, /100001|alice|staff|"user"/)
    // A browser's navigation (Node's fetch announces itself as sec-fetch-mode: cors).
    const page = await rawRequest(rig.proxy.port, [
      'GET /realm/x HTTP/1.1',
      `Host: ${new URL(rig.base).host}`,
      'Accept: text/html,application/xhtml+xml',
      `Cookie: ${bob.header(`${rig.base}/`)}`,
    ])
    assert.equal(page.status, 403)
    assert.match(page.head, /^content-type: text\/html/im)
    assert.match(
      page.body,
      /requires the claim &#34;realm_access\.roles&#34; to be one of &#34;auditor&#34;, &#34;staff&#34;\./,
    )
  })

  it('still answers 401 to an unauthenticated request, and serves public paths', async () => {
    const anonymous = await fetch(`${rig.base}/team`, { headers: JSON_ACCEPT })
    await anonymous.arrayBuffer()
    assert.equal(anonymous.status, 401)
    const open = await fetch(`${rig.base}/open`)
    await open.arrayBuffer()
    assert.equal(open.status, 200)
  })

  it('applies the same rules in forward-auth mode: 403 for a failing claim, 401 without sign-in', async () => {
    const port = rig.proxy.port
    const aliceCookie = alice.header(`${rig.base}/`)
    const bobCookie = bob.header(`${rig.base}/`)
    assert.equal(await check(port, '/realm/page?x=1', aliceCookie), 200)
    assert.equal(await check(port, '/realm/page?x=1', bobCookie), 403)
    assert.equal(await check(port, '/verified-text', aliceCookie), 403)
    assert.equal(await check(port, '/team', bobCookie), 403)
    assert.equal(await check(port, '/team', aliceCookie), 200)
    assert.equal(await check(port, '/realm/page', ''), 401)
  })
})

describe('proxy configuration: rules', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-rules-config-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  const FLAGS = {
    upstream: 'http://127.0.0.1:8000',
    issuer: 'https://auth.example.org/realms/main',
    'client-id': 'my-app',
    'public-url': 'https://my-app.example',
  }
  const ENV = { OIDC_CLIENT_SECRET: 'a-client-secret' }

  const load = async (yaml: string) => {
    const file = join(dir, 'proxy.yaml')
    await writeFile(file, yaml)
    return loadProxyConfig({ file, flags: FLAGS, env: ENV })
  }

  it('reads groups and claims from YAML, typed and frozen', async () => {
    const config = await load(RULES)
    const team = config.rules.find((r) => r.path === '/team')
    assert.deepEqual(team, { path: '/team', groups: ['no-such-group', 'admin'] })
    const both = config.rules.find((r) => r.path === '/both')
    assert.deepEqual(both?.claims, { email_verified: true, cern_person_id: [1, 2] })
    const text = config.rules.find((r) => r.path === '/verified-text')
    assert.deepEqual(text?.claims, { email_verified: 'true' })
    assert.ok(Object.isFrozen(both) && Object.isFrozen(both.claims))
  })

  it('refuses a bad rule with one line naming the key', async () => {
    const cases: [string, RegExp][] = [
      ['  - path: /x\n    groups: []', /rules\[0\]\.groups must list at least one group/],
      ['  - path: /x\n    groups: admin', /rules\[0\]\.groups must be a list of group names/],
      ['  - path: /x\n    claims: [a]', /rules\[0\]\.claims must map claim names/],
      ['  - path: /x\n    claims:\n      dept: null', /rules\[0\]\.claims\.dept must be a string/],
      [
        '  - path: /x\n    claims:\n      dept: {a: 1}',
        /rules\[0\]\.claims\.dept must be a string/,
      ],
      ['  - path: /x\n    claims:\n      dept: []', /rules\[0\]\.claims\.dept must list at least/],
      [
        '  - path: /x\n    claims:\n      "a..b": 1',
        /rules\[0\]\.claims\.a\.\.b must be a claim name or a dotted path/,
      ],
      [
        '  - path: /x\n    public: true\n    claims:\n      dept: IT',
        /rules\[0\] cannot be public and require roles, groups or claims/,
      ],
      ['  - path: /x\n    grups: [admin]', /unknown key "grups"/],
    ]
    for (const [rule, message] of cases) {
      let error: unknown
      try {
        await load(`rules:\n${rule}\n`)
      } catch (caught) {
        error = caught
      }
      assert.ok(error instanceof ProxyConfigError, `${rule}: ${String(error)}`)
      assert.doesNotMatch(error.message, /\n/)
      assert.match(error.message, message)
    }
  })
})
