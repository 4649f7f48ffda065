/**
 * Redis configuration mistakes against real redis-servers (a password, ACL users, TLS): each
 * one has its own message from `ready()` and from every operation, never a password in it, and
 * never a silent fall-back to database 0.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { Redis } from 'ioredis'
import { createSessionAuth, SsoError, type SsoEvent } from '@ssokit/core'
import { RedisSessionStore, type RedisSessionStoreOptions } from '@ssokit/redis'
import { startDemo } from '../../packages/cli/src/demo/index.js'
import { freePort, startRedis } from '../support/redis.js'

const PASSWORD = 'right-password-7d1f'
const APP_PASSWORD = 'app-password-9c2e'
const LIMITED_PASSWORD = 'limited-password-4b8a'

const locked = await startRedis({
  args: [
    '--requirepass',
    PASSWORD,
    '--user',
    'app',
    'on',
    `>${APP_PASSWORD}`,
    '~ssokit:*',
    '+@all',
    '--user',
    'limited',
    'on',
    `>${LIMITED_PASSWORD}`,
    '~*',
    '+ping',
    '+client|info',
  ],
})
const plain = await startRedis()
const tls = await startRedis({ tls: true })
after(async () => {
  await Promise.all([locked.stop(), plain.stop(), tls.stop()])
})

const at = (port: number): string => `127.0.0.1:${port}`

/** The rejection of `ready()` on a new store, which is closed afterwards. */
async function refusal(options: RedisSessionStoreOptions): Promise<SsoError> {
  const store = new RedisSessionStore(options)
  try {
    const error = await store.ready().then(
      () => assert.fail('ready() resolved'),
      (e: unknown) => e,
    )
    assert.ok(error instanceof SsoError, String(error))
    assert.equal(error.code, 'session_store_unavailable')
    for (const secret of [PASSWORD, APP_PASSWORD, LIMITED_PASSWORD, 'not-the-password'])
      assert.equal(error.message.includes(secret), false, 'no password in the message')
    return error
  } finally {
    await store.close()
  }
}

function reasonOf(error: SsoError): unknown {
  return (error.cause as { reason?: unknown } | undefined)?.reason
}

describe('RedisSessionStore.ready()', () => {
  it('resolves with the right password, and for an ACL user', async () => {
    for (const options of [
      { url: `redis://:${PASSWORD}@${at(locked.port)}` },
      { url: `redis://app:${APP_PASSWORD}@${at(locked.port)}/0` },
      { host: '127.0.0.1', port: locked.port, username: 'app', password: APP_PASSWORD },
    ]) {
      const store = new RedisSessionStore(options)
      try {
        await store.ready()
      } finally {
        await store.close()
      }
    }
  })

  it('names a missing password (NOAUTH)', async () => {
    const error = await refusal({ url: locked.url })
    assert.equal(
      error.message,
      `Redis at ${at(locked.port)} requires a password (NOAUTH) and none was given: set password (or a redis://:password@host URL).`,
    )
    assert.equal(reasonOf(error), 'redis_noauth')
  })

  it('names a wrong password of the default user (WRONGPASS)', async () => {
    const error = await refusal({ url: `redis://:not-the-password@${at(locked.port)}` })
    assert.match(error.message, /refused the default user or its password \(WRONGPASS\)/)
    assert.equal(reasonOf(error), 'redis_wrongpass')
  })

  it('names an unknown ACL user', async () => {
    const error = await refusal({
      host: '127.0.0.1',
      port: locked.port,
      username: 'ghost',
      password: 'not-the-password',
    })
    assert.equal(
      error.message,
      `Redis at ${at(locked.port)} refused the user "ghost" or its password (WRONGPASS): the ACL user does not exist, is disabled, or the password is wrong.`,
    )
  })

  it('names an ACL user that may not read the store (NOPERM)', async () => {
    const error = await refusal({
      url: `redis://limited:${LIMITED_PASSWORD}@${at(locked.port)}`,
    })
    assert.match(error.message, /does not allow the user "limited" a command or key .* \(NOPERM\)/)
    assert.equal(reasonOf(error), 'redis_noperm')
  })

  it('names a server that is not there', async () => {
    const port = await freePort()
    const error = await refusal({ url: `redis://${at(port)}` })
    assert.equal(
      error.message,
      `Redis at ${at(port)} refuses connections (ECONNREFUSED): is redis-server running there?`,
    )
  })

  it('names a plain client talking to a TLS server', async () => {
    const error = await refusal({ url: `redis://${at(tls.port)}` })
    assert.match(
      error.message,
      /closed the connection before answering \((ECONNRESET|EPIPE)\): does it expect TLS \(a rediss:\/\/ URL, or tls: true\)\?/,
    )
    assert.equal(reasonOf(error), 'redis_tls_expected')
  })

  it('names a TLS client talking to a plain server', async () => {
    const error = await refusal({ url: `rediss://${at(plain.port)}`, tls: { ca: tls.ca } })
    assert.equal(reasonOf(error), 'redis_tls_refused')
    assert.match(error.message, /(completed no TLS handshake within 1000 ms|does not speak TLS)/)
  })

  it('resolves for a TLS client of a TLS server', async () => {
    const store = new RedisSessionStore({ url: tls.url, tls: { ca: tls.ca } })
    try {
      await store.ready()
    } finally {
      await store.close()
    }
  })
})

describe('a database index the server does not have', () => {
  const url = `redis://:${PASSWORD}@${at(locked.port)}/99`

  it('is named by ready()', async () => {
    const error = await refusal({ url })
    assert.equal(
      error.message,
      `Redis at ${at(locked.port)} has no database 99 (DB index is out of range): use an index below its "databases" setting (16 by default).`,
    )
    assert.equal(reasonOf(error), 'redis_db_out_of_range')
  })

  it('refuses every operation instead of using database 0', async () => {
    const raw = new Redis(`redis://:${PASSWORD}@${at(locked.port)}/0`)
    const store = new RedisSessionStore({ url, cache: false })
    try {
      await raw.flushdb()
      await store.ready().catch(() => undefined)
      await assert.rejects(store.set('s1', { subject: 'alice', sid: undefined, data: 'x' }, 60), {
        code: 'session_store_unavailable',
        message: /has no database 99/,
      })
      await assert.rejects(store.get('s1'), { message: /has no database 99/ })
      assert.equal(await raw.dbsize(), 0, 'nothing was written to database 0')
    } finally {
      raw.disconnect()
      await store.close()
    }
  })

  it('is caught by ready() on a client passed in', async () => {
    const client = new Redis(url, { maxRetriesPerRequest: 0 })
    client.on('error', () => undefined)
    const store = new RedisSessionStore({ client })
    try {
      const error = await store.ready().then(
        () => assert.fail('ready() resolved'),
        (e: unknown) => e,
      )
      assert.ok(error instanceof SsoError)
      assert.match(error.message, /has no database 99 \(the connection is on database 0\)/)
    } finally {
      await store.close()
      client.disconnect()
    }
  })
})

describe('a library-built store behind createSessionAuth', () => {
  it('gives its cause to ready() and to the event hook, once', async () => {
    const events: SsoEvent[] = []
    const store = new RedisSessionStore({ url: `redis://:not-the-password@${at(locked.port)}` })
    const providerPort = await freePort()
    const auth = createSessionAuth({
      issuer: `http://127.0.0.1:${providerPort}/auth/realms/dev`,
      clientId: 'web-app',
      clientSecret: 'web-app-secret',
      publicUrl: 'https://app.example.org',
      secret: 'session-secret-for-tests-0123456789abcdef',
      store,
      onEvent: (e) => events.push(e),
    })
    try {
      for (let i = 0; i < 2; i++) {
        const error = await auth.ready().then(
          () => assert.fail('ready() resolved'),
          (e: unknown) => e,
        )
        assert.ok(error instanceof SsoError)
        assert.match(
          error.message,
          /The session store cannot answer: Redis at 127\.0\.0\.1:\d+ refused the default user or its password \(WRONGPASS\)/,
        )
      }
      const down = events.filter((e) => e.type === 'store_unavailable')
      assert.equal(down.length, 1)
      assert.equal(down[0]?.reason, 'redis_wrongpass')
      assert.equal(down[0].level, 'error')
      for (const event of events)
        assert.equal(JSON.stringify(event).includes('not-the-password'), false)
    } finally {
      await store.close()
    }
  })
})

describe('ssokit demo --redis', () => {
  it('says why it cannot use Redis before starting anything', async () => {
    await assert.rejects(
      startDemo({ idpPort: 0, appPort: 0, redis: `redis://:not-the-password@${at(locked.port)}` }),
      (error: unknown) => {
        assert.ok(error instanceof Error)
        assert.equal(
          error.message,
          `cannot use --redis redis://:***@${at(locked.port)}: Redis at ${at(locked.port)} refused the default user or its password (WRONGPASS): the ACL user does not exist, is disabled, or the password is wrong.`,
        )
        return true
      },
    )
  })
})
