/**
 * A real MIT Kerberos KDC for tests: its own realm, on 127.0.0.1 and a free port, with every file
 * (config, database, keytab, ticket caches) in a temporary directory.
 *
 * The KDC runs in the foreground (`krb5kdc -n`) under the same watchdog as the Redis servers, so
 * it stops when the test process ends, however abruptly; `stop()` ends it earlier. Only this
 * process's child is ever signalled.
 */
import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { accessSync, constants, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { createSocket } from 'node:dgram'
import { join } from 'node:path'
import { exited, freePort, tempDir, WATCHDOG } from './redis.js'

export interface KdcUser {
  /** The principal's name without the realm (`alice`). */
  readonly name: string
  readonly password: string
  /** The longest ticket the KDC issues to this principal (`kadmin` syntax: `5s`, `10h`). */
  readonly maxLife?: string
}

export interface KdcOptions {
  /** Default `SSOKIT.TEST`. */
  readonly realm?: string
  /** Default: `alice` and `bob`, whose passwords are `alice-pw` and `bob-pw`. */
  readonly users?: readonly KdcUser[]
  /** Host names with an `HTTP/<host>` service principal in the keytab. Default `localhost`, `127.0.0.1`. */
  readonly serviceHosts?: readonly string[]
}

export interface KinitOptions {
  /** Ticket lifetime (`kinit -l`), e.g. `5s`; the KDC may issue less. */
  readonly lifetime?: string
  /** The ticket cache; default a new file in the KDC's directory. */
  readonly ccache?: string
}

export interface RunningKdc {
  readonly realm: string
  readonly port: number
  /** The temporary directory holding every file. */
  readonly dir: string
  /** `krb5.conf` for clients and servers (`KRB5_CONFIG`). */
  readonly krb5Config: string
  /** The keytab with the `HTTP/<host>` service keys, for the idp (`FILE:` path). */
  readonly keytab: string
  /** `KRB5_CONFIG` and `KRB5_KDC_PROFILE` for a child process or for this one. */
  readonly env: Readonly<Record<string, string>>
  /** `name@REALM` */
  principal(name: string): string
  /** Adds a user principal (after start-up too). */
  addUser(user: KdcUser): Promise<void>
  /** Writes a keytab holding `name`'s keys (its password stops working); returns its path. */
  userKeytab(name: string): Promise<string>
  /** Gets a ticket-granting ticket with the password; returns the cache name (`FILE:...`). */
  kinit(name: string, password: string, options?: KinitOptions): Promise<string>
  /** Stops the KDC and waits until it has exited. */
  stop(): Promise<void>
}

const DEFAULT_USERS: readonly KdcUser[] = [
  { name: 'alice', password: 'alice-pw' },
  { name: 'bob', password: 'bob-pw' },
]

function findBinary(name: string): string {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin']) {
    const candidate = join(dir, name)
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {
      // keep looking
    }
  }
  throw new Error(
    `${name} was not found: install krb5-kdc, krb5-admin-server and krb5-user (scripts/install-system-deps.sh)`,
  )
}

function run(
  binary: string,
  args: readonly string[],
  env: Readonly<Record<string, string>>,
  input?: string,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      binary,
      args,
      // Generous: kadmin.local and kinit are slow on a loaded machine.
      { env: { ...process.env, ...env }, timeout: 120_000 },
      (error, stdout, stderr) => {
        if (error)
          reject(new Error(`${binary} ${args.join(' ')} failed: ${stderr || error.message}`))
        else resolve(stdout)
      },
    )
    // A command that reads no input (klist) may exit first: its closed stdin is no failure.
    child.stdin?.on('error', () => undefined)
    child.stdin?.end(input ?? '')
  })
}

/** A port free for TCP and UDP on 127.0.0.1: the KDC listens on both. */
async function freeKdcPort(): Promise<number> {
  for (let attempt = 0; attempt < 10; attempt++) {
    const port = await freePort()
    const udp = createSocket('udp4')
    const free = await new Promise<boolean>((resolve) => {
      udp.once('error', () => {
        resolve(false)
      })
      udp.bind(port, '127.0.0.1', () => {
        resolve(true)
      })
    })
    await new Promise<void>((resolve) => {
      try {
        udp.close(() => {
          resolve()
        })
      } catch {
        resolve()
      }
    })
    if (free) return port
  }
  throw new Error('no port free for both TCP and UDP')
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port })
    socket.setTimeout(2000, () => {
      socket.destroy()
      resolve(false)
    })
    socket.once('error', () => {
      resolve(false)
    })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
  })
}

function readLog(file: string): string {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

/**
 * Sockets bound to 127.0.0.1:`port` in `/proc/net/tcp` (listening) and `/proc/net/udp`. krb5kdc
 * binds with SO_REUSEPORT, so a second process that does the same on the port is no bind error:
 * the kernel would share the requests between the two. Counting the sockets tells.
 */
function boundSockets(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
  let count = 0
  for (const [table, state] of [
    ['/proc/net/tcp', '0A'],
    ['/proc/net/udp', '07'],
  ] as const) {
    for (const line of readLog(table).split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/)
      if (fields[1] === local && fields[3] === state) count += 1
    }
  }
  return count
}

type KdcChild = ChildProcessWithoutNullStreams & { output(): string }

/** `krb5kdc` in the foreground under the watchdog, its output kept for error messages. */
function launch(krb5kdc: string, realm: string, env: Readonly<Record<string, string>>): KdcChild {
  const child = spawn('/bin/sh', ['-c', WATCHDOG, krb5kdc, '-n', '-r', realm], {
    stdio: 'pipe',
    env: { ...process.env, ...env },
  })
  // Closing stdin is how the KDC is stopped; when it has already exited (a taken port), the
  // write fails with EPIPE, which is no failure of the test.
  child.stdin.on('error', () => undefined)
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  return Object.assign(child, { output: () => output })
}

/**
 * Ready when the KDC itself logged that it serves and the port answers; `false` as soon as it
 * exits. The log line matters: a port that answers could be another process's.
 */
async function ready(child: KdcChild, port: number, logFile: string): Promise<boolean> {
  const running = () => child.exitCode === null && child.signalCode === null
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (!running()) return false
    if (readLog(logFile).includes('commencing operation')) {
      // One TCP and one UDP socket: the KDC's own, and nobody else's.
      return (await accepts(port)) && running() && boundSockets(port) === 2
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  return false
}

/**
 * Creates a realm (`kdb5_util create -s`), its principals (`kadmin.local`) and the service keytab,
 * then starts `krb5kdc` on a port free for TCP and UDP and waits until it logs that it serves;
 * a port taken meanwhile by another process is replaced by another.
 */
export async function startKdc(options: KdcOptions = {}): Promise<RunningKdc> {
  const realm = options.realm ?? 'SSOKIT.TEST'
  const users = options.users ?? DEFAULT_USERS
  const hosts = options.serviceHosts ?? ['localhost', '127.0.0.1']
  const krb5kdc = findBinary('krb5kdc')
  const kdb5Util = findBinary('kdb5_util')
  const kadmin = findBinary('kadmin.local')
  const kinit = findBinary('kinit')
  const dir = tempDir('ssokit-kdc-')
  const krb5Config = join(dir, 'krb5.conf')
  const kdcConfig = join(dir, 'kdc.conf')
  const keytab = join(dir, 'http.keytab')
  const logFile = join(dir, 'kdc.log')
  /** Both files name the port: written again for each port tried. */
  const configure = (port: number): void => {
    writeFileSync(
      krb5Config,
      `[libdefaults]
  default_realm = ${realm}
  dns_lookup_realm = false
  dns_lookup_kdc = false
  rdns = false
  dns_canonicalize_hostname = false
  ignore_acceptor_hostname = true
  udp_preference_limit = 1
  default_ccache_name = FILE:${join(dir, 'default.ccache')}
[realms]
  ${realm} = {
    kdc = 127.0.0.1:${port}
  }
[domain_realm]
${hosts.map((host) => `  ${host} = ${realm}`).join('\n')}
`,
    )
    writeFileSync(
      kdcConfig,
      `[kdcdefaults]
  kdc_listen = 127.0.0.1:${port}
  kdc_tcp_listen = 127.0.0.1:${port}
[realms]
  ${realm} = {
    database_name = ${join(dir, 'principal')}
    key_stash_file = ${join(dir, 'stash')}
    acl_file = ${join(dir, 'kadm5.acl')}
    max_life = 10h
    max_renewable_life = 7d
    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
  }
[logging]
  kdc = FILE:${logFile}
`,
    )
  }
  configure(0)
  writeFileSync(join(dir, 'kadm5.acl'), '')
  const env = { KRB5_CONFIG: krb5Config, KRB5_KDC_PROFILE: kdcConfig }
  const admin = (query: string) => run(kadmin, ['-r', realm, '-q', query], env)

  await run(kdb5Util, ['create', '-s', '-r', realm, '-P', 'ssokit-master-pw'], env)
  const addUser = async (user: KdcUser): Promise<void> => {
    const life = user.maxLife === undefined ? '' : `-maxlife ${user.maxLife} `
    await admin(`addprinc ${life}-pw ${user.password} ${user.name}@${realm}`)
  }
  for (const user of users) await addUser(user)
  for (const host of hosts) {
    await admin(`addprinc -randkey HTTP/${host}@${realm}`)
    await admin(`ktadd -k ${keytab} HTTP/${host}@${realm}`)
  }

  // The port is chosen only now, after the slow database set-up, and another is tried when
  // something else took it first (krb5kdc then exits: it cannot bind).
  let started: { child: ChildProcessWithoutNullStreams; port: number } | undefined
  let failures = ''
  for (let attempt = 0; attempt < 5 && started === undefined; attempt++) {
    const port = await freeKdcPort()
    configure(port)
    writeFileSync(logFile, '')
    const child = launch(krb5kdc, realm, env)
    if (await ready(child, port, logFile)) started = { child, port }
    else {
      failures += `port ${port}: ${child.output().slice(-1000)}${readLog(logFile).slice(-1000)}\n`
      child.stdin.end()
      await exited(child)
    }
  }
  if (started === undefined) throw new Error(`krb5kdc did not start:\n${failures}`)
  const { child, port } = started

  let caches = 0
  return {
    realm,
    port,
    dir,
    krb5Config,
    keytab: `FILE:${keytab}`,
    env,
    principal: (name) => `${name}@${realm}`,
    addUser,
    async userKeytab(name) {
      const file = join(dir, `${name}.keytab`)
      await admin(`ktadd -k ${file} ${name}@${realm}`)
      return `FILE:${file}`
    },
    async kinit(name, password, kinitOptions = {}) {
      const ccache = kinitOptions.ccache ?? `FILE:${join(dir, `${name}-${++caches}.ccache`)}`
      const life = kinitOptions.lifetime === undefined ? [] : ['-l', kinitOptions.lifetime]
      await run(kinit, [...life, '-c', ccache, `${name}@${realm}`], env, `${password}\n`)
      return ccache
    },
    async stop() {
      child.stdin.end()
      await exited(child)
    },
  }
}
