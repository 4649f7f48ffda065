// The publishable packages of the workspace, in the order they can be published: each one after
// every package of ours it depends on.
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('..', import.meta.url))

/** `{ dir, manifest }` for every packages/* folder, dependencies first. */
export function workspacePackages() {
  const found = new Map()
  for (const name of readdirSync(join(root, 'packages')).sort()) {
    const dir = join(root, 'packages', name)
    let manifest
    try {
      manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    } catch {
      continue
    }
    if (manifest.private !== true) found.set(manifest.name, { dir, manifest })
  }
  const ordered = []
  const visiting = new Set()
  const visit = (name, from) => {
    const entry = found.get(name)
    if (entry === undefined || ordered.includes(entry)) return
    if (visiting.has(name)) throw new Error(`dependency cycle: ${from} -> ${name}`)
    visiting.add(name)
    const { dependencies = {}, peerDependencies = {} } = entry.manifest
    for (const dependency of Object.keys({ ...dependencies, ...peerDependencies })) {
      visit(dependency, name)
    }
    visiting.delete(name)
    ordered.push(entry)
  }
  for (const name of found.keys()) visit(name, name)
  return ordered
}

/** The file name `npm pack` gives a package: `@ssokit/core` 0.1.0 -> ssokit-core-0.1.0.tgz. */
export function tarballName(manifest) {
  return `${manifest.name.replace(/^@/, '').replace('/', '-')}-${manifest.version}.tgz`
}
