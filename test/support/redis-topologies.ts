/**
 * Real Redis topologies for tests, on 127.0.0.1 and free ports, in temporary directories, with
 * short failure detection so failovers take a second or two: a Cluster of three primaries and
 * three replicas (`redis-cli --cluster create`), and Sentinel with one primary, one replica and
 * three `redis-sentinel` processes. Every process runs under the watchdog of `redis.ts`, so none
 * outlives the test process.
 */
import { spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'

import { exited, findRedisBinary, freePort, launchWatched, tempDir } from './redis.js'

export interface Node {
  readonly host: string
  readonly port: number
}

interface Proc {
  readonly port: number
  child: ChildProcessWithoutNullStreams | undefined
}

async function stopProc(proc: Proc): Promise<void> {
  const child = proc.child
  proc.child = undefined
  if (child === undefined) return
  child.stdin.end()
  await exited(child)
}

/** Distinct free ports (a port found free is held by nothing, so ask until they differ). */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>()
  while (ports.size < count) ports.add(await freePort())
  return [...ports]
}

async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}

async function ask<T>(port: number, command: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0 })
  client.on('error', () => undefined)
  try {
    await client.connect()
    return await command(client)
  } finally {
    client.disconnect()
  }
}

export interface RunningCluster {
  readonly nodes: readonly Node[]
  /** The node currently serving `key` as primary. */
  primaryOf(key: string): Promise<number>
  /** Waits until every write so far reached a replica of its primary. */
  replicated(): Promise<void>
  /** Kills a node (as a crash would) and waits until a replica has taken over its slots. */
  killPrimary(port: number): Promise<void>
  /** Starts a killed node again; it rejoins as a replica. */
  revive(port: number): Promise<void>
  stop(): Promise<void>
}

const CLUSTER_NODE_TIMEOUT_MS = 1000

export async function startRedisCluster(): Promise<RunningCluster> {
  const server = findRedisBinary('redis-server')
  const cli = findRedisBinary('redis-cli')
  const dir = tempDir('ssokit-cluster-')
  const ports = await freePorts(12)
  const procs: Proc[] = []
  const args = (i: number): string[] => {
    const port = ports[i] ?? 0
    const nodeDir = join(dir, String(port))
    mkdirSync(nodeDir, { recursive: true })
    return [
      '--port',
      String(port),
      '--cluster-port',
      String(ports[i + 6]),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--dir',
      nodeDir,
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      String(CLUSTER_NODE_TIMEOUT_MS),
    ]
  }
  const start = async (i: number): Promise<Proc> => {
    const port = ports[i] ?? 0
    return { port, child: await launchWatched(server, args(i), port) }
  }
  const stop = async () => {
    await Promise.all(procs.map(stopProc))
  }
  try {
    procs.push(...(await Promise.all([0, 1, 2, 3, 4, 5].map(start))))
    const created = spawnSync(
      cli,
      [
        '--cluster',
        'create',
        ...ports.slice(0, 6).map((p) => `127.0.0.1:${p}`),
        '--cluster-replicas',
        '1',
        '--cluster-yes',
      ],
      { encoding: 'utf8', timeout: 30_000 },
    )
    if (created.status !== 0)
      throw new Error(`redis-cli --cluster create failed:\n${created.stdout}${created.stderr}`)
    await until('the cluster to be ready', async () => {
      const states = await Promise.all(procs.map((p) => ask(p.port, (c) => c.cluster('INFO'))))
      return states.every((info) => info.includes('cluster_state:ok'))
    })
    // Every replica attached and in sync, so a failover promotes one that has the data.
    await until('every replica to be in sync', async () => {
      const roles = await Promise.all(procs.map((p) => ask(p.port, (c) => c.info('replication'))))
      return (
        roles.filter((r) => r.includes('role:slave') && r.includes('master_link_status:up'))
          .length === 3
      )
    })
  } catch (error) {
    await stop()
    throw error
  }
  const byPort = (port: number): Proc => {
    const proc = procs.find((p) => p.port === port)
    if (proc === undefined) throw new Error(`no node on ${port}`)
    return proc
  }
  const live = () => procs.filter((p) => p.child !== undefined)
  return {
    nodes: ports.slice(0, 6).map((port) => ({ host: '127.0.0.1', port })),
    async primaryOf(key) {
      for (const proc of live()) {
        const role = await ask(proc.port, (c) => c.info('replication'))
        if (!role.includes('role:master')) continue
        const slot = await ask(proc.port, (c) => c.cluster('KEYSLOT', key))
        const slots = await ask(proc.port, (c) => c.cluster('SLOTS'))
        const owner = slots.find(([from, to]) => slot >= from && slot <= to)
        const port = owner?.[2]?.[1]
        if (port !== undefined) return port
      }
      throw new Error(`no primary for ${key}`)
    },
    async replicated() {
      for (const proc of live()) {
        const role = await ask(proc.port, (c) => c.info('replication'))
        if (role.includes('role:master') && role.includes('connected_slaves:1'))
          await ask(proc.port, (c) => c.wait(1, 5000))
      }
    },
    async killPrimary(port) {
      await stopProc(byPort(port))
      await until('a replica to take over', async () => {
        const infos = await Promise.all(live().map((p) => ask(p.port, (c) => c.cluster('INFO'))))
        return infos.every((info) => info.includes('cluster_state:ok'))
      })
    },
    async revive(port) {
      const proc = byPort(port)
      if (proc.child !== undefined) return
      proc.child = await launchWatched(server, args(ports.indexOf(port)), port)
    },
    stop,
  }
}

export interface RunningSentinel {
  readonly sentinels: readonly Node[]
  readonly name: string
  /** The port of the current primary, as the sentinels report it. */
  primary(): Promise<number>
  /** Waits until every write so far reached the replica. */
  replicated(): Promise<void>
  /** Kills the primary (as a crash would) and waits until the sentinels have promoted the replica. */
  killPrimary(): Promise<number>
  stop(): Promise<void>
}

const SENTINEL_DOWN_AFTER_MS = 1000

export async function startRedisSentinel(): Promise<RunningSentinel> {
  const server = findRedisBinary('redis-server')
  const sentinelBinary = findRedisBinary('redis-sentinel')
  const dir = tempDir('ssokit-sentinel-')
  const name = 'ssokit'
  const [primaryPort = 0, replicaPort = 0, ...sentinelPorts] = await freePorts(5)
  const procs: Proc[] = []
  const data = (port: number, extra: string[]): string[] => {
    const nodeDir = join(dir, String(port))
    mkdirSync(nodeDir, { recursive: true })
    return [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--daemonize',
      'no',
      '--dir',
      nodeDir,
      ...extra,
    ]
  }
  const stop = async () => {
    await Promise.all(procs.map(stopProc))
  }
  try {
    procs.push({
      port: primaryPort,
      child: await launchWatched(server, data(primaryPort, []), primaryPort),
    })
    procs.push({
      port: replicaPort,
      child: await launchWatched(
        server,
        data(replicaPort, ['--replicaof', '127.0.0.1', String(primaryPort)]),
        replicaPort,
      ),
    })
    await until('the replica to sync', async () =>
      (await ask(replicaPort, (c) => c.info('replication'))).includes('master_link_status:up'),
    )
    const sentinels = await Promise.all(
      sentinelPorts.map(async (port) => {
        const conf = join(dir, `sentinel-${port}.conf`)
        writeFileSync(
          conf,
          [
            `port ${port}`,
            'bind 127.0.0.1',
            `dir ${dir}`,
            `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
            `sentinel down-after-milliseconds ${name} ${SENTINEL_DOWN_AFTER_MS}`,
            `sentinel failover-timeout ${name} 10000`,
            `sentinel parallel-syncs ${name} 1`,
            '',
          ].join('\n'),
        )
        return {
          port,
          child: await launchWatched(sentinelBinary, [conf], port, 'Sentinel ID is'),
        }
      }),
    )
    procs.push(...sentinels)
    await until('the sentinels to see each other and the replica', async () => {
      const views = await Promise.all(
        sentinelPorts.map((port) =>
          ask(port, async (c) => ({
            sentinels: (await c.call('SENTINEL', 'SENTINELS', name)) as unknown[],
            replicas: (await c.call('SENTINEL', 'REPLICAS', name)) as unknown[],
          })),
        ),
      )
      return views.every((v) => v.sentinels.length === 2 && v.replicas.length === 1)
    })
  } catch (error) {
    await stop()
    throw error
  }
  const primary = async (): Promise<number> => {
    const [, port] = (await ask(sentinelPorts[0] ?? 0, (c) =>
      c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name),
    )) as [string, string]
    return Number(port)
  }
  return {
    sentinels: sentinelPorts.map((port) => ({ host: '127.0.0.1', port })),
    name,
    primary,
    async replicated() {
      const port = await primary()
      await ask(port, (c) => c.wait(1, 5000))
    },
    async killPrimary() {
      const old = await primary()
      const proc = procs.find((p) => p.port === old)
      if (proc === undefined) throw new Error('the primary is not ours')
      await stopProc(proc)
      await until('the sentinels to promote the replica', async () => {
        const now = await primary()
        if (now === old) return false
        const role = await ask(now, (c) => c.info('replication'))
        return role.includes('role:master')
      })
      return primary()
    },
    stop,
  }
}
