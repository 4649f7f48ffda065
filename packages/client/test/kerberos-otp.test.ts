/**
 * Where one-time codes come from for two-factor Kerberos logins, and when a refused one is
 * retried: the sources in order, a generated code never resent in the same 30 s window.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'

import { SsoError } from '@ssokit/core'
import { Secret, TOTP } from 'otpauth'

import { OtpSession, type OtpOptions } from '../src/kerberos/otp.js'

const SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP'

function session(options: OtpOptions, env: Record<string, string> = {}) {
  let now = 1_700_000_010_000
  const waits: number[] = []
  const otp = new OtpSession(options, {
    env,
    clock: () => now,
    sleep: (ms) => {
      waits.push(ms)
      now += ms
      return Promise.resolve()
    },
    interactive: false,
  })
  return { otp, waits, now: () => now }
}

function code(reason: unknown): string | undefined {
  return reason instanceof SsoError ? reason.code : undefined
}

describe('one-time code sources', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ssokit-otp-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('takes the option before the command and the environment, and does not retry a fixed code', async () => {
    const { otp } = session({ otp: '123456', otpCommand: 'echo 654321' }, { SSOKIT_OTP: '111111' })
    assert.equal(await otp.next(undefined), '123456')
    await assert.rejects(otp.next('Invalid code.'), (e: unknown) => code(e) === 'otp_rejected')
  })

  it('runs the command before SSOKIT_OTP, and waits for the next window before running it again', async () => {
    const { otp, waits } = session({ otpCommand: 'echo 654321' }, { SSOKIT_OTP: '111111' })
    assert.equal(await otp.next(undefined), '654321')
    assert.equal(await otp.next('refused'), '654321')
    assert.equal(waits.length, 1)
    assert.ok((waits[0] ?? 0) > 0 && (waits[0] ?? 0) <= 30_050)
  })

  it('generates codes from a TOTP secret file, which must be private', async () => {
    const file = join(dir, 'secret')
    await writeFile(file, `${SECRET}\n`, { mode: 0o644 })
    const open = session({ otpSecretFile: file })
    await assert.rejects(open.otp.next(undefined), (e: unknown) => code(e) === 'otp_required')
    await writeFile(join(dir, 'private'), `${SECRET}\n`, { mode: 0o600 })
    const { otp, now } = session({ otpSecretFile: join(dir, 'private') })
    const got = await otp.next(undefined)
    const expected = new TOTP({ secret: Secret.fromBase32(SECRET) }).generate({ timestamp: now() })
    assert.equal(got, expected)
  })

  it('asks a function again at once, up to otpAttempts, then fails naming the count', async () => {
    let asked = 0
    const { otp, waits } = session({
      otp: () => {
        asked += 1
        return '000000'
      },
      otpAttempts: 2,
    })
    await otp.next(undefined)
    await otp.next('refused')
    await assert.rejects(otp.next('refused'), (e: unknown) => {
      assert.equal(code(e), 'otp_rejected')
      assert.match((e as Error).message, /2 times/)
      return true
    })
    assert.equal(asked, 2)
    assert.deepEqual(waits, [])
  })

  it('says which sources exist when there is none and no terminal', async () => {
    const { otp } = session({})
    await assert.rejects(otp.next(undefined), (e: unknown) => {
      assert.equal(code(e), 'otp_required')
      assert.match((e as Error).message, /--otp-secret-file/)
      return true
    })
  })
})
