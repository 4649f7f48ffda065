/**
 * The Redis store's client-side cache on a real redis-server: hits cost no round trip, a change
 * made anywhere drops the record everywhere within the bound, and a lost, re-established or
 * stalled invalidation channel never lets a deleted session be served.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import { SsoError } from '@ssokit/core'
import { RedisSessionStore } from '@ssokit/redis'
import { startRedis } from '../support/redis.js'
import { startTcpProxy } from '../support/tcp-proxy.js'

const redis = await startRedis()
after(() => redis.stop())

const MAX_STALENESS = 400

function store(url = redis.url): RedisSessionStore {
  return new RedisSessionStore({ url, keyPrefix: 'cache:', cache: { maxStaleness: MAX_STALENESS } })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function live(s: RedisSessionStore): Promise<void> {
  for (let i = 0; i < 200 && s.cache?.live !== true; i++) await sleep(10)
  assert.equal(s.cache?.live, true, 'the invalidation channel comes up')
}

/** How many GETs the server has answered since statistics were last reset. */
async function gets(raw: Redis): Promise<number> {
  const line = (await raw.info('commandstats'))
    .split('\r\n')
    .find((l) => l.startsWith('cmdstat_get:'))
  return Number(/calls=(\d+)/.exec(line ?? '')?.[1] ?? 0)
}

const session = (data: string) => ({ subject: 'alice', sid: 'sid-1', data })

describe('RedisSessionStore client-side cache', () => {
  let raw: Redis
  let a: RedisSessionStore
  let b: RedisSessionStore
  before(async () => {
    raw = new Redis(redis.url)
    a = store()
    b = store()
    await Promise.all([live(a), live(b)])
  })
  after(async () => {
    await a.close()
    await b.close()
    raw.disconnect()
  })

  it('answers repeated reads of a session, and of an absent key, without a round trip', async () => {
    const id = randomUUID()
    await a.set(id, session('one'), 60)
    await raw.config('RESETSTAT')
    assert.equal((await b.get(id))?.data, 'one')
    assert.equal(await b.get(`${id}-absent`), undefined)
    const afterMiss = await gets(raw)
    assert.equal(afterMiss, 2, 'the first reads go to Redis')
    for (let i = 0; i < 50; i++) {
      assert.equal((await b.get(id))?.data, 'one')
      assert.equal(await b.get(`${id}-absent`), undefined)
    }
    assert.equal(await gets(raw), afterMiss, 'later reads are answered from the cache')
    assert.ok((b.cache?.entries ?? 0) >= 2)
  })

  it('drops a record on every replica when another one changes or deletes it, within the bound', async () => {
    for (let round = 0; round < 20; round++) {
      const id = randomUUID()
      await a.set(id, session('v1'), 60)
      assert.equal((await b.get(id))?.data, 'v1')
      assert.equal((await b.get(id))?.data, 'v1', 'cached')
      const changedAt = Date.now()
      await a.set(id, session('v2'), 60)
      let seen = (await b.get(id))?.data
      while (seen !== 'v2' && Date.now() - changedAt < MAX_STALENESS) {
        await sleep(1)
        seen = (await b.get(id))?.data
      }
      assert.equal(seen, 'v2', 'an update reaches the other replica within the bound')
      // A logout made by a third client, as another replica's would be.
      const deletedAt = Date.now()
      await raw.del(`cache:s:${id}`)
      let after = await b.get(id)
      while (after !== undefined && Date.now() - deletedAt < MAX_STALENESS) {
        await sleep(1)
        after = await b.get(id)
      }
      assert.equal(after, undefined, 'a deleted session is refused after the bound')
    }
  })

  it('forgets everything when Redis is flushed', async () => {
    const id = randomUUID()
    await a.set(id, session('x'), 60)
    assert.ok(await b.get(id))
    await raw.flushall()
    for (let i = 0; i < 100 && (await b.get(id)) !== undefined; i++) await sleep(2)
    assert.equal(await b.get(id), undefined)
  })

  it('expires a cached record with its key', async () => {
    const id = randomUUID()
    await a.set(id, session('short'), 0.3)
    assert.ok(await b.get(id))
    await sleep(400)
    assert.equal(await b.get(id), undefined)
  })

  it('is flushed and bypassed while the invalidation connection is lost, and serves again once it is back', async () => {
    const id = randomUUID()
    await a.set(id, session('kept'), 60)
    assert.ok(await b.get(id))
    assert.ok((b.cache?.entries ?? 0) > 0)
    await raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
    // Killed, then reconnected by itself; meanwhile nothing cached was served.
    await raw.del(`cache:s:${id}`)
    assert.equal(await b.get(id), undefined)
    await live(b)
    await a.set(id, session('again'), 60)
    assert.equal((await b.get(id))?.data, 'again')
    // A read that the write's own invalidation overtook is not cached; the next one is.
    await sleep(20)
    assert.equal((await b.get(id))?.data, 'again')
    await raw.config('RESETSTAT')
    assert.equal((await b.get(id))?.data, 'again')
    assert.equal(await gets(raw), 0, 'cached again')
  })
})

describe('RedisSessionStore client-side cache during a network partition', () => {
  it('stops serving cached records within the bound and never answers a deleted session', async () => {
    const proxy = await startTcpProxy(redis.port)
    const raw = new Redis(redis.url)
    const cut = store(`redis://127.0.0.1:${proxy.port}`)
    try {
      await live(cut)
      const id = randomUUID()
      await raw.set(
        `cache:s:${id}`,
        `${JSON.stringify({ v: 2, sub: 'alice', sid: null })}\nd`,
        'EX',
        60,
      )
      assert.equal((await cut.get(id))?.data, 'd')
      proxy.hold()
      const heldAt = Date.now()
      await raw.del(`cache:s:${id}`)
      const answers: string[] = []
      while (Date.now() - heldAt < MAX_STALENESS * 2) {
        try {
          const got = await cut.get(id)
          answers.push(got === undefined ? 'none' : `cached after ${Date.now() - heldAt} ms`)
        } catch (error) {
          assert.ok(error instanceof SsoError)
          assert.equal(error.code, 'session_store_unavailable')
          answers.push('unavailable')
          break
        }
        await sleep(20)
      }
      assert.equal(answers.at(-1), 'unavailable', answers.join(', '))
      const lastCached = answers.filter((a) => a.startsWith('cached')).at(-1)
      const servedFor = lastCached === undefined ? 0 : Number(/(\d+) ms/.exec(lastCached)?.[1])
      assert.ok(servedFor <= MAX_STALENESS, `cached for ${servedFor} ms, within the bound`)
      assert.equal(cut.cache?.live, false)
      proxy.release()
      let after: unknown = 'pending'
      for (let i = 0; i < 100 && after === 'pending'; i++) {
        try {
          after = await cut.get(id)
        } catch {
          await sleep(50)
        }
      }
      assert.equal(after, undefined, 'after the partition the deletion is seen')
    } finally {
      await cut.close()
      raw.disconnect()
      await proxy.close()
    }
  })
})
