/**
 * How fast `ssokit token` answers from a valid cached token, the case a shell script meets on
 * every call: the built `ssokit` (packages/cli/bin/ssokit.js, as installed), a development
 * provider started here on 127.0.0.1, and two real logins cached first by `ssokit` itself: a
 * client-credentials token (`demo-app`) and a user's device login approved in Chromium
 * (`demo-cli`). hyperfine runs each command in turns with `node -e 0` (Node's own start, the
 * floor) in the same run; the provider must see no request while they run, so every answer
 * came from the cache.
 *
 *   npm run bench -- cli
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { startIdp } from '@ssokit/idp'

import { approveDeviceInChromium, launchChromium } from '../packages/client/test/chromium.js'
import { quantile } from './session-invalidation.js'
import { hasCommand } from './wrk.js'

const TARGET_MS = 200
const RUNS = 60
const WARM_UP = 5
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const BIN = join(ROOT, 'packages/cli/bin/ssokit.js')

interface Finished {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** Runs the built `ssokit`; `onStderr` sees the error output as it arrives. */
function ssokit(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  onStderr?: (text: string) => void,
): Promise<Finished> {
  const child = spawn(process.execPath, [BIN, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString()
    onStderr?.(stderr)
  })
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (code) => {
      resolve({ code, stdout, stderr })
    })
  })
}

function must(result: Finished, what: string): string {
  if (result.code !== 0)
    throw new Error(`${what} exited with ${String(result.code)}: ${result.stderr}`)
  return result.stdout.trim()
}

interface Figures {
  readonly command: string
  readonly median: number
  readonly p95: number
  readonly mean: number
  /** Mean CPU time (user + system) of a run: steadier than wall time on a shared machine. */
  readonly cpu: number
  readonly runs: number
}

/** hyperfine without a shell in between, the commands measured in the same run. */
function hyperfine(commands: readonly string[], env: NodeJS.ProcessEnv, out: string): Figures[] {
  const result = spawnSync(
    'hyperfine',
    ['-N', '--style', 'basic', '--warmup', String(WARM_UP), '--runs', String(RUNS)]
      .concat(['--export-json', out])
      .concat(commands),
    { env, stdio: ['ignore', 'inherit', 'inherit'] },
  )
  if (result.status !== 0) throw new Error(`hyperfine exited with ${String(result.status)}`)
  const report = JSON.parse(readFileSync(out, 'utf8')) as {
    results: {
      command: string
      times: number[]
      exit_codes: number[]
      user: number
      system: number
    }[]
  }
  return report.results.map((r) => {
    if (r.exit_codes.some((code) => code !== 0)) throw new Error(`${r.command} failed`)
    const times = r.times.map((t) => t * 1000).sort((a, b) => a - b)
    return {
      command: r.command,
      median: quantile(times, 0.5),
      p95: quantile(times, 0.95),
      mean: times.reduce((a, b) => a + b, 0) / times.length,
      cpu: (r.user + r.system) * 1000,
      runs: times.length,
    }
  })
}

async function main(): Promise<void> {
  if (!hasCommand('hyperfine')) {
    throw new Error('bench/cli.ts needs hyperfine: bash scripts/install-system-deps.sh')
  }
  // The installed shape: compiled JavaScript, not the TypeScript the tests run.
  const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' })
  if (build.status !== 0) throw new Error('npm run build failed')

  const dir = mkdtempSync(join(tmpdir(), 'ssokit-bench-cli-'))
  const idp = await startIdp({ port: 0, accessTokenTtl: 3600, log: false })
  const browser = await launchChromium()
  try {
    const secretFile = join(dir, 'demo-app.secret')
    writeFileSync(secretFile, 'demo-app-secret\n', { mode: 0o600 })
    const env: NodeJS.ProcessEnv = { ...process.env, SSOKIT_HOME: join(dir, 'home') }
    delete env.SSOKIT_CLIENT_SECRET
    delete env.OIDC_CLIENT_SECRET

    const service = ['token', '--issuer', idp.issuer, '--client-id', 'demo-app']
    const serviceArgs = [...service, '--client-secret-file', secretFile]
    const serviceToken = must(await ssokit(serviceArgs, env), 'ssokit token (demo-app)')

    let approving: Promise<string> | undefined
    const login = await ssokit(
      ['login', '--issuer', idp.issuer, '--client-id', 'demo-cli'],
      env,
      (stderr) => {
        const complete = /Or open (\S+)/.exec(stderr)?.[1]
        if (complete !== undefined && approving === undefined) {
          approving = approveDeviceInChromium(browser, complete, {
            username: 'alice',
            password: 'alice',
          })
        }
      },
    )
    must(login, 'ssokit login (demo-cli)')
    await approving
    const userArgs = ['token', '--issuer', idp.issuer, '--client-id', 'demo-cli']
    const userToken = must(await ssokit(userArgs, env), 'ssokit token (demo-cli)')

    const quote = (args: readonly string[]) => [process.execPath, BIN, ...args].join(' ')
    const commands = [`${process.execPath} -e 0`, quote(serviceArgs), quote(userArgs)]
    const before = idp.requests.length
    const figures = hyperfine(commands, env, join(dir, 'hyperfine.json'))
    const served = idp.requests.length - before
    if (served !== 0) throw new Error(`the provider served ${served} requests: not from the cache`)
    if (must(await ssokit(serviceArgs, env), 'ssokit token') !== serviceToken)
      throw new Error('demo-app token changed during the runs')
    if (must(await ssokit(userArgs, env), 'ssokit token') !== userToken)
      throw new Error('demo-cli token changed during the runs')

    const [floor, ...tokens] = figures
    const names = [
      'node -e 0',
      'ssokit token, client credentials (demo-app)',
      'ssokit token, device login (demo-cli)',
    ]
    const [load1, load5] = loadavg()
    console.log(
      `\nNode ${process.version}, ${RUNS} runs each after ${WARM_UP} warm-up runs, in turns; ` +
        `load average ${load1?.toFixed(2) ?? '?'} (1 min), ${load5?.toFixed(2) ?? '?'} (5 min); ` +
        `the provider served 0 requests during the runs.\n`,
    )
    console.log(
      '| command | median ms | p95 ms | mean ms | CPU ms (user + sys) | median over node -e 0 |',
    )
    console.log('| --- | ---: | ---: | ---: | ---: | ---: |')
    figures.forEach((f, i) => {
      const over = floor === undefined ? '' : `+${(f.median - floor.median).toFixed(1)}`
      console.log(
        `| ${names[i] ?? f.command} | ${f.median.toFixed(1)} | ${f.p95.toFixed(1)} | ${f.mean.toFixed(1)} | ${f.cpu.toFixed(1)} | ${i === 0 ? '' : over} |`,
      )
    })
    console.log(`\nTarget: ssokit token from a valid cached token in under ${TARGET_MS} ms:`)
    tokens.forEach((f, i) => {
      console.log(
        `- ${names[i + 1] ?? f.command}: median ${f.median.toFixed(1)} ms, p95 ${f.p95.toFixed(1)} ms, ` +
          `CPU ${f.cpu.toFixed(1)} ms: ${f.p95 < TARGET_MS ? 'met' : 'NOT met'} (p95)`,
      )
    })
  } finally {
    await Promise.all([browser.close(), idp.close()])
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
