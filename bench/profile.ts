/**
 * A `--cpu-prof` profile read as a table: self time by function, with its file and line, the
 * biggest first. Enough to see where a request's time goes without opening a profiler.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { Session } from 'node:inspector'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

interface ProfileNode {
  readonly id: number
  readonly children?: readonly number[]
  readonly callFrame: {
    readonly functionName: string
    readonly url: string
    readonly lineNumber: number
  }
}

interface Profile {
  readonly nodes: readonly ProfileNode[]
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

const ROOT = fileURLToPath(new URL('..', import.meta.url))

function place(frame: ProfileNode['callFrame']): string {
  const url = frame.url.startsWith('file://') ? relative(ROOT, fileURLToPath(frame.url)) : frame.url
  const name = frame.functionName === '' ? '(anonymous)' : frame.functionName
  return url === '' ? name : `${name} ${url}:${frame.lineNumber + 1}`
}

/** Which part of the stack a function belongs to, for the summary by part. */
function part(frame: ProfileNode['callFrame']): string {
  const { url, functionName } = frame
  if (functionName === '(garbage collector)') return 'garbage collection'
  if (functionName === '(program)') return 'V8 and native code outside JavaScript'
  if (url.startsWith('node:inspector')) return 'the profiler itself'
  if (url.startsWith('node:internal/crypto')) return 'node:crypto (the RS256 signature check)'
  if (url.includes('/packages/core/')) return 'ssokit core (parse, claims, keys)'
  if (url.includes('/packages/')) return 'ssokit adapter'
  if (url.includes('/node_modules/')) return 'libraries'
  if (url.startsWith('node:') || url === '') return 'Node.js HTTP, streams and sockets'
  return 'the benchmark server'
}

/**
 * The busy time (idle left out) of every profile in `dir` by part of the stack, then the `top`
 * functions by self time, as Markdown tables.
 */
export function summariseProfile(dir: string, top: number): string {
  const selfTime = new Map<string, number>()
  const byPart = new Map<string, number>()
  let total = 0
  for (const file of readdirSync(dir).filter((name) => name.endsWith('.cpuprofile'))) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile
    const byId = new Map(profile.nodes.map((node) => [node.id, node]))
    const parents = new Map<number, ProfileNode>()
    for (const node of profile.nodes)
      for (const child of node.children ?? []) parents.set(child, node)
    // A native function (no URL, such as the signature check's `run`) counts for the JavaScript
    // that called it.
    const caller = (node: ProfileNode): ProfileNode => {
      let at = node
      while (at.callFrame.url === '' && !at.callFrame.functionName.startsWith('(')) {
        const parent = parents.get(at.id)
        if (parent === undefined || parent.callFrame.functionName === '(root)') break
        at = parent
      }
      return at
    }
    profile.samples.forEach((id, i) => {
      const node = byId.get(id)
      const delta = profile.timeDeltas[i] ?? 0
      if (node === undefined || node.callFrame.functionName === '(idle)') return
      const from = caller(node)
      const key =
        from === node
          ? place(node.callFrame)
          : `${place(node.callFrame)}, called by ${place(from.callFrame)}`
      selfTime.set(key, (selfTime.get(key) ?? 0) + delta)
      const where = part(from.callFrame)
      byPart.set(where, (byPart.get(where) ?? 0) + delta)
      total += delta
    })
  }
  const percent = (time: number) => ((time / total) * 100).toFixed(1)
  const lines = ['| % of busy time | part |', '|---:|---|']
  for (const [where, time] of [...byPart].sort((a, b) => b[1] - a[1])) {
    lines.push(`| ${percent(time)} | ${where} |`)
  }
  lines.push('', '| self % | function |', '|---:|---|')
  for (const [key, time] of [...selfTime].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    lines.push(`| ${percent(time)} | ${key} |`)
  }
  return lines.join('\n')
}

/**
 * A CPU profile of what happens between SIGUSR2 and SIGTERM, written to `path`: the measured run
 * only, without start-up and warm-up.
 */
export function profileBetweenSignals(path: string): void {
  const session = new Session()
  session.connect()
  process.once('SIGUSR2', () => {
    session.post('Profiler.enable', () => {
      session.post('Profiler.start')
    })
  })
  process.once('SIGTERM', () => {
    session.post('Profiler.stop', (error, result) => {
      if (error === null) writeFileSync(path, JSON.stringify(result.profile))
      process.exit(0)
    })
  })
}
