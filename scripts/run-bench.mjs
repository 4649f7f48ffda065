#!/usr/bin/env node
// Runs the benchmarks, each from source: token verification (bench/verify.ts), protected HTTP
// routes (bench/http.ts), sessions (bench/session.ts), then ssokit proxy against nginx and
// Apache + mod_auth_openidc (bench/proxy.ts), and the start of `ssokit token` (bench/cli.ts). Each prints its ratios against a baseline measured in the same run.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

function hasCommand(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0
}

if (!hasCommand('wrk')) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0
  if (isRoot && hasCommand('apt-get')) {
    console.log('wrk is missing: installing it with apt-get')
    spawnSync('apt-get', ['update'], { stdio: 'inherit' })
    spawnSync('apt-get', ['install', '-y', 'wrk'], { stdio: 'inherit' })
  }
  if (!hasCommand('wrk')) {
    console.error(
      'bench/http.ts needs wrk: install it with `sudo apt-get install wrk` (Debian/Ubuntu)',
    )
    process.exit(1)
  }
}

const selected = process.argv.slice(2)
let failed = false
for (const name of ['verify', 'http', 'session', 'proxy', 'cli']) {
  if (selected.length > 0 && !selected.includes(name)) continue
  const file = join('bench', `${name}.ts`)
  if (!existsSync(join(root, file))) {
    console.error(`${file} is missing, skipped`)
    failed = true
    continue
  }
  console.log(`\n== ${file}`)
  const result = spawnSync(process.execPath, ['--conditions=source', '--import', 'tsx', file], {
    cwd: root,
    stdio: 'inherit',
  })
  if (result.status !== 0) failed = true
}
process.exit(failed ? 1 : 0)
