/**
 * What a device login shows its user: the verification URI and user code as the provider sent
 * them, the complete URI, and a QR code of it drawn with block characters. Nothing from the
 * provider reaches the terminal unchecked: a code or URI with control characters (an escape
 * sequence that could rewrite the screen) or not on https is refused before anything is printed.
 */
import { SsoError } from '@ssokit/core/errors'

import { isSecureEnough } from './http.js'

export interface DevicePrompt {
  /** The code to type at `verificationUri`, exactly as the provider sent it. */
  readonly userCode: string
  readonly verificationUri: string
  /** The URI with the code in it, when the provider sent one: open it (or scan the QR code). */
  readonly verificationUriComplete: string | undefined
  /** When the code expires. */
  readonly expiresAt: Date
}

const PRINTABLE_URI = /^[\x21-\x7e]{1,2048}$/
const PRINTABLE_CODE = /^[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?$/

function invalid(message: string): SsoError {
  return new SsoError('token_response_invalid', message)
}

function checkUri(value: string, name: string): string {
  if (!PRINTABLE_URI.test(value) || !URL.canParse(value)) {
    throw invalid(`The device authorization response has a ${name} that is not a plain URL.`)
  }
  if (!isSecureEnough(new URL(value))) {
    throw new SsoError(
      'insecure_transport',
      `The device authorization response has a ${name} that is not https; it was not shown.`,
    )
  }
  return value
}

/** The prompt of a device authorization response, or an error when it must not be shown. */
export function devicePrompt(
  response: { user_code: string; verification_uri: string; verification_uri_complete?: string },
  expiresAt: number,
): DevicePrompt {
  if (!PRINTABLE_CODE.test(response.user_code)) {
    throw invalid('The device authorization response has a user code with unprintable characters.')
  }
  return Object.freeze({
    userCode: response.user_code,
    verificationUri: checkUri(response.verification_uri, 'verification_uri'),
    verificationUriComplete:
      response.verification_uri_complete === undefined
        ? undefined
        : checkUri(response.verification_uri_complete, 'verification_uri_complete'),
    expiresAt: new Date(expiresAt),
  })
}

/** A QR code of `text` in two rows per line of half blocks, for a terminal. */
export async function terminalQrCode(text: string): Promise<string> {
  // Loaded only when a QR code is drawn, so a cached token never pays for it.
  const { default: qrcode } = await import('qrcode')
  return qrcode.toString(text, { type: 'terminal', small: true, errorCorrectionLevel: 'L' })
}

function minutes(ms: number): string {
  const m = Math.max(1, Math.round(ms / 60_000))
  return m === 1 ? '1 minute' : `${m} minutes`
}

/** The text of a prompt, with a QR code of the complete URI when `qr` is true. */
export async function formatDevicePrompt(
  prompt: DevicePrompt,
  options: { qr: boolean; now?: number },
): Promise<string> {
  const lines = [
    `To sign in, open ${prompt.verificationUri}`,
    `and enter the code: ${prompt.userCode}`,
  ]
  const complete = prompt.verificationUriComplete
  if (complete !== undefined) {
    lines.push(`Or open ${complete}${options.qr ? ' or scan this QR code:' : ''}`)
    if (options.qr) lines.push((await terminalQrCode(complete)).trimEnd())
  }
  const left = prompt.expiresAt.getTime() - (options.now ?? Date.now())
  lines.push(`The code expires in ${minutes(left)}.`)
  return `${lines.join('\n')}\n`
}
