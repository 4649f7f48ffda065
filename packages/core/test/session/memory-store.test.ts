import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runSessionStoreContract } from '@ssokit/core/store-contract'
import { SsoTypeError } from '../../src/errors.js'
import { MemorySessionStore } from '../../src/session/memory-store.js'
import type { StoredSession } from '../../src/session/store.js'

let clock = Date.UTC(2026, 0, 1)

runSessionStoreContract('MemorySessionStore', () => new MemorySessionStore({ now: () => clock }), {
  advanceTime: (ms) => {
    clock += ms
  },
})

function session(subject: string, data = subject, sid?: string): StoredSession {
  return { subject, sid, data }
}

describe('MemorySessionStore bounds', () => {
  it('H05 one account signing in over and over evicts only its own oldest sessions, not idle users', async () => {
    const store = new MemorySessionStore({ maxSessions: 100 })
    try {
      await store.set('idle-bob', session('bob', 'bob', 'sid-bob'), 600)
      await store.set('idle-carol', session('carol'), 600)
      for (let i = 0; i < 1000; i++) await store.set(`m${i}`, session('mallory', `m${i}`), 600)
      assert.equal((await store.get('idle-bob'))?.data, 'bob')
      assert.equal((await store.get('idle-carol'))?.data, 'carol')
      assert.equal(store.size, 52)
      assert.equal(await store.get('m949'), undefined)
      assert.equal((await store.get('m950'))?.data, 'm950')
      assert.equal(await store.deleteBySubject('mallory'), 50)
    } finally {
      await store.close()
    }
  })

  it('H05 maxSessionsPerSubject is configurable; expired sessions of the subject go before live ones', async () => {
    let now = 0
    const store = new MemorySessionStore({ maxSessionsPerSubject: 2, now: () => now })
    try {
      await store.set('live', session('alice', 'live'), 600)
      await store.set('short', session('alice', 'short'), 1)
      now += 2000
      await store.set('new', session('alice', 'new'), 600)
      assert.equal((await store.get('live'))?.data, 'live', 'the expired one made room')
      await store.set('newer', session('alice', 'newer'), 600)
      assert.equal(await store.get('live'), undefined)
      assert.deepEqual(
        [(await store.get('new'))?.data, (await store.get('newer'))?.data],
        ['new', 'newer'],
      )
      assert.throws(() => new MemorySessionStore({ maxSessionsPerSubject: 0 }), SsoTypeError)
    } finally {
      await store.close()
    }
  })

  it('evicts the least recently used session past maxSessions, keeping indexes exact', async () => {
    const store = new MemorySessionStore({ maxSessions: 3 })
    try {
      await store.set('a', session('alice', 'a', 'sid-a'), 60)
      await store.set('b', session('bob', 'b', 'sid-b'), 60)
      await store.set('c', session('carol', 'c'), 60)
      assert.ok(await store.get('a'), 'reading a makes b the least recently used')
      await store.set('d', session('dave', 'd'), 60)
      assert.equal(store.size, 3)
      assert.equal(await store.get('b'), undefined)
      assert.equal((await store.get('a'))?.data, 'a')
      assert.equal((await store.get('c'))?.data, 'c')
      assert.equal((await store.get('d'))?.data, 'd')
      assert.equal(await store.deleteBySubject('bob'), 0)
      assert.equal(await store.deleteBySid('sid-b'), 0)
      assert.equal(await store.deleteBySid('sid-a'), 1)
    } finally {
      await store.close()
    }
  })

  it('stays at maxSessions under a flood of new sessions', async () => {
    const store = new MemorySessionStore({ maxSessions: 100 })
    try {
      for (let i = 0; i < 5000; i++) await store.set(`id${i}`, session(`user${i % 7}`), 60)
      assert.equal(store.size, 100)
      let remaining = 0
      for (let u = 0; u < 7; u++) remaining += await store.deleteBySubject(`user${u}`)
      assert.equal(remaining, 100, 'the indexes hold only the sessions still stored')
      assert.equal(store.size, 0)
    } finally {
      await store.close()
    }
  })

  it('overwriting an id does not count twice towards the bound', async () => {
    const store = new MemorySessionStore({ maxSessions: 2 })
    try {
      await store.set('a', session('alice'), 60)
      await store.set('b', session('bob'), 60)
      await store.set('a', session('alice', 'again'), 60)
      assert.equal(store.size, 2)
      assert.equal((await store.get('b'))?.data, 'bob')
      assert.equal((await store.get('a'))?.data, 'again')
    } finally {
      await store.close()
    }
  })

  it('refuses a new lock rather than breaking a live one when every lock slot is taken', async () => {
    let now = 0
    const store = new MemorySessionStore({ maxSessions: 2, now: () => now })
    try {
      assert.ok(await store.lock('one', 10))
      const two = await store.lock('two', 20)
      assert.ok(two)
      assert.equal(await store.lock('three', 10), undefined)
      await two()
      assert.ok(await store.lock('three', 20), 'a released slot is reused')
      now += 10_000
      assert.ok(await store.lock('four', 10), 'an expired lock gives up its slot')
      assert.equal(await store.lock('three', 10), undefined, 'the live lock is kept')
    } finally {
      await store.close()
    }
  })

  it('rejects bad options at construction', () => {
    assert.throws(() => new MemorySessionStore({ maxSessions: 0 }), SsoTypeError)
    assert.throws(() => new MemorySessionStore({ maxSessions: 1.5 }), SsoTypeError)
    assert.throws(() => new MemorySessionStore({ sweepIntervalMs: -1 }), SsoTypeError)
  })
})

describe('MemorySessionStore expiry', () => {
  it('expires on read at exactly the TTL by the injected clock', async () => {
    let now = 1_000
    const store = new MemorySessionStore({ now: () => now })
    try {
      await store.set('a', session('alice', 'a', 'sid'), 30)
      now += 29_999
      assert.equal((await store.get('a'))?.data, 'a')
      now += 1
      assert.equal(await store.get('a'), undefined)
      assert.equal(store.size, 0, 'an expired session is dropped when read')
      assert.equal(await store.deleteBySid('sid'), 0)
    } finally {
      await store.close()
    }
  })

  it('sweeps expired sessions and locks that are never read', async () => {
    let now = 0
    const store = new MemorySessionStore({ now: () => now })
    try {
      await store.set('short', session('alice'), 5)
      await store.set('long', session('alice'), 50)
      assert.ok(await store.lock('l', 5))
      now += 6_000
      assert.equal(store.size, 2)
      store.sweep()
      assert.equal(store.size, 1)
      assert.ok(await store.lock('l', 5), 'the swept lock is free')
      assert.equal(await store.deleteBySubject('alice'), 1)
    } finally {
      await store.close()
    }
  })

  it('a read refreshes recency but not expiry', async () => {
    let now = 0
    const store = new MemorySessionStore({ now: () => now })
    try {
      await store.set('a', session('alice'), 10)
      now += 9_000
      assert.ok(await store.get('a'))
      now += 1_000
      assert.equal(await store.get('a'), undefined)
    } finally {
      await store.close()
    }
  })
})
