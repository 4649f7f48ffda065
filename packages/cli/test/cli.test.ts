import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
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

  it('prints its version, and the usage on stderr with status 2 when no command is given', async () => {
    const manifest = JSON.parse(
      await readFile(new URL('../package.json', import.meta.url), 'utf8'),
    ) as { version: string }
    const version = await run(['--version'])
    assert.equal(version.code, 0)
    assert.equal(version.stdout, `${manifest.version}\n`)
    const bare = await run([])
    assert.equal(bare.code, 2)
    assert.equal(bare.stdout, '')
    assert.match(bare.stderr, /Usage: ssokit <command>/)
  })

  it('words a bad value the same way in every command and exits 2', async () => {
    const cases: [string[], string][] = [
      [['idp', '--port', 'abc'], '--port must be a port number from 0 to 65535, not "abc"'],
      [
        ['demo', '--app-port', 'abc'],
        '--app-port must be a port number from 0 to 65535, not "abc"',
      ],
      [
        ['idp', '--realm', 'a b'],
        '--realm must be letters, digits, ".", "_" and "-", starting with a letter or digit, not "a b"',
      ],
      [
        ['idp', '--host', '127.0.0.999'],
        '--host must be an IP address or a host name, not "127.0.0.999"',
      ],
      [['demo', '--bogus'], 'unknown option --bogus'],
      [['idp', '--bogus'], 'unknown option --bogus'],
    ]
    const results = await Promise.all(cases.map(([args]) => run(args)))
    results.forEach((result, i) => {
      const [args, message] = cases[i] ?? [[], '']
      assert.equal(result.code, 2, args.join(' '))
      assert.equal(
        result.stderr,
        `ssokit: ${message}\nRun \`ssokit ${args[0] ?? ''} --help\` for its options.\n`,
      )
    })
  })

  it('says plainly that the port of ssokit idp is taken', async () => {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    try {
      const result = await run(['idp', '--port', String(port)])
      assert.equal(result.code, 1)
      assert.equal(
        result.stderr,
        `ssokit: port ${port} is already in use, so the identity provider cannot start; stop whatever uses it or choose another port with --port\n`,
      )
    } finally {
      server.close()
    }
  })

  it('refuses an empty config, keeps the YAML excerpt and says why a file cannot be read', async () => {
    const empty = join(dir, 'empty.yaml')
    await writeFile(empty, '# nothing yet\n')
    const none = join(dir, 'none.yaml')
    await writeFile(none, 'users: []\nclients: []\n')
    const broken = join(dir, 'broken.yaml')
    await writeFile(broken, 'users:\n  - username: [alice\n')
    const config = (file: string) => run(['idp', '--port', '0', '--config', file])
    const [emptyRun, noneRun, brokenRun, missingRun, folderRun] = await Promise.all([
      config(empty),
      config(none),
      config(broken),
      config(join(dir, 'missing.yaml')),
      config(dir),
    ])
    assert.equal(emptyRun.code, 1)
    assert.equal(
      emptyRun.stderr,
      `ssokit: ${empty}: is empty; a realm needs at least one user or client\n`,
    )
    assert.equal(noneRun.code, 1)
    assert.match(noneRun.stderr, /has no users and no clients/)
    assert.equal(brokenRun.code, 1)
    assert.ok(
      brokenRun.stderr.startsWith(`ssokit: ${broken}: is not valid YAML: `),
      brokenRun.stderr,
    )
    // The excerpt: the offending line, then a caret under the place.
    assert.match(brokenRun.stderr, /\n {2}- username: \[alice\n.*\^/s)
    assert.equal(missingRun.code, 1)
    assert.match(missingRun.stderr, /missing\.yaml: cannot be read: no such file\n$/)
    assert.equal(folderRun.code, 1)
    assert.match(folderRun.stderr, /cannot be read: it is a folder, not a file\n$/)
  })

  it('ends quietly when the reader of its output goes away', async () => {
    // pipefail: the status is the provider's own, not head's.
    const child = spawn(
      'bash',
      [
        '-c',
        `set -o pipefail; "$0" --conditions=source --import tsx "$1" idp --port 0 | head -1`,
        process.execPath,
        MAIN,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stdout = ''
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve))
    const issuer = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString()
        const match = /realm ready at (\S+)\n/.exec(stdout)
        if (match?.[1] !== undefined) resolve(match[1])
      })
      child.on('close', () => {
        reject(new Error(`exited early: ${stdout} ${stderr}`))
      })
    })
    // head has gone. If the rest of the banner fitted in the pipe before it went, the next line
    // the provider logs (this request) meets the closed pipe; otherwise it has already ended.
    await fetch(`${issuer}/.well-known/openid-configuration`).catch(() => undefined)
    assert.equal(await closed, 0)
    assert.match(
      stdout,
      /^ssokit idp: realm ready at http:\/\/127\.0\.0\.1:\d+\/auth\/realms\/dev\n$/,
    )
    assert.equal(stderr, '')
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

  it('creates the missing folder of --keys private (0700) and the key file 0600', async () => {
    const folder = join(dir, 'new-folder', 'nested')
    const keys = join(folder, 'keys.json')
    const child = start(['idp', '--port', '0', '--keys', keys])
    const done = new Promise<number | null>((resolve) => child.on('close', resolve))
    let stdout = ''
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (d: Buffer) => {
        stdout += d.toString()
        if (stdout.includes('Press Ctrl-C')) resolve()
      })
      child.on('close', () => {
        reject(new Error(`exited early: ${stdout}`))
      })
    })
    assert.equal((await stat(folder)).mode & 0o777, 0o700)
    assert.equal((await stat(keys)).mode & 0o777, 0o600)
    const { keys: saved } = JSON.parse(await readFile(keys, 'utf8')) as { keys: unknown[] }
    assert.equal(saved.length, 1)
    child.kill('SIGTERM')
    assert.equal(await done, 0)
  })

  it('serves a realm, logs requests and stops on SIGTERM', async () => {
    const keys = join(dir, 'private', 'keys.json')
    const pidFile = join(dir, 'idp.pid')
    const child = start([
      'idp',
      '--port',
      '0',
      '--keys',
      keys,
      '--rotate-keys',
      '--pid-file',
      pidFile,
    ])
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
    assert.equal((await stat(join(dir, 'private'))).mode & 0o777, 0o700)
    assert.equal((await stat(keys)).mode & 0o777, 0o600)
    assert.equal(await readFile(pidFile, 'utf8'), `${child.pid ?? ''}\n`)
    assert.match(stdout, /alice \/ alice/)
    assert.match(stdout, /demo-app {2}\(secret demo-app-secret/)
    const res = await fetch(`${issuer}/.well-known/openid-configuration`)
    assert.equal(res.status, 200)
    const closed = new Promise<number | null>((resolve) => child.on('close', resolve))
    await new Promise((resolve) => setImmediate(resolve))
    child.kill('SIGTERM')
    assert.equal(await closed, 0)
    await assert.rejects(stat(pidFile), { code: 'ENOENT' })
    assert.match(stdout, /GET \/auth\/realms\/dev\/\.well-known\/openid-configuration 200 \d+ms/)
  })
})
