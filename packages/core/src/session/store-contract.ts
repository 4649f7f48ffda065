/**
 * The behaviour every `SessionStore` must show, as a `node:test` suite. A store author calls
 * `runSessionStoreContract('my store', () => new MyStore(...))` from a test file; each case gets
 * a fresh store from the factory and closes it afterwards. Cases use random ids and subjects, so
 * stores sharing one backend between cases (a Redis server) do not see each other's records.
 *
 * Imported as `@ssokit/core/store-contract`, never from the main entry point, so applications do
 * not load the test runner.
 */
import { randomUUID } from 'node:crypto'
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { SessionStore, StoredSession } from './store.js'

export interface SessionStoreContractOptions {
  /**
   * Moves the clock of the stores made by the factory forward. Without it the expiry cases wait
   * in real time (once, for about `shortTtlSeconds`).
   */
  readonly advanceTime?: (ms: number) => void | Promise<void>
  /** The short TTL the expiry cases use, in seconds. Default 1. */
  readonly shortTtlSeconds?: number
  /** Timeout of the whole suite in ms, so a hanging store fails instead of stalling. Default 60 000. */
  readonly timeoutMs?: number
  /**
   * The cap of sessions per subject the factory's stores keep (`maxSessionsPerSubject`).
   * Default 50, the default of the stores ssokit ships.
   */
  readonly maxSessionsPerSubject?: number
}

const LONG_TTL = 600

function session(subject: string, sid: string | undefined, data: string): StoredSession {
  return { subject, sid, data }
}

async function assertSession(
  store: SessionStore,
  id: string,
  expected: StoredSession | undefined,
  message?: string,
): Promise<void> {
  const actual = await store.get(id)
  if (expected === undefined) {
    assert.equal(actual, undefined, message ?? `session ${JSON.stringify(id)} should be absent`)
    return
  }
  assert.ok(actual, message ?? `session ${JSON.stringify(id)} should be present`)
  assert.equal(actual.subject, expected.subject, 'subject')
  assert.equal(actual.sid, expected.sid, 'sid')
  assert.equal(actual.data, expected.data, 'data')
}

export function runSessionStoreContract(
  name: string,
  makeStore: () => Promise<SessionStore> | SessionStore,
  options: SessionStoreContractOptions = {},
): void {
  const shortTtl = options.shortTtlSeconds ?? 1
  const timeout = options.timeoutMs ?? 60_000
  const perSubject = options.maxSessionsPerSubject ?? 50

  /** Runs a case against a fresh store, with a fresh namespace for its ids and subjects. */
  function withStore(
    body: (store: SessionStore, ns: string) => Promise<void>,
  ): () => Promise<void> {
    return async () => {
      const store = await makeStore()
      try {
        await body(store, randomUUID())
      } finally {
        await store.close()
      }
    }
  }

  async function elapse(ms: number): Promise<void> {
    if (options.advanceTime) {
      await options.advanceTime(ms)
      return
    }
    await new Promise<void>((resolve) => setTimeout(resolve, ms))
  }

  describe(`SessionStore contract: ${name}`, { timeout }, () => {
    it(
      'resolves undefined for an unknown id',
      withStore(async (store, ns) => {
        await assertSession(store, `${ns}-missing`, undefined)
      }),
    )

    it(
      'returns what was set, with and without a sid',
      withStore(async (store, ns) => {
        const a = session(`${ns}-alice`, `${ns}-sid`, '{"v":1,"tokens":"a"}')
        const b = session(`${ns}-alice`, undefined, 'plain')
        await store.set(`${ns}-a`, a, LONG_TTL)
        await store.set(`${ns}-b`, b, LONG_TTL)
        await assertSession(store, `${ns}-a`, a)
        await assertSession(store, `${ns}-b`, b)
        const got = await store.get(`${ns}-b`)
        assert.ok(got)
        assert.equal('sid' in got ? got.sid : 'missing', undefined)
      }),
    )

    it(
      'overwrites a session and moves it between indexes',
      withStore(async (store, ns) => {
        const id = `${ns}-x`
        const before = session(`${ns}-s1`, `${ns}-sidA`, 'first')
        const after = session(`${ns}-s2`, `${ns}-sidB`, 'second')
        await store.set(id, before, LONG_TTL)
        await store.set(id, after, LONG_TTL)
        await assertSession(store, id, after)
        assert.equal(await store.deleteBySubject(before.subject), 0)
        assert.equal(await store.deleteBySid(`${ns}-sidA`), 0)
        await assertSession(
          store,
          id,
          after,
          'the stale index entries must not delete the new session',
        )
        assert.equal(await store.deleteBySid(`${ns}-sidB`), 1)
        await assertSession(store, id, undefined)
      }),
    )

    it(
      'deletes one session and ignores unknown ids',
      withStore(async (store, ns) => {
        const keep = session(`${ns}-s`, undefined, 'keep')
        await store.set(`${ns}-a`, session(`${ns}-s`, `${ns}-sid`, 'gone'), LONG_TTL)
        await store.set(`${ns}-b`, keep, LONG_TTL)
        await store.delete(`${ns}-a`)
        await store.delete(`${ns}-a`)
        await store.delete(`${ns}-never-set`)
        await assertSession(store, `${ns}-a`, undefined)
        await assertSession(store, `${ns}-b`, keep)
        assert.equal(await store.deleteBySid(`${ns}-sid`), 0)
        assert.equal(await store.deleteBySubject(`${ns}-s`), 1)
      }),
    )

    it(
      'deleteBySubject removes exactly that subject and counts it',
      withStore(async (store, ns) => {
        const alice = `${ns}-alice`
        const bob = `${ns}-bob`
        for (let i = 0; i < 3; i++) {
          await store.set(
            `${ns}-a${i}`,
            session(alice, i === 0 ? undefined : `${ns}-sid${i}`, `a${i}`),
            LONG_TTL,
          )
        }
        const b0 = session(bob, `${ns}-sid1`, 'b0')
        const b1 = session(bob, undefined, 'b1')
        await store.set(`${ns}-b0`, b0, LONG_TTL)
        await store.set(`${ns}-b1`, b1, LONG_TTL)
        assert.equal(await store.deleteBySubject(alice), 3)
        for (let i = 0; i < 3; i++) await assertSession(store, `${ns}-a${i}`, undefined)
        await assertSession(store, `${ns}-b0`, b0)
        await assertSession(store, `${ns}-b1`, b1)
        assert.equal(await store.deleteBySubject(alice), 0)
        assert.equal(await store.deleteBySubject(`${ns}-nobody`), 0)
        assert.equal(await store.deleteBySubject(`${ns}-*`), 0, 'no pattern matching on subjects')
      }),
    )

    it(
      'deleteBySid removes exactly the sessions of that sid and counts them',
      withStore(async (store, ns) => {
        const s = `${ns}-s`
        const other = session(s, `${ns}-sidB`, 'other')
        const none = session(s, undefined, 'none')
        await store.set(`${ns}-1`, session(s, `${ns}-sidA`, 'one'), LONG_TTL)
        await store.set(`${ns}-2`, session(s, `${ns}-sidA`, 'two'), LONG_TTL)
        await store.set(`${ns}-3`, other, LONG_TTL)
        await store.set(`${ns}-4`, none, LONG_TTL)
        assert.equal(await store.deleteBySid(`${ns}-sidA`), 2)
        await assertSession(store, `${ns}-1`, undefined)
        await assertSession(store, `${ns}-2`, undefined)
        await assertSession(store, `${ns}-3`, other)
        await assertSession(store, `${ns}-4`, none)
        assert.equal(await store.deleteBySid(`${ns}-sidA`), 0)
        assert.equal(await store.deleteBySid(`${ns}-unknown`), 0)
        assert.equal(await store.deleteBySubject(s), 2)
      }),
    )

    it(
      'indexes do not resurrect or reach deleted sessions',
      withStore(async (store, ns) => {
        const id = `${ns}-reused`
        await store.set(id, session(`${ns}-s`, `${ns}-sidA`, 'old'), LONG_TTL)
        await store.delete(id)
        const reused = session(`${ns}-t`, `${ns}-sidB`, 'new')
        await store.set(id, reused, LONG_TTL)
        assert.equal(await store.deleteBySubject(`${ns}-s`), 0)
        assert.equal(await store.deleteBySid(`${ns}-sidA`), 0)
        await assertSession(store, id, reused)

        const again = session(`${ns}-u`, `${ns}-sidC`, 'again')
        await store.set(`${ns}-y`, again, LONG_TTL)
        assert.equal(await store.deleteBySubject(`${ns}-u`), 1)
        await assertSession(store, `${ns}-y`, undefined)
        await store.set(`${ns}-y`, again, LONG_TTL)
        await assertSession(store, `${ns}-y`, again)
        assert.equal(await store.deleteBySid(`${ns}-sidC`), 1)
        assert.equal(await store.deleteBySubject(`${ns}-u`), 0)
      }),
    )

    it(
      'gives a lock to one holder at a time and frees it on release',
      withStore(async (store, ns) => {
        const name = `${ns}-refresh`
        const release = await store.lock(name, LONG_TTL)
        assert.ok(release, 'the first taker gets the lock')
        assert.equal(await store.lock(name, LONG_TTL), undefined, 'a second taker is refused')
        const otherName = await store.lock(`${ns}-other`, LONG_TTL)
        assert.ok(otherName, 'locks with other names are independent')
        await release()
        const next = await store.lock(name, LONG_TTL)
        assert.ok(next, 'a released lock can be taken again')
        await release()
        assert.equal(
          await store.lock(name, LONG_TTL),
          undefined,
          "a stale release does not free the new holder's lock",
        )
        await next()
        await next()
        await otherName()
      }),
    )

    it(
      'gives a contended lock to exactly one of many concurrent takers',
      withStore(async (store, ns) => {
        const results = await Promise.all(
          Array.from({ length: 20 }, () => store.lock(`${ns}-race`, LONG_TTL)),
        )
        const winners = results.filter((r) => r !== undefined)
        assert.equal(winners.length, 1)
        await winners[0]?.()
      }),
    )

    it(
      'expires sessions and locks after their TTL',
      withStore(async (store, ns) => {
        const s = `${ns}-s`
        const lasting = session(s, `${ns}-sid`, 'lasting')
        await store.set(`${ns}-short`, session(s, `${ns}-sid`, 'short'), shortTtl)
        await store.set(`${ns}-long`, lasting, LONG_TTL)
        const stale = await store.lock(`${ns}-lock`, shortTtl)
        assert.ok(stale)
        await assertSession(
          store,
          `${ns}-short`,
          session(s, `${ns}-sid`, 'short'),
          'present before its TTL',
        )

        await elapse(shortTtl * 1000 + 250)

        await assertSession(store, `${ns}-short`, undefined, 'gone after its TTL')
        await assertSession(store, `${ns}-long`, lasting)
        const fresh = await store.lock(`${ns}-lock`, LONG_TTL)
        assert.ok(fresh, 'an expired lock can be taken')
        await stale()
        assert.equal(
          await store.lock(`${ns}-lock`, LONG_TTL),
          undefined,
          'releasing an expired lock frees nothing',
        )
        await fresh()
        assert.equal(await store.deleteBySid(`${ns}-sid`), 1, 'expired sessions are not counted')
        assert.equal(await store.deleteBySubject(s), 0)
      }),
    )

    it(
      'refuses a TTL that is not a positive number',
      withStore(async (store, ns) => {
        for (const ttl of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
          await assert.rejects(
            async () => store.set(`${ns}-bad`, session(`${ns}-s`, undefined, 'x'), ttl),
            TypeError,
          )
          await assert.rejects(async () => store.lock(`${ns}-bad`, ttl), TypeError)
        }
        await assertSession(store, `${ns}-bad`, undefined)
      }),
    )

    it(
      'round-trips unicode and large data unchanged',
      withStore(async (store, ns) => {
        const unicode = session(
          `${ns}-Zoë 山田 🙂`,
          `${ns}-sid-ü`,
          'héllo wörld ✓ 🙂 \u0000 \n\r\t "quoted" \\ \u2028 {"json":true}',
        )
        await store.set(`${ns}-u`, unicode, LONG_TTL)
        await assertSession(store, `${ns}-u`, unicode)
        const large = session(`${ns}-big`, undefined, 'x'.repeat(256 * 1024) + '🙂'.repeat(4096))
        await store.set(`${ns}-big`, large, LONG_TTL)
        await assertSession(store, `${ns}-big`, large)
        assert.equal(await store.deleteBySubject(unicode.subject), 1)
        assert.equal(await store.deleteBySid(`${ns}-sid-ü`), 0)
      }),
    )

    it(
      'keeps ids with odd characters apart',
      withStore(async (store, ns) => {
        const ids = [
          `${ns}:a:b`,
          `${ns}{tag}`,
          `${ns}*`,
          `${ns}?`,
          `${ns}[ab]`,
          `${ns} space`,
          `${ns}\nnewline`,
          `${ns}%2F/..`,
          `${ns}ünï`,
          `${ns}${'z'.repeat(1000)}`,
        ]
        const subject = `${ns}:subject*`
        for (const [i, id] of ids.entries())
          await store.set(id, session(subject, undefined, `v${i}`), LONG_TTL)
        for (const [i, id] of ids.entries())
          await assertSession(store, id, session(subject, undefined, `v${i}`))
        await store.delete(`${ns}*`)
        await assertSession(store, `${ns}*`, undefined)
        await assertSession(
          store,
          `${ns}?`,
          session(subject, undefined, 'v3'),
          'a glob-like id deletes only itself',
        )
        assert.equal(await store.deleteBySubject(`${ns}:subject?`), 0)
        assert.equal(await store.deleteBySubject(subject), ids.length - 1)
      }),
    )

    it(
      'H05 caps the sessions of one subject: its oldest go first, other users keep theirs',
      withStore(async (store, ns) => {
        const bystander = session(`${ns}-bob`, `${ns}-bob-sid`, 'bob')
        await store.set(`${ns}-bob`, bystander, LONG_TTL)
        const subject = `${ns}-mallory`
        const ids = Array.from({ length: perSubject + 5 }, (_, i) => `${ns}-m${i}`)
        const mine = (i: number) => session(subject, `${ns}-msid${i}`, `m${i}`)
        for (const [i, id] of ids.slice(0, perSubject).entries())
          await store.set(id, mine(i), LONG_TTL)
        // Rewritten by its owner (a refresh), the oldest session is still the oldest.
        await store.set(ids[0] ?? '', { ...mine(0), data: 'refreshed' }, LONG_TTL)
        for (const [i, id] of ids.entries()) {
          if (i >= perSubject) await store.set(id, mine(i), LONG_TTL)
        }
        for (const [i, id] of ids.entries()) {
          await assertSession(
            store,
            id,
            i < 5 ? undefined : mine(i),
            i < 5 ? `the oldest session ${i} should be gone` : `session ${i} should be kept`,
          )
        }
        await assertSession(store, `${ns}-bob`, bystander, "another user's session is kept")
        assert.equal(await store.deleteBySid(`${ns}-msid0`), 0)
        assert.equal(await store.deleteBySubject(subject), perSubject)
        assert.equal(await store.deleteBySubject(bystander.subject), 1)
      }),
    )

    it(
      'handles concurrent sets of many ids and of one id',
      withStore(async (store, ns) => {
        const subject = `${ns}-s`
        await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            store.set(`${ns}-${i}`, session(subject, `${ns}-sid${i % 5}`, `d${i}`), LONG_TTL),
          ),
        )
        const got = await Promise.all(Array.from({ length: 50 }, (_, i) => store.get(`${ns}-${i}`)))
        assert.deepEqual(
          got.map((g) => g?.data),
          Array.from({ length: 50 }, (_, i) => `d${i}`),
        )
        assert.equal(await store.deleteBySid(`${ns}-sid0`), 10)
        assert.equal(await store.deleteBySubject(subject), 40)

        const shared = `${ns}-shared`
        const subjects = Array.from({ length: 10 }, (_, i) => `${ns}-w${i}`)
        await Promise.all(
          subjects.map((s) => store.set(shared, session(s, `${s}-sid`, s), LONG_TTL)),
        )
        const winner = await store.get(shared)
        assert.ok(winner)
        assert.ok(subjects.includes(winner.subject))
        assert.equal(winner.data, winner.subject, 'one whole write wins')
        const counts = await Promise.all(subjects.map((s) => store.deleteBySubject(s)))
        assert.equal(
          counts.reduce((a, b) => a + b, 0),
          1,
        )
        await assertSession(store, shared, undefined)
      }),
    )
  })
}
