/**
 * The ways `ssokit login` (and `ssokit token` for a public client) can log a user in, one entry
 * each: the entry's name is its flag (`device` is `--device`), its options join the command's,
 * and `source` makes the `@ssokit/client` source, loaded only when used. To add a way of
 * logging in, add an entry here.
 */
import type { TokenSource } from '@ssokit/client'

import { UsageError } from './errors.js'
import { KERBEROS_HELP, KERBEROS_OPTIONS, kerberosOptions } from './kerberos-options.js'
import type { OptionSpec } from './options.js'
import { startSpinner, type Spinner } from './progress.js'

/** What the command line decided, for any login method. */
export interface LoginSettings {
  readonly provider: { readonly issuer: string } | { readonly cern: true }
  readonly clientId: string
  readonly clientSecret: string | undefined
  readonly scope: string | undefined
  /** Seconds, from `--timeout`. */
  readonly timeout: number | undefined
  /** `false`: never ask the user; a missing login is `login_required`. */
  readonly interactive: boolean
  /** Aborted on Ctrl-C. */
  readonly signal: AbortSignal
  /** Every parsed option of the command, for a method's own (`values.qr`). */
  readonly values: Readonly<Record<string, unknown>>
  /** Shows progress on stderr while the login waits on the user. */
  readonly ui: LoginUi
}

export interface LoginUi {
  /** Writes a message for the user (instructions, never a token) to stderr. */
  say(text: string): void
  /** A spinner with the time left until `until`, on a terminal only; replaced by the next. */
  waiting(text: string, until: Date): void
  /** Stops the spinner. */
  done(): void
}

export interface LoginMethod {
  /** One line for `--help`. */
  readonly summary: string
  /** Options only this method reads, with their `--help` lines. */
  readonly options?: OptionSpec
  readonly optionHelp?: readonly string[]
  readonly source: (settings: LoginSettings) => Promise<TokenSource>
}

function common(settings: LoginSettings) {
  return {
    ...settings.provider,
    clientId: settings.clientId,
    ...(settings.clientSecret === undefined ? {} : { clientSecret: settings.clientSecret }),
    ...(settings.scope === undefined ? {} : { scope: settings.scope }),
    ...(settings.timeout === undefined ? {} : { timeout: settings.timeout }),
    interactive: settings.interactive,
    signal: settings.signal,
    cache: true,
  }
}

export const LOGIN_METHODS: Readonly<Record<string, LoginMethod>> = {
  device: {
    summary: 'Device flow: open a URL (or scan a QR code) on any device and enter a code',
    options: { qr: { kind: 'flag' } },
    optionHelp: [
      '  --qr                        Draw the QR code also when stderr is not a terminal',
    ],
    async source(settings) {
      const { deviceLogin, formatDevicePrompt } = await import('@ssokit/client')
      const qr =
        settings.values.qr === true || (process.stderr.isTTY as boolean | undefined) === true
      return deviceLogin({
        ...common(settings),
        onPrompt: async (prompt) => {
          settings.ui.say(await formatDevicePrompt(prompt, { qr }))
          settings.ui.waiting('Waiting for the login to be approved', prompt.expiresAt)
        },
      })
    },
  },
  browser: {
    summary: 'Browser: sign in in the browser on this machine (code + PKCE, loopback redirect)',
    options: { 'no-open': { kind: 'flag' } },
    optionHelp: [
      '  --no-open                   Print the browser login URL without opening a browser',
    ],
    async source(settings) {
      const { browserLogin } = await import('@ssokit/client')
      return browserLogin({
        ...common(settings),
        openBrowser: settings.values['no-open'] !== true,
        onUrl: (url, opened) => {
          settings.ui.say(
            opened
              ? `Your browser has been opened to sign in. If it did not open, visit:\n${url}`
              : `To sign in, open this URL in a browser on this machine:\n${url}`,
          )
          settings.ui.waiting(
            'Waiting for the browser login',
            new Date(Date.now() + (settings.timeout ?? 300) * 1000),
          )
        },
      })
    },
  },
  kerberos: {
    summary: 'Kerberos: your ticket (kinit) through "Sign in with Kerberos", no browser',
    options: { ...KERBEROS_OPTIONS, 'redirect-uri': { kind: 'value', parse: (raw) => raw } },
    optionHelp: [
      '  --redirect-uri <uri>        With --kerberos: a redirect URI registered for the client',
      '                              (default http://localhost:8080/; nothing listens there)',
      ...KERBEROS_HELP.split('\n'),
    ],
    async source(settings) {
      const { kerberosLogin } = await import('@ssokit/client')
      const values = settings.values as Parameters<typeof kerberosOptions>[1] & {
        'redirect-uri'?: string
      }
      const redirectUri = values['redirect-uri']
      return kerberosLogin({
        ...common(settings),
        // Kerberos needs nobody at a terminal (a one-time code is asked only on one), so a
        // script may log in with it.
        interactive: true,
        ...(redirectUri === undefined ? {} : { redirectUri }),
        ...kerberosOptions('login', values),
      })
    },
  },
}

/** The method used when no flag names one. */
export const DEFAULT_LOGIN_METHOD = 'device'

/** One flag per method, for the option parser. */
export function loginMethodOptions(): OptionSpec {
  const spec: Record<string, OptionSpec[string]> = {}
  for (const [name, method] of Object.entries(LOGIN_METHODS)) {
    spec[name] = { kind: 'flag' }
    Object.assign(spec, method.options)
  }
  return spec
}

/** The `--help` lines of the methods and their options. */
export function loginMethodHelp(): string {
  const lines = Object.entries(LOGIN_METHODS).map(
    ([name, method]) =>
      `  ${`--${name}`.padEnd(28)}${method.summary}${name === DEFAULT_LOGIN_METHOD ? ' (default)' : ''}`,
  )
  const extra = Object.values(LOGIN_METHODS).flatMap((m) => m.optionHelp ?? [])
  return [...lines, ...extra].join('\n')
}

/** The method the flags chose; more than one is a mistake the caller reports. */
export function chosenLoginMethods(values: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(LOGIN_METHODS).filter((name) => values[name] === true)
}

/** Progress on stderr: messages always, the spinner only on a terminal. */
export function stderrUi(): LoginUi {
  let spinner: Spinner | undefined
  return {
    say(text) {
      spinner?.stop()
      spinner = undefined
      process.stderr.write(text.endsWith('\n') ? text : `${text}\n`)
    },
    waiting(text, until) {
      spinner?.stop()
      spinner = startSpinner(text, until)
    },
    done() {
      spinner?.stop()
      spinner = undefined
    },
  }
}

export interface LoginChoice {
  readonly name: string
  readonly method: LoginMethod
}

/** The one method the flags name, or the default; two of them is a usage error. */
export function chooseLoginMethod(
  command: string,
  values: Readonly<Record<string, unknown>>,
): LoginChoice {
  const chosen = chosenLoginMethods(values)
  if (chosen.length > 1) {
    throw new UsageError(
      `give one of ${chosen.map((n) => `--${n}`).join(', ')}, not several`,
      command,
    )
  }
  const name = chosen[0] ?? DEFAULT_LOGIN_METHOD
  const method = LOGIN_METHODS[name]
  if (method === undefined) throw new UsageError(`unknown login method ${name}`, command)
  return { name, method }
}

/** Aborts on Ctrl-C or SIGTERM, so a waiting login ends as `login_cancelled`. */
export function abortOnStop(stopped: Promise<string>): AbortSignal {
  const controller = new AbortController()
  void stopped.then((signal) => {
    controller.abort(new Error(`stopped by ${signal}`))
  })
  return controller.signal
}
