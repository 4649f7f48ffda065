#!/usr/bin/env node
// `npm run pack`: builds every package and packs it as it will be published, into dist-pack/
// (or `--out <dir>`). Prints the path of each tarball, dependencies first.
//
// Each package is packed from a staging copy so that the published manifest has no "source"
// export condition (it points at TypeScript files that are not shipped) and the compiled files
// carry no reference to source maps that are not shipped either.
import { spawn, spawnSync } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { root, tarballName, workspacePackages } from './workspace.mjs'

const { values } = parseArgs({ options: { out: { type: 'string' } } })
const out = resolve(values.out ?? join(root, 'dist-pack'))
const packages = workspacePackages()

const build = spawnSync(
  process.execPath,
  [
    join(root, 'node_modules/typescript/bin/tsc'),
    '-b',
    ...packages.map(({ dir }) => join(dir, 'tsconfig.build.json')),
  ],
  { cwd: root, stdio: 'inherit' },
)
if (build.status !== 0) process.exit(build.status ?? 1)

/** What a compiled file was compiled from: dist/a/b.d.ts -> src/a/b.ts. */
function sourceOf(dir, file) {
  const base = relative(join(dir, 'dist'), file).replace(
    /(\.d)?\.ts\.map$|\.js\.map$|\.d\.ts$|\.js$/,
    '',
  )
  return join(dir, 'src', `${base}.ts`)
}

/** Copies dist/ without maps, build info, or compiled files whose source has been deleted. */
function copyDist(dir, target) {
  const walk = (from) => {
    for (const name of readdirSync(from)) {
      const path = join(from, name)
      if (statSync(path).isDirectory()) {
        walk(path)
        continue
      }
      if (name.endsWith('.map') || name.endsWith('.tsbuildinfo')) continue
      if (!existsSync(sourceOf(dir, path))) continue
      const text = readFileSync(path, 'utf8').replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n')
      const copy = join(target, relative(dir, path))
      mkdirSync(join(copy, '..'), { recursive: true })
      writeFileSync(copy, text)
    }
  }
  walk(join(dir, 'dist'))
}

/** The "exports" map without the development-only "source" condition. */
function publishedExports(exports) {
  if (typeof exports !== 'object' || exports === null) return exports
  return Object.fromEntries(
    Object.entries(exports)
      .filter(([condition]) => condition !== 'source')
      .map(([key, value]) => [key, publishedExports(value)]),
  )
}

function npmPack(stage) {
  return new Promise((resolvePack, reject) => {
    const child = spawn('npm', ['pack', '--json', '--pack-destination', out, stage], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let stdout = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code === 0) resolvePack(JSON.parse(stdout)[0].filename)
      else reject(new Error(`npm pack ${stage} exited with ${code}`))
    })
  })
}

mkdirSync(out, { recursive: true })
const staging = mkdtempSync(join(tmpdir(), 'ssokit-pack-'))
try {
  const tarballs = await Promise.all(
    packages.map(async ({ dir, manifest }) => {
      const stage = join(staging, manifest.name.replace('/', '__'))
      mkdirSync(stage, { recursive: true })
      const published = { ...manifest, exports: publishedExports(manifest.exports) }
      writeFileSync(join(stage, 'package.json'), `${JSON.stringify(published, null, 2)}\n`)
      for (const file of ['README.md', 'CHANGELOG.md']) {
        if (existsSync(join(dir, file))) cpSync(join(dir, file), join(stage, file))
      }
      cpSync(join(root, 'LICENSE'), join(stage, 'LICENSE'))
      if (existsSync(join(dir, 'bin')))
        cpSync(join(dir, 'bin'), join(stage, 'bin'), { recursive: true })
      copyDist(dir, stage)
      rmSync(join(out, tarballName(manifest)), { force: true })
      const filename = await npmPack(stage)
      if (filename !== tarballName(manifest)) throw new Error(`unexpected tarball ${filename}`)
      return join(out, filename)
    }),
  )
  for (const tarball of tarballs) console.log(relative(process.cwd(), tarball) || tarball)
} finally {
  rmSync(staging, { recursive: true, force: true })
}
