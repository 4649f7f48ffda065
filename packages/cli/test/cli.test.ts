import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { after, before, describe, it } from 'node:test'

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url))

function start(args: string[]): ChildProcess {
  return spawn(process.execPath, ['--conditions=source', '--import', 'tsx', MAIN, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

async function run(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = start(args)
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  return { code, stdout, stderr }
}

describe('ssokit command line', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-cli-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('prints help and lists commands', async () => {
    const top = await run(['--help'])
    assert.equal(top.code, 0)
    assert.match(top.stdout, /Usage: ssokit <command>/)
    assert.match(top.stdout, /\bidp\b/)
    const idp = await run(['idp', '--help'])
    assert.equal(idp.code, 0)
    assert.match(idp.stdout, /--access-token-ttl/)
  })

  it('exits 2 on an unknown command or option', async () => {
    const command = await run(['nope'])
    assert.equal(command.code, 2)
    assert.match(command.stderr, /unknown command "nope"/)
    const option = await run(['idp', '--bogus'])
    assert.equal(option.code, 2)
    assert.match(option.stderr, /--bogus/)
    const style = await run(['idp', '--token-style', 'odd'])
    assert.equal(style.code, 2)
  })

  it('exits 1 naming the file and key of a bad config', async () => {
    const file = join(dir, 'bad.yaml')
    await writeFile(file, 'clients:\n  - client_id: x\n    secret: 5\n')
    const result = await run(['idp', '--port', '0', '--config', file])
    assert.equal(result.code, 1)
    assert.ok(result.stderr.includes(`${file}: clients[0].secret:`), result.stderr)
  })

  it('serves a realm, logs requests and stops on SIGTERM', async () => {
    const child = start(['idp', '--port', '0', '--keys', join(dir, 'keys.json'), '--rotate-keys'])
    let stdout = ''
    const issuer = await new Promise<string>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => {
        stdout += d.toString()
        const match = /realm ready at (\S+)/.exec(stdout)
        if (match?.[1] !== undefined && stdout.includes('Press Ctrl-C')) resolve(match[1])
      })
      child.on('close', () => {
        reject(new Error(`exited early: ${stdout}`))
      })
    })
    assert.match(stdout, /Rotated .*keys\.json/)
    assert.match(stdout, /alice \/ alice/)
    assert.match(stdout, /demo-app {2}\(secret demo-app-secret/)
    const res = await fetch(`${issuer}/.well-known/openid-configuration`)
    assert.equal(res.status, 200)
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve))
    await new Promise((resolve) => setImmediate(resolve))
    child.kill('SIGTERM')
    assert.equal(await closed, 0)
    assert.match(stdout, /GET \/auth\/realms\/dev\/\.well-known\/openid-configuration 200 \d+ms/)
  })
})
