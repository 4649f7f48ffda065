import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'

import { SsoError } from '@ssokit/core'
import { DEFAULT_IDP_CONFIG, startIdp, type RunningIdp } from '@ssokit/idp'
import type { Browser } from 'playwright-core'

import { deviceLogin, formatDevicePrompt, type DevicePrompt } from '../src/index.js'
import { abortableSleep } from '../src/options.js'
import { approveDeviceInChromium, launchChromium } from './chromium.js'
import { claimsOf, fakeJwt, json, removeTempDirs, startFixture, tempDir } from './helpers.js'

function isCode(code: string) {
  return (error: unknown) => {
    assert.ok(error instanceof SsoError, `expected an SsoError, got ${String(error)}`)
    assert.equal(error.code, code)
    return true
  }
}

/** A clock that only moves when the code under test sleeps: the schedule, without waiting. */
function fakeTime() {
  let now = 1_000_000
  const waits: number[] = []
  return {
    waits,
    clock: () => now,
    sleep: (ms: number) => {
      waits.push(ms)
      now += ms
      return Promise.resolve()
    },
  }
}

const DEVICE_ANSWER = {
  device_code: 'the-device-code',
  user_code: 'WDJB-MJHT',
  verification_uri: 'https://sso.example.org/device',
  verification_uri_complete: 'https://sso.example.org/device?user_code=WDJB-MJHT',
  expires_in: 600,
}

/**
 * A provider whose device endpoint answers `device` and whose token endpoint plays `polls`.
 * A stand-in only for what the idp cannot be made to answer: oidc-provider defines `slow_down`
 * but never sends it (however fast it is polled), always sends an `interval`, and does not drop
 * connections. Approval, refusal and expiry are tested against the idp further down.
 */
async function deviceFixture(
  device: Record<string, unknown>,
  polls: (number | Record<string, unknown> | 'drop')[],
) {
  let served = 0
  return startFixture(
    (req, res) => {
      if (req.url === '/device/auth') {
        json(res, 200, device)
        return
      }
      const next = polls[Math.min(served++, polls.length - 1)]
      if (next === 'drop') {
        res.destroy()
        return
      }
      if (typeof next === 'object') {
        json(res, 200, next)
        return
      }
      json(res, 400, {
        error: ['authorization_pending', 'slow_down', 'access_denied', 'expired_token'][next ?? 0],
      })
    },
    (origin) => ({
      issuer: origin,
      token_endpoint: `${origin}/token`,
      device_authorization_endpoint: `${origin}/device/auth`,
    }),
  )
}

const PENDING = 0
const SLOW_DOWN = 1
const DENIED = 2
const EXPIRED = 3

describe('deviceLogin: RFC 8628 polling against a provider that plays each answer', () => {
  after(removeTempDirs)

  it('D08 waits 5 s without an interval, adds 5 s per slow_down for every later poll, stops on access_denied', async () => {
    const fixture = await deviceFixture(DEVICE_ANSWER, [PENDING, SLOW_DOWN, SLOW_DOWN, DENIED])
    const time = fakeTime()
    const prompts: DevicePrompt[] = []
    try {
      const source = deviceLogin(
        {
          issuer: fixture.url,
          clientId: 'cli',
          cache: false,
          onPrompt: (p) => void prompts.push(p),
        },
        { clock: time.clock, sleep: time.sleep },
      )
      await assert.rejects(source.token(), isCode('access_denied'))
      assert.deepEqual(time.waits, [5000, 5000, 10000, 15000])
      const polls = fixture.requests.filter((r) => r.path === '/token')
      assert.equal(polls.length, 4)
      for (const poll of polls) {
        const body = new URLSearchParams(poll.body)
        assert.equal(body.get('grant_type'), 'urn:ietf:params:oauth:grant-type:device_code')
        assert.equal(body.get('device_code'), 'the-device-code')
      }
      // Printed as received.
      assert.equal(prompts.length, 1)
      const [shown] = prompts
      assert.ok(shown)
      assert.equal(shown.userCode, DEVICE_ANSWER.user_code)
      assert.equal(shown.verificationUri, DEVICE_ANSWER.verification_uri)
      assert.equal(shown.verificationUriComplete, DEVICE_ANSWER.verification_uri_complete)
      assert.equal(shown.expiresAt.getTime(), 1_000_000 + 600_000)
    } finally {
      await fixture.close()
    }
  })

  it('D08 honours the server interval, stops at once on expired_token', async () => {
    const fixture = await deviceFixture({ ...DEVICE_ANSWER, interval: 7 }, [PENDING, EXPIRED])
    const time = fakeTime()
    try {
      const source = deviceLogin(
        { issuer: fixture.url, clientId: 'cli', cache: false, onPrompt: () => undefined },
        time,
      )
      await assert.rejects(source.token(), isCode('device_code_expired'))
      assert.deepEqual(time.waits, [7000, 7000])
      assert.equal(fixture.requests.filter((r) => r.path === '/token').length, 2)
    } finally {
      await fixture.close()
    }
  })

  it('D08 never polls after expires_in; the timeout option ends it sooner as login_timeout', async () => {
    const fixture = await deviceFixture({ ...DEVICE_ANSWER, expires_in: 12 }, [PENDING])
    try {
      const time = fakeTime()
      const source = deviceLogin(
        { issuer: fixture.url, clientId: 'cli', cache: false, onPrompt: () => undefined },
        time,
      )
      await assert.rejects(source.token(), isCode('device_code_expired'))
      assert.deepEqual(time.waits, [5000, 5000, 2000])
      assert.equal(fixture.requests.filter((r) => r.path === '/token').length, 2)

      const short = fakeTime()
      const limited = deviceLogin(
        {
          issuer: fixture.url,
          clientId: 'cli',
          cache: false,
          timeout: 7,
          onPrompt: () => undefined,
        },
        short,
      )
      await assert.rejects(limited.token(), isCode('login_timeout'))
      assert.deepEqual(short.waits, [5000, 2000])
    } finally {
      await fixture.close()
    }
  })

  it('D08 polls less often, never faster, after a network error, then takes the token', async () => {
    const token = fakeJwt({ sub: 'alice', exp: 2_000_000, iat: 1_000 })
    const fixture = await deviceFixture(DEVICE_ANSWER, [
      'drop',
      PENDING,
      { access_token: token, token_type: 'Bearer', expires_in: 300, refresh_token: 'r1' },
    ])
    const time = fakeTime()
    try {
      const source = deviceLogin(
        { issuer: fixture.url, clientId: 'cli', cache: false, onPrompt: () => undefined },
        { ...time, log: () => undefined },
      )
      assert.equal(await source.token(), token)
      assert.deepEqual(time.waits, [5000, 10000, 10000])
      assert.equal((await source.identity()).refreshable, true)
    } finally {
      await fixture.close()
    }
  })

  it('D08 refuses a verification URI that is not https and a user code with control characters, before showing anything', async () => {
    for (const [answer, code] of [
      [
        { ...DEVICE_ANSWER, verification_uri: 'http://sso.example.org/device' },
        'insecure_transport',
      ],
      [
        { ...DEVICE_ANSWER, verification_uri_complete: 'http://sso.example.org/device?c=1' },
        'insecure_transport',
      ],
      [{ ...DEVICE_ANSWER, user_code: 'AB\u001b[2JCD' }, 'token_response_invalid'],
      [
        { ...DEVICE_ANSWER, verification_uri: 'https://sso.example.org/\u001b]8;;x' },
        'token_response_invalid',
      ],
    ] as const) {
      const fixture = await deviceFixture(answer, [PENDING])
      let shown = 0
      try {
        const source = deviceLogin(
          {
            issuer: fixture.url,
            clientId: 'cli',
            cache: false,
            onPrompt: () => {
              shown++
            },
          },
          fakeTime(),
        )
        await assert.rejects(source.token(), isCode(code))
        assert.equal(shown, 0)
        assert.equal(fixture.requests.filter((r) => r.path === '/token').length, 0)
      } finally {
        await fixture.close()
      }
    }
  })

  it('stops waiting with login_cancelled when its AbortSignal aborts', async () => {
    const fixture = await deviceFixture(DEVICE_ANSWER, [PENDING])
    try {
      const controller = new AbortController()
      const source = deviceLogin({
        issuer: fixture.url,
        clientId: 'cli',
        cache: false,
        signal: controller.signal,
        onPrompt: () => {
          setTimeout(() => {
            controller.abort()
          }, 50)
        },
      })
      await assert.rejects(source.token(), isCode('login_cancelled'))
      assert.equal(fixture.requests.filter((r) => r.path === '/token').length, 0)
      // An aborted signal starts no login at all.
      await assert.rejects(source.token(), isCode('login_cancelled'))
      assert.equal(fixture.requests.filter((r) => r.path === '/device/auth').length, 1)
    } finally {
      await fixture.close()
    }
  })

  it('prints the code, both URIs and a QR code of the complete URI', async () => {
    const text = await formatDevicePrompt(
      {
        userCode: 'WDJB-MJHT',
        verificationUri: DEVICE_ANSWER.verification_uri,
        verificationUriComplete: DEVICE_ANSWER.verification_uri_complete,
        expiresAt: new Date(600_000),
      },
      { qr: true, now: 0 },
    )
    assert.match(text, /open https:\/\/sso\.example\.org\/device\n/)
    assert.match(text, /enter the code: WDJB-MJHT\n/)
    assert.match(text, /Or open https:\/\/sso\.example\.org\/device\?user_code=WDJB-MJHT or scan/)
    assert.match(text, /[▀▄█]/)
    assert.match(text, /expires in 10 minutes/)
    const plain = await formatDevicePrompt(
      {
        userCode: 'X',
        verificationUri: 'https://a.example/d',
        verificationUriComplete: undefined,
        expiresAt: new Date(60_000),
      },
      { qr: false, now: 0 },
    )
    assert.doesNotMatch(plain, /[▀▄█]|Or open/)
  })
})

describe('deviceLogin against the idp, approved in Chromium', () => {
  let idp: RunningIdp
  let shortIdp: RunningIdp
  let browser: Browser
  before(async () => {
    ;[idp, shortIdp, browser] = await Promise.all([
      startIdp({ port: 0 }),
      startIdp({ port: 0, config: { ...DEFAULT_IDP_CONFIG, device_code_ttl: 2 } }),
      launchChromium(),
    ])
  })
  after(async () => {
    await Promise.all([idp.close(), shortIdp.close(), browser.close()])
    await removeTempDirs()
  })

  /** Polls every 50 ms instead of 5 s: the idp's codes, pages and tokens stay real. */
  const quick = { sleep: (ms: number, signal?: AbortSignal) => abortableSleep(ms / 100, signal) }

  it('D08 a device login approved at the verification page gives alice a refreshable token, cached 0600 and reused without a prompt', async () => {
    const home = await tempDir()
    const env = { SSOKIT_HOME: home }
    const bodies: { url: string; body: string }[] = []
    const recording: typeof fetch = async (input, init) => {
      const url = input instanceof Request ? input.url : input.toString()
      const body = init?.body
      bodies.push({
        url,
        body: typeof body === 'string' || body instanceof URLSearchParams ? body.toString() : '',
      })
      return fetch(input, init)
    }
    let page = ''
    const source = deviceLogin(
      {
        issuer: idp.issuer,
        clientId: 'demo-cli',
        onPrompt: async (prompt) => {
          assert.ok(prompt.verificationUriComplete?.startsWith(`${idp.issuer}/device?user_code=`))
          page = await approveDeviceInChromium(browser, prompt.verificationUriComplete ?? '', {
            username: 'alice',
            password: 'alice',
          })
        },
      },
      { ...quick, env, fetch: recording },
    )
    const token = await source.token()
    assert.match(page, /Device signed in/)
    const claims = claimsOf(token)
    assert.equal(claims.sub, 'alice')
    assert.equal(claims.azp, 'demo-cli')
    assert.equal((await source.identity()).refreshable, true)

    // D07: S256 at the device endpoint, the matching verifier with the poll.
    const device = bodies.find((b) => b.url.endsWith('/auth/device'))
    const params = new URLSearchParams(device?.body)
    assert.equal(params.get('code_challenge_method'), 'S256')
    const poll = new URLSearchParams(bodies.findLast((b) => b.url.endsWith('/token'))?.body)
    const verifier = poll.get('code_verifier') ?? ''
    assert.match(verifier, /^[A-Za-z0-9_-]{43}$/)
    assert.equal(
      params.get('code_challenge'),
      createHash('sha256').update(verifier).digest('base64url'),
    )

    const files = (await readdir(home)).filter((f) => f.endsWith('.json'))
    assert.equal(files.length, 1)
    assert.equal((await stat(join(home, files[0] ?? ''))).mode & 0o777, 0o600)

    // Another process (a new source) reuses it; far in the future it refreshes; never a prompt.
    const again = deviceLogin(
      { issuer: idp.issuer, clientId: 'demo-cli', onPrompt: () => assert.fail('prompted') },
      { env },
    )
    assert.equal(await again.token(), token)
    const later = deviceLogin(
      { issuer: idp.issuer, clientId: 'demo-cli', onPrompt: () => assert.fail('prompted') },
      { env, clock: () => Date.now() + 10 * 60_000 },
    )
    const refreshed = await later.token()
    assert.notEqual(refreshed, token)
    assert.equal(claimsOf(refreshed).sub, 'alice')
  })

  it('D08 access_denied when the user cancels at the verification page', async () => {
    const source = deviceLogin(
      {
        issuer: idp.issuer,
        clientId: 'demo-cli',
        cache: false,
        onPrompt: async (prompt) => {
          await approveDeviceInChromium(browser, prompt.verificationUriComplete ?? '', {
            username: 'alice',
            password: 'alice',
            cancel: true,
          })
        },
      },
      quick,
    )
    await assert.rejects(source.token(), isCode('access_denied'))
  })

  it('D08 a code whose lifetime passes ends as device_code_expired, with no poll after it', async () => {
    const source = deviceLogin({
      issuer: shortIdp.issuer,
      clientId: 'demo-cli',
      cache: false,
      onPrompt: () => undefined,
    })
    await assert.rejects(source.token(), isCode('device_code_expired'))
    assert.equal(
      shortIdp.requests.filter((r) => r.path.endsWith('/token')).length,
      0,
      'the first poll would have been after the code expired',
    )
  })

  it('with interactive: false and nothing cached, login_required instead of a prompt', async () => {
    const env = { SSOKIT_HOME: await tempDir() }
    const source = deviceLogin(
      {
        issuer: idp.issuer,
        clientId: 'demo-cli',
        interactive: false,
        onPrompt: () => assert.fail('prompted'),
      },
      { env },
    )
    await assert.rejects(source.token(), isCode('login_required'))
  })
})
