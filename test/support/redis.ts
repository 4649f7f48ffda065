/**
 * A real redis-server for tests, on 127.0.0.1 and a free port, with nothing written to disk.
 *
 * The server runs under a tiny shell watchdog that reads the test process's pipe: when the test
 * process ends, however abruptly, the pipe closes and the watchdog stops the server, so no
 * redis-server outlives the tests.
 */
import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, connect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'

export interface RunningRedis {
  readonly port: number
  /** `redis://127.0.0.1:<port>` (`rediss://` for a TLS server) */
  readonly url: string
  /** For a TLS server: the PEM certificate it presents (self-signed, for 127.0.0.1). */
  readonly ca?: string
  /** Stops the server (its data is lost) and waits until it has exited; `restart` may follow. */
  stop(): Promise<void>
  /** Starts the server again on the same port, empty, and waits until it answers PING. */
  restart(): Promise<void>
}

// Reads stdin (fd 3, as background jobs otherwise get /dev/null) until EOF, then stops the server.
export const WATCHDOG = `
exec 3<&0
"$0" "$@" </dev/null &
pid=$!
{ cat <&3 >/dev/null; kill "$pid" 2>/dev/null; } &
wait "$pid"
status=$?
exit "$status"
`

/** The path of a Redis binary (`redis-server`, `redis-sentinel`, `redis-cli`), or a clear error. */
export function findRedisBinary(name = 'redis-server'): string {
  const dirs = ['/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(delimiter)]
  for (const dir of dirs) {
    if (dir === '') continue
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // keep looking
    }
  }
  const pkg = name === 'redis-server' ? 'redis-server' : name === 'redis-cli' ? 'redis-tools' : name
  throw new Error(
    `${name} was not found: install it with \`apt-get install ${pkg}\` (scripts/install-system-deps.sh)`,
  )
}

export async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve()
    }),
  )
  if (address === null || typeof address === 'string') throw new Error('no free port')
  return address.port
}

/**
 * Whether a Redis server answers PING on `port` (over TLS when asked). A server that requires a
 * password answers `-NOAUTH`, which proves it is up just as well.
 */
export function ping(port: number, tls = false): Promise<boolean> {
  return new Promise((resolve) => {
    const socket: Socket = tls
      ? tlsConnect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      : connect({ host: '127.0.0.1', port })
    let reply = ''
    const done = (ok: boolean): void => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(500, () => {
      done(false)
    })
    socket.on('error', () => {
      done(false)
    })
    socket.on(tls ? 'secureConnect' : 'connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk.toString()
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG') || reply.startsWith('-NOAUTH'))
    })
  })
}

const live = new Set<ChildProcessWithoutNullStreams>()
const dirs = new Set<string>()

/** A temporary directory removed when the test process exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  dirs.add(dir)
  return dir
}
// The watchdog would notice the pipe closing anyway; closing it here lets it stop the server in order.
process.once('exit', () => {
  for (const child of live) child.stdin.destroy()
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

export function exited(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) =>
    child.once('exit', () => {
      resolve()
    }),
  )
}

/** What a test asks of its server: more arguments (`--requirepass`, ACL users) or TLS only. */
export interface RedisOptions {
  /** Extra `redis-server` arguments, e.g. `['--requirepass', 'secret']`. */
  readonly args?: readonly string[]
  /** Serve TLS only (no plain port), with a self-signed certificate for 127.0.0.1. */
  readonly tls?: boolean
}

interface TlsFiles {
  readonly cert: string
  readonly key: string
}

/** A self-signed certificate for 127.0.0.1, made with openssl. */
function selfSigned(): TlsFiles {
  const dir = tempDir('ssokit-redis-tls-')
  const cert = join(dir, 'cert.pem')
  const key = join(dir, 'key.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  )
  return { cert, key }
}

async function launch(
  binary: string,
  port: number,
  dir: string,
  options: RedisOptions = {},
  tls?: TlsFiles,
): Promise<ChildProcessWithoutNullStreams> {
  mkdirSync(dir, { recursive: true })
  const listen =
    tls === undefined
      ? ['--port', String(port)]
      : [
          '--port',
          '0',
          '--tls-port',
          String(port),
          '--tls-cert-file',
          tls.cert,
          '--tls-key-file',
          tls.key,
          '--tls-ca-cert-file',
          tls.cert,
          '--tls-auth-clients',
          'no',
        ]
  const args = [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  return launchWatched(
    binary,
    [...args, '--daemonize', 'no', '--dir', dir, ...(options.args ?? [])],
    port,
    undefined,
    tls !== undefined,
  )
}

/**
 * Starts a Redis binary (server or sentinel) under the watchdog with the given arguments and
 * waits until it answers PING on `port`. Its stdin is the watchdog's pipe: `stdin.end()` stops it.
 */
export async function launchWatched(
  binary: string,
  args: readonly string[],
  port: number,
  readyLine = 'Ready to accept connections',
  tls = false,
): Promise<ChildProcessWithoutNullStreams> {
  const child = spawn('/bin/sh', ['-c', WATCHDOG, binary, ...args], { stdio: 'pipe' })
  live.add(child)
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.once('exit', () => live.delete(child))
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break
    // The log line proves the PONG comes from this server, not from another one that took the port.
    if (output.includes(readyLine) && (await ping(port, tls))) return child
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  child.stdin.end()
  await exited(child)
  throw new Error(`${binary} did not start on port ${port}:\n${output.slice(-2000)}`)
}

export async function startRedis(options: RedisOptions = {}): Promise<RunningRedis> {
  const binary = findRedisBinary()
  const dir = tempDir('ssokit-redis-')
  const tls = options.tls === true ? selfSigned() : undefined
  let child: ChildProcessWithoutNullStreams | undefined
  let port = 0
  let lastError: unknown
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await freePort()
    try {
      child = await launch(binary, port, dir, options, tls)
    } catch (error) {
      lastError = error
    }
  }
  if (!child) {
    rmSync(dir, { recursive: true, force: true })
    throw lastError
  }
  let current: ChildProcessWithoutNullStreams | undefined = child

  async function stop(): Promise<void> {
    const running = current
    current = undefined
    if (!running) return
    running.stdin.end()
    await exited(running)
    rmSync(dir, { recursive: true, force: true })
  }

  return {
    port,
    url: `${tls === undefined ? 'redis' : 'rediss'}://127.0.0.1:${port}`,
    ...(tls === undefined ? {} : { ca: readFileSync(tls.cert, 'utf8') }),
    stop,
    async restart() {
      await stop()
      current = await launch(binary, port, dir, options, tls)
    },
  }
}
