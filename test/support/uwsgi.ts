/**
 * A real uWSGI server (Debian's `uwsgi` + `uwsgi-plugin-python3`) serving a Python WSGI file on
 * 127.0.0.1 and a free port, with uWSGI's defaults: in particular its 4 KiB request buffer
 * (no `--buffer-size`). It runs under the Redis helper's watchdog, so it never outlives the
 * test process.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { exited, freePort, WATCHDOG } from './redis.js'

/** The test application that shows the headers it received (JSON, or HTML for a browser). */
export const HEADERS_APP = fileURLToPath(new URL('wsgi/headers_app.py', import.meta.url))

const UWSGI = '/usr/bin/uwsgi'
const PLUGIN = '/usr/lib/uwsgi/plugins/python3_plugin.so'

export interface RunningUwsgi {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string
  readonly port: number
  /** Everything uWSGI printed so far (its log goes to stderr). */
  log(): string
  /** Stops the server and its worker, and waits until they have exited. */
  stop(): Promise<void>
}

function requireInstalled(): void {
  for (const [path, pkg] of [
    [UWSGI, 'uwsgi'],
    [PLUGIN, 'uwsgi-plugin-python3'],
  ] as const) {
    try {
      accessSync(path, constants.R_OK)
    } catch {
      throw new Error(
        `${path} was not found: install it with \`apt-get install ${pkg}\` (scripts/install-system-deps.sh)`,
      )
    }
  }
}

async function answers(origin: string): Promise<boolean> {
  try {
    const res = await fetch(`${origin}/`, { signal: AbortSignal.timeout(1000) })
    await res.arrayBuffer()
    return true
  } catch {
    return false
  }
}

function launch(app: string, port: number): ChildProcessWithoutNullStreams {
  const args = [
    '--plugin',
    'python3',
    '--http-socket',
    `127.0.0.1:${port}`,
    '--wsgi-file',
    app,
    '--need-app',
    '--master',
    '--processes',
    '1',
    '--die-on-term',
    '--disable-logging',
  ]
  return spawn('/bin/sh', ['-c', WATCHDOG, UWSGI, ...args], { stdio: 'pipe' })
}

/** Starts uWSGI serving `app` (a WSGI file) and waits until it answers HTTP. */
export async function startUwsgi(app: string = HEADERS_APP): Promise<RunningUwsgi> {
  requireInstalled()
  // A free port can be taken between the probe and uWSGI's bind: try another.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort()
    const origin = `http://127.0.0.1:${port}`
    const child = launch(app, port)
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    const stop = async (): Promise<void> => {
      child.stdin.end()
      await exited(child)
    }
    process.once('exit', () => child.stdin.destroy())
    for (let i = 0; i < 100 && child.exitCode === null; i++) {
      if (await answers(origin)) {
        return { origin, port, log: () => output, stop }
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    await stop()
    if (!output.includes('Address already in use')) {
      throw new Error(`uWSGI did not start:\n${output}`)
    }
  }
  throw new Error('uWSGI found no free port in 3 attempts')
}
