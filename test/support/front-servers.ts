/**
 * Real nginx and Caddy (Debian's) in front of an application, for the forward-auth tests: each
 * runs in the foreground from a configuration in a temporary directory, on a free 127.0.0.1
 * port, under the shell watchdog of `redis.ts`, so that it stops when the test process ends,
 * however abruptly. Their configurations are the blocks of docs/proxy.md, read from there.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { exited, freePort, tempDir, WATCHDOG } from './redis.js'

const DOCS = new URL('../../docs/proxy.md', import.meta.url)

/** The ports of the documented snippets, replaced by the test's own. */
export const DOC_PORTS = { front: '8080', proxy: '4180', app: '8000' } as const

export type FrontServerKind = 'nginx' | 'caddy'

/** The block of docs/proxy.md marked `<!-- forward-auth-e2e: <kind> ... -->`, exactly. */
export async function documentedSnippet(kind: FrontServerKind): Promise<string> {
  const docs = await readFile(DOCS, 'utf8')
  const match = new RegExp(
    `<!-- forward-auth-e2e: ${kind} [^>]*-->\\s*\`\`\`${kind}\\n([\\s\\S]*?)\`\`\``,
  ).exec(docs)
  if (match?.[1] === undefined) throw new Error(`docs/proxy.md has no ${kind} forward-auth block`)
  return match[1]
}

/** `snippet` with the documented ports replaced; each must occur, or the docs drifted. */
export function withPorts(snippet: string, ports: Record<keyof typeof DOC_PORTS, number>): string {
  let out = snippet
  for (const key of Object.keys(DOC_PORTS) as (keyof typeof DOC_PORTS)[]) {
    const pattern = new RegExp(`(127\\.0\\.0\\.1|localhost):${DOC_PORTS[key]}\\b`, 'g')
    if (!pattern.test(out)) throw new Error(`the snippet no longer uses port ${DOC_PORTS[key]}`)
    out = out.replace(pattern, `$1:${ports[key]}`)
  }
  return out
}

const BINARIES: Readonly<Record<FrontServerKind, readonly [path: string, pkg: string]>> = {
  nginx: ['/usr/sbin/nginx', 'nginx'],
  caddy: ['/usr/bin/caddy', 'caddy'],
}

export interface FrontServer {
  readonly kind: FrontServerKind
  /** `http://localhost:<port>`: the public URL. */
  readonly origin: string
  readonly port: number
  /** What it wrote to stdout, stderr and its error log, for failure messages. */
  output(): Promise<string>
  stop(): Promise<void>
}

export interface FrontServerSetup {
  readonly kind: FrontServerKind
  /** Its port, chosen beforehand: the proxy's public URL needs it. */
  readonly port: number
  /** The whole configuration, with the ports filled in. */
  readonly config: string
  /** Resolves true once the server answers as expected on its port. */
  ready(): Promise<boolean>
}

/** A port for a front server, free a moment ago. */
export const frontPort = freePort

function launchArgs(kind: FrontServerKind, dir: string): string[] {
  return kind === 'nginx'
    ? ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')]
    : ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile']
}

/** The top of nginx.conf around the documented `server` block: foreground, one process. */
export function nginxConfig(dir: string, server: string): string {
  return [
    'daemon off;',
    // One process, so the PID we started is the only one to stop.
    'master_process off;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${join(dir, 'error.log')} info;`,
    'events { worker_connections 128; }',
    'http {',
    `    access_log ${join(dir, 'access.log')};`,
    server,
    '}',
    '',
  ].join('\n')
}

/** The documented Caddyfile, with no admin endpoint (its port would clash) and a short grace. */
export function caddyConfig(site: string): string {
  return ['{', '\tadmin off', '\tgrace_period 1s', '}', '', site].join('\n')
}

export async function startFrontServer(setup: FrontServerSetup): Promise<FrontServer> {
  const [binary, pkg] = BINARIES[setup.kind]
  try {
    accessSync(binary, constants.X_OK)
  } catch {
    throw new Error(
      `${binary} was not found: install it with \`apt-get install ${pkg}\` (scripts/install-system-deps.sh)`,
    )
  }
  const dir = tempDir(`ssokit-${setup.kind}-`)
  await mkdir(join(dir, 'home'), { recursive: true })
  await writeFile(join(dir, setup.kind === 'nginx' ? 'nginx.conf' : 'Caddyfile'), setup.config)
  const child: ChildProcessWithoutNullStreams = spawn(
    '/bin/sh',
    ['-c', WATCHDOG, binary, ...launchArgs(setup.kind, dir)],
    {
      stdio: 'pipe',
      cwd: dir,
      // Caddy keeps its state under HOME / XDG directories: the temporary directory, not ours.
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: join(dir, 'home'),
        XDG_CONFIG_HOME: join(dir, 'home'),
        XDG_DATA_HOME: join(dir, 'home'),
      },
    },
  )
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const logs = async () => {
    const log = await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')
    return `${output}${log}`.slice(-4000)
  }
  const stop = async () => {
    child.stdin.end()
    await exited(child)
  }
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break
    if (await setup.ready()) {
      return {
        kind: setup.kind,
        origin: `http://localhost:${setup.port}`,
        port: setup.port,
        output: logs,
        stop,
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await stop()
  throw new Error(`${setup.kind} did not start on port ${setup.port}:\n${await logs()}`)
}
