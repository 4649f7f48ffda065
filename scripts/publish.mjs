#!/usr/bin/env node
// `npm run release:publish`: publishes every package with provenance, dependencies first, from
// the tarballs `npm run pack` builds (so what is published is what the release check tested).
// A version already on the registry is skipped, so a run that stopped half-way can be repeated.
//
//   --dry-run       print the npm commands instead of running them (no registry access)
//   --from <dir>    publish the tarballs already in <dir> instead of packing into dist-pack/
//   --tag <tag>     npm dist-tag (default: latest)
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { root, tarballName, workspacePackages } from './workspace.mjs'

const { values } = parseArgs({
  options: {
    'dry-run': { type: 'boolean' },
    from: { type: 'string' },
    tag: { type: 'string' },
  },
})
const dryRun = values['dry-run'] === true
const packages = workspacePackages()

// Versions move in step (the changesets "fixed" group): one version, and internal dependencies
// pinned to it, or the published packages would not find each other.
const version = packages[0]?.manifest.version
for (const { manifest } of packages) {
  if (manifest.version !== version) {
    throw new Error(
      `${manifest.name} is at ${manifest.version}, not ${version}: run npm run release:version`,
    )
  }
  for (const [name, range] of Object.entries(manifest.dependencies ?? {})) {
    if (name.startsWith('@ssokit/') && range !== version) {
      throw new Error(`${manifest.name} depends on ${name}@${range}, not ${version}`)
    }
  }
}

function npm(args, options = {}) {
  const result = spawnSync('npm', args, { cwd: root, encoding: 'utf8', ...options })
  if (result.error) throw result.error
  return result
}

let from = values.from === undefined ? undefined : resolve(values.from)
if (from === undefined) {
  if (
    !dryRun &&
    spawnSync('git', ['status', '--porcelain'], { cwd: root, encoding: 'utf8' }).stdout !== ''
  ) {
    throw new Error('the working tree has uncommitted changes: publish from a clean checkout')
  }
  from = join(root, 'dist-pack')
  const pack = spawnSync(process.execPath, [join(root, 'scripts/pack.mjs'), '--out', from], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  if (pack.status !== 0) process.exit(pack.status ?? 1)
}

for (const { manifest } of packages) {
  const tarball = join(from, tarballName(manifest))
  if (!existsSync(tarball)) throw new Error(`${tarball} is missing: run npm run pack`)
  const args = ['publish', relative(root, tarball), '--provenance', '--access', 'public']
  if (values.tag !== undefined) args.push('--tag', values.tag)
  if (dryRun) {
    console.log(`npm ${args.join(' ')}`)
    continue
  }
  const published = npm(['view', `${manifest.name}@${manifest.version}`, 'version'])
  if (published.status === 0 && published.stdout.trim() === manifest.version) {
    console.log(`${manifest.name}@${manifest.version} is already published, skipped`)
    continue
  }
  const result = npm(args, { stdio: 'inherit' })
  if (result.status !== 0) process.exit(result.status ?? 1)
}

if (!dryRun) {
  // One git tag per package (@ssokit/core@1.2.3), as changesets names them.
  const tag = spawnSync(join(root, 'node_modules/.bin/changeset'), ['tag'], {
    cwd: root,
    stdio: 'inherit',
  })
  if (tag.status !== 0) process.exit(tag.status ?? 1)
  console.log('Published. Push the tags: git push --follow-tags')
}
