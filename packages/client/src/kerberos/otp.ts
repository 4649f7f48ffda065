/**
 * Where a one-time code comes from when the provider asks for one, in this order: the `otp`
 * option, a command, `SSOKIT_OTP`, a TOTP secret file, an interactive prompt. A refused code is
 * asked for again where that can give another: a prompt at once, a generated code (command,
 * secret file) in the next 30 s window; a fixed value cannot be retried.
 */
import { execFile } from 'node:child_process'
import { readFile, stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'

import { SsoError } from '@ssokit/core/errors'
import type { TOTP } from 'otpauth'

import { loadOtpauth } from '../lazy.js'

const PERIOD_MS = 30_000

export interface OtpOptions {
  /** A code, or a function asked for one on each attempt (a prompt of your own). */
  readonly otp?: string | ((attempt: number) => string | Promise<string>) | undefined
  /** A command whose standard output is the code (`pass otp cern`, `oathtool --totp ...`). */
  readonly otpCommand?: string | undefined
  /** A file holding the base32 TOTP secret (or an `otpauth://` URI); mode 0600. */
  readonly otpSecretFile?: string | undefined
  /** Codes tried at most per login. Default 3. */
  readonly otpAttempts?: number | undefined
}

export interface OtpRuntime {
  readonly env: Readonly<Record<string, string | undefined>>
  readonly clock: () => number
  readonly sleep: (ms: number) => Promise<void>
  /** Whether an interactive prompt may be shown (a terminal on stdin and stderr). */
  readonly interactive: boolean
}

interface Source {
  readonly name: string
  /** `fixed`: one value; `generated`: a new one per 30 s window; `asked`: a new one per call. */
  readonly kind: 'fixed' | 'generated' | 'asked'
  code(attempt: number): Promise<string>
}

/** Hands out codes for one login, enforcing the source's retry rules. */
export class OtpSession {
  readonly #source: Source | undefined
  readonly #runtime: OtpRuntime
  readonly #maxAttempts: number
  #attempts = 0
  #lastWindow: number | undefined

  constructor(options: OtpOptions, runtime: OtpRuntime) {
    this.#source = chooseSource(options, runtime)
    this.#runtime = runtime
    this.#maxAttempts = options.otpAttempts ?? 3
  }

  get attempts(): number {
    return this.#attempts
  }

  /** The next code to submit; `refused` is the provider's message about the previous one. */
  async next(refused: string | undefined): Promise<string> {
    const source = this.#source
    if (source === undefined) {
      throw new SsoError(
        'otp_required',
        'The provider asks for a one-time code: give --otp, --otp-command, SSOKIT_OTP or --otp-secret-file (or run in a terminal to be asked).',
      )
    }
    if (this.#attempts > 0 && (source.kind === 'fixed' || this.#attempts >= this.#maxAttempts)) {
      throw rejected(this.#attempts, refused)
    }
    if (source.kind === 'generated' && this.#lastWindow !== undefined) {
      // The same window gives the same code, which the provider just refused: wait for the next.
      const now = this.#runtime.clock()
      const next = (this.#lastWindow + 1) * PERIOD_MS
      if (next > now) await this.#runtime.sleep(next - now + 50)
    }
    this.#attempts += 1
    this.#lastWindow = Math.floor(this.#runtime.clock() / PERIOD_MS)
    const code = (await source.code(this.#attempts)).replace(/\s+/g, '')
    if (!/^\d{6,8}$/.test(code)) {
      throw new SsoError(
        'otp_rejected',
        `The one-time code from ${source.name} is not 6 to 8 digits.`,
      )
    }
    return code
  }

  /** The provider ended the login after refused codes. */
  rejected(message: string | undefined): SsoError {
    return rejected(this.#attempts, message)
  }
}

function rejected(attempts: number, message: string | undefined): SsoError {
  return new SsoError(
    'otp_rejected',
    `The provider refused the one-time code${attempts === 1 ? '' : ` ${attempts} times`}${message === undefined ? '' : `: ${message}`}`,
  )
}

function chooseSource(options: OtpOptions, runtime: OtpRuntime): Source | undefined {
  const { otp } = options
  if (typeof otp === 'string')
    return { name: 'the otp option', kind: 'fixed', code: () => Promise.resolve(otp) }
  if (typeof otp === 'function') {
    return { name: 'the otp function', kind: 'asked', code: async (n) => await otp(n) }
  }
  if (options.otpCommand !== undefined) return commandSource(options.otpCommand)
  const fromEnv = runtime.env.SSOKIT_OTP
  if (fromEnv !== undefined && fromEnv !== '') {
    return { name: 'SSOKIT_OTP', kind: 'fixed', code: () => Promise.resolve(fromEnv) }
  }
  if (options.otpSecretFile !== undefined) return secretFileSource(options.otpSecretFile, runtime)
  if (runtime.interactive) return promptSource()
  return undefined
}

function commandSource(command: string): Source {
  return {
    name: 'the otp command',
    kind: 'generated',
    code: () =>
      new Promise((resolve, reject) => {
        execFile('/bin/sh', ['-c', command], { timeout: 30_000 }, (error, stdout) => {
          if (error) {
            reject(
              new SsoError('otp_required', `The one-time code command failed: ${command}`, {
                cause: error,
              }),
            )
          } else resolve(stdout.trim().split('\n').pop() ?? '')
        })
      }),
  }
}

function secretFileSource(file: string, runtime: OtpRuntime): Source {
  return {
    name: 'the TOTP secret file',
    kind: 'generated',
    async code() {
      let text: string
      try {
        const info = await stat(file)
        if ((info.mode & 0o077) !== 0) {
          throw new SsoError(
            'otp_required',
            `The TOTP secret file ${file} can be read by others: chmod 600 it.`,
          )
        }
        text = (await readFile(file, 'utf8')).trim()
      } catch (error) {
        if (error instanceof SsoError) throw error
        throw new SsoError('otp_required', `The TOTP secret file ${file} cannot be read.`, {
          cause: error,
        })
      }
      const otpauth = await loadOtpauth()
      const { Secret, TOTP } = otpauth
      let totp: TOTP
      try {
        totp = text.startsWith('otpauth://')
          ? totpFromUri(text, otpauth)
          : new TOTP({ secret: Secret.fromBase32(text.replace(/[\s=]/g, '').toUpperCase()) })
      } catch (cause) {
        throw new SsoError(
          'otp_required',
          `The TOTP secret file ${file} holds no base32 secret or otpauth:// URI.`,
          { cause },
        )
      }
      return totp.generate({ timestamp: runtime.clock() })
    },
  }
}

function totpFromUri(uri: string, { Secret, TOTP }: typeof import('otpauth')): TOTP {
  const url = new URL(uri)
  const secret = url.searchParams.get('secret') ?? ''
  const digits = Number(url.searchParams.get('digits') ?? 6)
  const period = Number(url.searchParams.get('period') ?? 30)
  const algorithm = url.searchParams.get('algorithm') ?? 'SHA1'
  return new TOTP({ secret: Secret.fromBase32(secret), digits, period, algorithm })
}

function promptSource(): Source {
  return {
    name: 'the prompt',
    kind: 'asked',
    code: (attempt) =>
      new Promise((resolve) => {
        const rl = createInterface({ input: process.stdin, output: process.stderr })
        rl.question(`One-time code${attempt > 1 ? ` (try ${attempt})` : ''}: `, (answer) => {
          rl.close()
          resolve(answer)
        })
      }),
  }
}
