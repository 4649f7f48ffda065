/**
 * Sessions on a real Redis Sentinel deployment: one primary, one replica and three sentinels
 * started for this file, with a one-second down-after so a killed primary fails over quickly.
 */
import { after } from 'node:test'
import { RedisSessionStore } from '@ssokit/redis'

import { runDistributedSessionSuite } from '../support/distributed-sessions.js'
import { startRedisSentinel } from '../support/redis-topologies.js'

const sentinel = await startRedisSentinel()
after(() => sentinel.stop())

runDistributedSessionSuite({
  name: 'Redis Sentinel',
  store: (keyPrefix) =>
    new RedisSessionStore({ sentinels: sentinel.sentinels, name: sentinel.name, keyPrefix }),
  replicated: () => sentinel.replicated(),
  async failover() {
    await sentinel.killPrimary()
  },
})
