/**
 * Running wrk against a server process and reading what it cost: the shared part of the HTTP
 * benchmarks. wrk runs on core 0 (`taskset`, when present) while servers are pinned to core 1.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0
}

/** Whether processes can be pinned to cores. */
export const pin = hasCommand('taskset')

export interface Run {
  /** Requests per second, as wrk measured them. */
  readonly rate: number
  /** Server CPU time per request in microseconds, when /proc tells it. */
  readonly cpu: number | undefined
}

const TICK_US = 1e6 / 100

/** User plus system CPU time of a process, in clock ticks (Linux). */
function cpuTicks(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    return Number.isFinite(ticks) ? ticks : undefined
  } catch {
    return undefined
  }
}

/** The parent of each process, from /proc (Linux). */
function parents(): Map<number, number> {
  const out = new Map<number, number>()
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
      out.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {
      // gone meanwhile
    }
  }
  return out
}

/**
 * User plus system CPU ticks of a process and every live descendant (nginx's and Apache's
 * workers are children of the process started), or `undefined` where /proc does not tell.
 */
export function treeCpuTicks(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined
  let ppid: Map<number, number>
  try {
    ppid = parents()
  } catch {
    return undefined
  }
  const tree = new Set([pid])
  for (let grown = true; grown;) {
    grown = false
    for (const [child, parent] of ppid) {
      if (tree.has(parent) && !tree.has(child)) {
        tree.add(child)
        grown = true
      }
    }
  }
  let total = 0
  for (const member of tree) total += cpuTicks(member) ?? 0
  return cpuTicks(pid) === undefined ? undefined : total
}

/** Microseconds of CPU per request from two tick counts, when both are known. */
export function cpuPerRequest(
  before: number | undefined,
  after: number | undefined,
  requests: number,
): number | undefined {
  if (before === undefined || after === undefined || requests === 0) return undefined
  return ((after - before) * TICK_US) / requests
}

/** A wrk Lua script and the arguments it is given after `--`. */
export interface WrkScript {
  readonly path: string
  readonly args: readonly string[]
}

/**
 * One wrk run (`args` such as `-t1 -c32 -d5s`) against `url` with one extra request header, or
 * with a script that makes the requests, measuring the server process `pid`. A run with any
 * non-2xx answer throws: a benchmark of rejected requests would measure the wrong thing.
 */
export function wrk(
  args: readonly string[],
  url: string,
  header: string | WrkScript,
  pid: number | undefined,
  label: string,
): Run {
  const argv =
    typeof header === 'string'
      ? [...args, '-H', header, url]
      : [...args, '-s', header.path, url, '--', ...header.args]
  const before = cpuTicks(pid)
  const result = spawnSync(pin ? 'taskset' : 'wrk', pin ? ['-c', '0', 'wrk', ...argv] : argv, {
    encoding: 'utf8',
  })
  const after = cpuTicks(pid)
  const rate = /Requests\/sec:\s+([\d.]+)/.exec(result.stdout)
  const total = /(\d+) requests in/.exec(result.stdout)
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(result.stdout)
  if (result.status !== 0 || !rate || !total) throw new Error(`wrk failed: ${result.stderr}`)
  if (errors) throw new Error(`${label}: ${errors[1]} requests were rejected during the run`)
  const cpu =
    before === undefined || after === undefined
      ? undefined
      : ((after - before) * TICK_US) / Number(total[1])
  return { rate: Number(rate[1]), cpu }
}

/** The better of two runs: the higher rate and the lower CPU cost. */
export function best(a: Run | undefined, b: Run): Run {
  if (a === undefined) return b
  return {
    rate: Math.max(a.rate, b.rate),
    cpu: a.cpu === undefined || b.cpu === undefined ? undefined : Math.min(a.cpu, b.cpu),
  }
}
