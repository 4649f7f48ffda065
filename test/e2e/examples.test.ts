/**
 * The examples in examples/ run as a user would start them, configured through the environment
 * (loadConfig), against the development provider: a token for `demo-api` is accepted, none is
 * refused, and a misspelt variable is named on stderr.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'

import { startIdp, type RunningIdp } from '@ssokit/idp'

const root = fileURLToPath(new URL('../..', import.meta.url))
const EXAMPLES = ['express', 'fastify', 'hono', 'node'] as const

interface Example {
  readonly url: string
  readonly child: ChildProcess
  stderr(): string
}

const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
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
