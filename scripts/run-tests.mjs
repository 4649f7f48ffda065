#!/usr/bin/env node
// Runs every test file with node's test runner. Tests import workspace packages from source
// (the "source" export condition) so a stale build never hides a change. The timeout bounds a
// whole test file's process: generous, because it only has to catch a hang on a loaded machine.
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

function collect(dir, out) {
  let entries
  try {
    entries = readdirSync(dir)
  } catch {
    return out
  }
  for (const name of entries) {
    if (name === 'node_modules' || name === 'dist') continue
    const path = join(dir, name)
    if (statSync(path).isDirectory()) collect(path, out)
    else if (name.endsWith('.test.ts')) out.push(relative(root, path))
  }
  return out
}

const filters = process.argv.slice(2)
const files = []
for (const pkg of readdirSync(join(root, 'packages')))
  collect(join(root, 'packages', pkg, 'test'), files)
collect(join(root, 'test'), files)
const selected = filters.length ? files.filter((f) => filters.some((x) => f.includes(x))) : files
if (selected.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`)
  process.exit(1)
}
selected.sort()
const result = spawnSync(
  process.execPath,
  [
    '--conditions=source',
    '--import',
    'tsx',
    '--test',
    '--test-concurrency=2',
    '--test-timeout=600000',
    ...selected,
  ],
  { cwd: root, stdio: 'inherit', env: { ...process.env, SSOKIT_TEST: '1' } },
)
process.exit(result.status ?? 1)
