import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import { SsoError, SsoTypeError } from '@ssokit/core'
import { runSessionStoreContract } from '@ssokit/core/store-contract'
import { RedisSessionStore, optionsFromEnv } from '@ssokit/redis'
import { startRedis } from '../support/redis.js'

const redis = await startRedis()
after(() => redis.stop())

runSessionStoreContract('RedisSessionStore', () => new RedisSessionStore({ url: redis.url }))

function isUnavailable(error: unknown): boolean {
  assert.ok(error instanceof SsoError, `expected an SsoError, got ${String(error)}`)
  assert.equal(error.code, 'session_store_unavailable')
  assert.equal(error.status, 503)
  assert.ok(error.cause instanceof Error, 'the original error is kept as cause')
  return true
}

/** Every key in the database; SCAN is fine here, in the test, on the raw client. */
async function allKeys(raw: Redis): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, batch] = await raw.scan(cursor, 'COUNT', 1000)
    keys.push(...batch)
    cursor = next
  } while (cursor !== '0')
  return keys
}

describe('RedisSessionStore on a real redis-server', () => {
  let raw: Redis
  before(() => {
    raw = new Redis(redis.url)
  })
  after(() => {
    raw.disconnect()
  })

  it('writes only keys under its prefix, each with a TTL covering its sessions', async () => {
    await raw.flushall()
    const store = new RedisSessionStore({ url: redis.url, keyPrefix: 'app1:' })
    try {
      await store.set('one', { subject: 'alice', sid: 'sid-1', data: 'x' }, 100)
      await store.set('two', { subject: 'alice', sid: undefined, data: 'y' }, 600)
      await store.set('three', { subject: 'alice', sid: 'sid-1', data: 'z' }, 50)
      const release = await store.lock('refresh:one', 30)
      assert.ok(release)
      const keys = await allKeys(raw)
      assert.equal(
        keys.length,
        7,
        `3 sessions, 2 indexes, 1 age index and 1 lock, got ${keys.join(', ')}`,
      )
      for (const key of keys) {
        assert.ok(key.startsWith('app1:'), `${key} is under the prefix`)
        const pttl = await raw.pttl(key)
        assert.ok(pttl > 0, `${key} has a TTL (${pttl})`)
        assert.ok(pttl <= 600_000, `${key} TTL is at most the longest session's`)
      }
      const indexTtls = await Promise.all(
        keys.map(async (k) => ((await raw.type(k)) === 'set' ? raw.pttl(k) : undefined)),
      )
      const [sidTtl, subjectTtl] = indexTtls.filter((t) => t !== undefined).sort((a, b) => a - b)
      assert.ok(
        sidTtl !== undefined && sidTtl > 50_000 && sidTtl <= 100_000,
        'the sid index covers its longest session',
      )
      assert.ok(
        subjectTtl !== undefined && subjectTtl > 500_000,
        'an index TTL is stretched, never shortened',
      )
      await release()
      assert.equal((await allKeys(raw)).length, 6, 'a released lock leaves no key')
    } finally {
      await store.close()
    }
    const plain = new RedisSessionStore({ url: redis.url })
    try {
      assert.equal(plain.keyPrefix, 'ssokit:')
      await plain.set('default', { subject: 'bob', sid: undefined, data: 'd' }, 60)
      const keys = (await allKeys(raw)).filter((k) => !k.startsWith('app1:'))
      assert.ok(keys.length > 0)
      for (const key of keys)
        assert.ok(key.startsWith('ssokit:'), `${key} is under the default prefix`)
    } finally {
      await plain.close()
    }
  })

  it('H05 one subject past maxSessionsPerSubject loses its oldest sessions, atomically and on every instance', async () => {
    const ns = randomUUID()
    const a = new RedisSessionStore({
      url: redis.url,
      keyPrefix: `${ns}:`,
      maxSessionsPerSubject: 5,
    })
    const b = new RedisSessionStore({
      url: redis.url,
      keyPrefix: `${ns}:`,
      maxSessionsPerSubject: 5,
    })
    try {
      await a.set('bob', { subject: 'bob', sid: 'sid-bob', data: 'bob' }, 600)
      for (let i = 0; i < 5; i++)
        await a.set(`m${i}`, { subject: 'mallory', sid: undefined, data: `m${i}` }, 600)
      // Instance b has the oldest in its process cache; a's next sign-in evicts it from both.
      assert.equal((await b.get('m0'))?.data, 'm0')
      await a.set('m5', { subject: 'mallory', sid: undefined, data: 'm5' }, 600)
      assert.equal(await b.get('m0'), undefined)
      assert.equal(await a.get('m0'), undefined)
      assert.equal((await b.get('m1'))?.data, 'm1')
      // Twenty sign-ins at once, on two instances: the cap still holds, exactly.
      await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 === 0 ? a : b).set(
            `p${i}`,
            { subject: 'mallory', sid: undefined, data: `p${i}` },
            600,
          ),
        ),
      )
      const ids = [
        ...Array.from({ length: 6 }, (_, i) => `m${i}`),
        ...Array.from({ length: 20 }, (_, i) => `p${i}`),
      ]
      const live = (await Promise.all(ids.map((id) => a.get(id)))).filter(
        (got) => got !== undefined,
      )
      assert.equal(live.length, 5)
      assert.equal(await raw.zcard(`${ns}:age:mallory`), 5)
      assert.equal((await a.get('bob'))?.data, 'bob', "another user's session is kept")
      assert.equal(await a.deleteBySubject('mallory'), 5)
      assert.equal(await raw.zcard(`${ns}:age:mallory`), 0)
      assert.throws(
        () => new RedisSessionStore({ url: redis.url, maxSessionsPerSubject: 0 }),
        SsoTypeError,
      )
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('never sends KEYS or SCAN', async () => {
    const store = new RedisSessionStore({ url: redis.url })
    try {
      await raw.config('RESETSTAT')
      const ns = randomUUID()
      for (let i = 0; i < 5; i++)
        await store.set(`${ns}-${i}`, { subject: ns, sid: `${ns}-sid`, data: 'd' }, 60)
      await store.get(`${ns}-0`)
      await store.delete(`${ns}-0`)
      assert.equal(await store.deleteBySid(`${ns}-sid`), 4)
      await store.set(`${ns}-x`, { subject: ns, sid: undefined, data: 'd' }, 60)
      assert.equal(await store.deleteBySubject(ns), 1)
      const release = await store.lock(ns, 10)
      await release?.()
      const stats = await raw.info('commandstats')
      assert.match(stats, /cmdstat_set:/, 'the statistics do record the store traffic')
      assert.match(stats, /cmdstat_smembers:/)
      assert.doesNotMatch(stats, /cmdstat_keys:/)
      assert.doesNotMatch(stats, /cmdstat_scan:/)
    } finally {
      await store.close()
    }
  })

  it('keeps sessions and indexes when the application restarts', async () => {
    const ns = randomUUID()
    const first = new RedisSessionStore({ url: redis.url })
    await first.set(`${ns}-a`, { subject: ns, sid: `${ns}-sid`, data: 'kept' }, 60)
    await first.set(`${ns}-b`, { subject: ns, sid: undefined, data: 'kept too' }, 60)
    await first.close()
    const second = new RedisSessionStore({ url: redis.url })
    try {
      const got = await second.get(`${ns}-a`)
      assert.equal(got?.data, 'kept')
      assert.equal(got.sid, `${ns}-sid`)
      assert.equal(await second.deleteBySubject(ns), 2)
    } finally {
      await second.close()
    }
  })

  it('uses a client passed in and leaves it open', async () => {
    const client = new Redis(redis.url)
    try {
      const store = new RedisSessionStore({ client, keyPrefix: 'mine:' })
      assert.equal(store.client, client)
      await store.set('id', { subject: 's', sid: undefined, data: 'v' }, 60)
      assert.equal((await store.get('id'))?.data, 'v')
      await store.close()
      assert.equal(await client.ping(), 'PONG')
      assert.ok((await client.exists('mine:s:id')) === 1)
    } finally {
      client.disconnect()
    }
  })

  it('keeps a busy index small by dropping ids whose sessions were evicted', async () => {
    const store = new RedisSessionStore({
      url: redis.url,
      keyPrefix: 'busy:',
      maxSessionsPerSubject: 100,
    })
    try {
      for (let i = 0; i < 70; i++)
        await store.set(`id${i}`, { subject: 'busy', sid: undefined, data: 'd' }, 60)
      assert.equal(await raw.scard('busy:sub:busy'), 70)
      await raw.del(...Array.from({ length: 60 }, (_, i) => `busy:s:id${i}`))
      await store.set('last', { subject: 'busy', sid: undefined, data: 'd' }, 60)
      assert.equal(await raw.scard('busy:sub:busy'), 11)
      assert.equal(await store.deleteBySubject('busy'), 11)
    } finally {
      await store.close()
    }
  })

  it('means "log in again" after Redis loses its data (O09)', async () => {
    const store = new RedisSessionStore({ url: redis.url, keyPrefix: 'lost:' })
    try {
      await store.set('a', { subject: 's', sid: 'sid', data: 'd' }, 60)
      await raw.flushall()
      assert.equal(await store.get('a'), undefined)
      assert.equal(await store.deleteBySubject('s'), 0)
      assert.equal(await store.deleteBySid('sid'), 0)
      await store.set('a', { subject: 's', sid: 'sid', data: 'again' }, 60)
      assert.equal((await store.get('a'))?.data, 'again')
    } finally {
      await store.close()
    }
  })

  it('treats an unreadable record as no session', async () => {
    const store = new RedisSessionStore({ url: redis.url, keyPrefix: 'junk:' })
    try {
      await raw.set('junk:s:broken', 'not json', 'EX', 60)
      await raw.set(
        'junk:s:future',
        JSON.stringify({ v: 99, sub: 's', sid: null, data: 'x' }),
        'EX',
        60,
      )
      assert.equal(await store.get('broken'), undefined)
      assert.equal(await store.get('future'), undefined)
    } finally {
      await store.close()
    }
  })

  it('writes the header-line format, and still reads and deletes records of the JSON format', async () => {
    const store = new RedisSessionStore({ url: redis.url, keyPrefix: 'v1:' })
    try {
      const data = JSON.stringify({ v: 1, note: 'line\nbreak stays escaped' })
      await store.set('new', { subject: 'alice', sid: 'sid-1', data }, 60)
      assert.equal(
        await raw.get('v1:s:new'),
        `${JSON.stringify({ v: 2, sub: 'alice', sid: 'sid-1' })}\n${data}`,
      )
      await raw.set(
        'v1:s:old',
        JSON.stringify({ v: 1, sub: 'alice', sid: 'sid-1', data }),
        'EX',
        60,
      )
      await raw.sadd('v1:sid:sid-1', 'old')
      assert.deepEqual(await store.get('old'), { subject: 'alice', sid: 'sid-1', data })
      assert.equal(await store.deleteBySid('sid-1'), 2)
      assert.equal(await store.get('old'), undefined)
      assert.equal(await store.get('new'), undefined)
    } finally {
      await store.close()
    }
  })

  it('reads records of the header-line format, and deletes them by index', async () => {
    const store = new RedisSessionStore({ url: redis.url, keyPrefix: 'v2:' })
    try {
      const data = JSON.stringify({ v: 1, note: 'line\nbreak stays escaped' })
      await raw.set('v2:s:a', `${JSON.stringify({ v: 2, sub: 'alice', sid: 'sid-1' })}\n${data}`)
      await raw.expire('v2:s:a', 60)
      await raw.sadd('v2:sid:sid-1', 'a')
      await raw.sadd('v2:sub:alice', 'a')
      assert.deepEqual(await store.get('a'), { subject: 'alice', sid: 'sid-1', data })
      assert.equal(await store.deleteBySid('sid-1'), 1)
      assert.equal(await store.get('a'), undefined)
      await raw.set('v2:s:b', `${JSON.stringify({ v: 3, sub: 'bob', sid: null })}\n{}`, 'EX', 60)
      assert.equal(await store.get('b'), undefined, 'an unknown newer version is no session')
    } finally {
      await store.close()
    }
  })

  it('reads tsgauth and ssokit environment variables', async () => {
    assert.deepEqual(optionsFromEnv({ SSOKIT_REDIS_URL: 'rediss://r.example:6380/2' }), {
      url: 'rediss://r.example:6380/2',
    })
    assert.deepEqual(
      optionsFromEnv({ OIDC_SESSION_STORE_HOST: 'r.example', OIDC_SESSION_STORE_PORT: '6390' }),
      {
        host: 'r.example',
        port: 6390,
      },
    )
    assert.equal(optionsFromEnv({}), undefined)
    assert.equal(RedisSessionStore.fromEnv({}), undefined)
    assert.throws(
      () => optionsFromEnv({ OIDC_SESSION_STORE_HOST: 'h', OIDC_SESSION_STORE_PORT: 'x' }),
      SsoTypeError,
    )
    const store = RedisSessionStore.fromEnv(
      { OIDC_SESSION_STORE_HOST: '127.0.0.1', OIDC_SESSION_STORE_PORT: String(redis.port) },
      { keyPrefix: 'env:' },
    )
    assert.ok(store)
    try {
      await store.set('e', { subject: 's', sid: undefined, data: 'from env' }, 60)
      assert.equal(await raw.exists('env:s:e'), 1)
    } finally {
      await store.close()
    }
  })

  it('refuses bad options when constructed', () => {
    const bad: unknown[] = [
      {},
      { url: 'http://127.0.0.1:6379' },
      { url: 'not a url' },
      { url: redis.url, host: '127.0.0.1' },
      { port: 70000 },
      { sentinels: [{ host: '127.0.0.1', port: 26379 }] },
      { sentinels: [] },
      { cluster: [] },
      { cluster: [{ host: '', port: 7000 }] },
      { url: redis.url, keyPrefix: '' },
      { url: redis.url, commandTimeout: 0 },
      { url: redis.url, connectTimeout: 1.5 },
      { host: '127.0.0.1', name: 'mymaster' },
    ]
    for (const options of bad) {
      assert.throws(
        () => new RedisSessionStore(options as ConstructorParameters<typeof RedisSessionStore>[0]),
        (error: unknown) => error instanceof SsoTypeError && error instanceof TypeError,
        JSON.stringify(options),
      )
    }
  })
})

describe('RedisSessionStore when Redis fails (O08)', { timeout: 30_000 }, () => {
  it('answers session_store_unavailable promptly while Redis is down, then recovers by itself', async () => {
    const down = await startRedis()
    const store = new RedisSessionStore({ url: down.url })
    try {
      const ns = randomUUID()
      await store.set(`${ns}-a`, { subject: ns, sid: `${ns}-sid`, data: 'd' }, 60)
      assert.equal(await store.get(`${ns}-missing`), undefined, 'a missing key is "no session"')

      await down.stop()
      const s = { subject: ns, sid: undefined, data: 'd' }
      const attempts: [string, () => Promise<unknown>][] = [
        ['get', () => store.get(`${ns}-a`)],
        ['get missing', () => store.get(`${ns}-missing`)],
        ['set', () => store.set(`${ns}-b`, s, 60)],
        ['delete', () => store.delete(`${ns}-a`)],
        ['deleteBySubject', () => store.deleteBySubject(ns)],
        ['deleteBySid', () => store.deleteBySid(`${ns}-sid`)],
        ['lock', () => store.lock(`${ns}-lock`, 10)],
      ]
      // Twice: once as the connection drops, once while it is known to be down.
      for (let round = 0; round < 2; round++) {
        for (const [name, attempt] of attempts) await assert.rejects(attempt, isUnavailable, name)
      }
      const fresh = new RedisSessionStore({ url: down.url })
      await assert.rejects(
        () => fresh.get('x'),
        isUnavailable,
        'a store started while Redis is down',
      )
      await fresh.close()

      await down.restart()
      let recovered: unknown = 'not yet'
      for (let i = 0; i < 100 && recovered === 'not yet'; i++) {
        try {
          recovered = await store.get(`${ns}-a`)
        } catch (error) {
          isUnavailable(error)
          await new Promise((resolve) => setTimeout(resolve, 100))
        }
      }
      assert.equal(recovered, undefined, 'the store reconnected; the restarted server kept no data')
      await store.set(`${ns}-c`, s, 60)
      assert.equal((await store.get(`${ns}-c`))?.data, 'd')
    } finally {
      await store.close()
      await down.stop()
    }
  })

  it('answers session_store_unavailable when Redis is too slow, and works again after', async () => {
    const raw = new Redis(redis.url)
    const store = new RedisSessionStore({ url: redis.url, commandTimeout: 200 })
    try {
      await store.set('slow', { subject: 's', sid: undefined, data: 'd' }, 60)
      await raw.call('CLIENT', 'PAUSE', '1000', 'ALL')
      await assert.rejects(() => store.get('slow'), isUnavailable)
      await assert.rejects(() => store.lock('slow', 5), isUnavailable)
      await raw.ping() // answered once the pause is over
      assert.equal((await store.get('slow'))?.data, 'd')
    } finally {
      await store.close()
      raw.disconnect()
    }
  })

  it('answers session_store_unavailable on a server error', async () => {
    const raw = new Redis(redis.url)
    const store = new RedisSessionStore({ url: redis.url, keyPrefix: 'wrongtype:' })
    try {
      await raw.hset('wrongtype:s:h', 'f', 'v')
      await raw.expire('wrongtype:s:h', 60)
      await assert.rejects(() => store.get('h'), isUnavailable)
    } finally {
      await store.close()
      raw.disconnect()
    }
  })
})
