/**
 * Sessions on a real Redis Cluster: three primaries and three replicas started for this file,
 * with a one-second node timeout so a killed primary fails over in a couple of seconds.
 */
import { after } from 'node:test'
import { RedisSessionStore } from '@ssokit/redis'

import { runDistributedSessionSuite } from '../support/distributed-sessions.js'
import { startRedisCluster } from '../support/redis-topologies.js'

const cluster = await startRedisCluster()
after(() => cluster.stop())

runDistributedSessionSuite({
  name: 'Redis Cluster',
  store: (keyPrefix) => new RedisSessionStore({ cluster: cluster.nodes, keyPrefix }),
  replicated: () => cluster.replicated(),
  async failover(key) {
    await cluster.killPrimary(await cluster.primaryOf(key))
  },
})
