/** Child processes for the release check: commands run to completion, servers run until stopped. */
import { spawn, type ChildProcess } from 'node:child_process'
import { dirname } from 'node:path'
import { delimiter } from 'node:path'

export interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/**
 * The environment of a process that must behave as it would for a user outside the workspace:
 * nothing from the npm script running the tests (npm_config_*), no test-runner flags, and this
 * Node first on the PATH (the CLI's `#!/usr/bin/env node` finds it).
 */
export function outsideEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_/i.test(key) || key === 'NODE_OPTIONS' || key === 'INIT_CWD') continue
    env[key] = value
  }
  env.PATH = [dirname(process.execPath), process.env.PATH ?? ''].join(delimiter)
  return env
}

const started = new Set<ChildProcess>()

/** Kills every server still running (the tests stop theirs; this is for failures). */
export function killAll(): void {
  for (const child of started) child.kill('SIGKILL')
}

// A test file stopped from outside (a timeout) must not leave servers behind.
process.once('exit', killAll)
process.once('SIGTERM', () => {
  killAll()
  process.exit(143)
})

export function run(command: string, args: readonly string[], cwd: string): Promise<Finished> {
  const child = spawn(command, args, { cwd, env: outsideEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  started.add(child)
  const done = finished(child)
  const forget = () => started.delete(child)
  void done.then(forget, forget)
  return done
}

export function finished(child: ChildProcess): Promise<Finished> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => {
      resolve({ code, stdout, stderr })
    })
  })
}

export interface Server {
  readonly child: ChildProcess
  /** The first match of `ready` in the output, groups included. */
  readonly ready: RegExpExecArray
  /** Everything the process has written so far, for assertion messages. */
  output(): string
  /** Resolves when the process has exited. */
  readonly exited: Promise<Finished>
}

/** Starts a long-running process and waits until its stdout matches `ready`. */
export async function startServer(
  command: string,
  args: readonly string[],
  cwd: string,
  ready: RegExp,
): Promise<Server> {
  const child = spawn(command, args, { cwd, env: outsideEnv(), stdio: ['ignore', 'pipe', 'pipe'] })
  started.add(child)
  const exited = finished(child)
  const forget = () => started.delete(child)
  void exited.then(forget, forget)
  let stdout = ''
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
      const found = ready.exec(stdout)
      if (found) resolve(found)
    })
    void exited.then(({ code }) => {
      reject(
        new Error(
          `${command} ${args.join(' ')} exited (${code}) before it was ready:\n${stdout}${stderr}`,
        ),
      )
    })
  })
  return { child, ready: match, output: () => stdout + stderr, exited }
}
