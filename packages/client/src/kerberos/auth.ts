/**
 * The Kerberos side of a login, shared by `kerberosLogin` (tokens) and `cookieSession`
 * (cookie-protected sites): whose credentials, which service principal, where one-time codes
 * come from.
 */
import { SsoTypeError } from '@ssokit/core/errors'

import type { OtpOptions } from './otp.js'
import type { KerberosCredentials } from './spnego.js'

export interface KerberosOptions extends KerberosCredentials, OtpOptions {
  /**
   * The provider's service principal as GSSAPI names it, `HTTP@host`. Default
   * `HTTP@<the provider's host>` (Keycloak's `HTTP/<host>@REALM`).
   */
  readonly servicePrincipal?: string | undefined
}

/** Checked, frozen Kerberos options; made by `kerberos()`. */
export interface KerberosAuth {
  readonly kind: 'kerberos'
  readonly options: Readonly<KerberosOptions>
}

function check(caller: string, name: string, value: unknown, test: (v: string) => boolean): void {
  if (value === undefined) return
  if (typeof value !== 'string' || value === '' || !test(value)) {
    throw new SsoTypeError(`${caller}: ${name} is not valid`, 'ERR_INVALID_ARG_VALUE')
  }
}

export function checkKerberosOptions(caller: string, options: KerberosOptions): KerberosOptions {
  check(caller, 'ccache', options.ccache, () => true)
  check(caller, 'keytab', options.keytab, () => true)
  check(caller, 'principal', options.principal, (v) => /^[^\s@]+(@[^\s@]+)?$/.test(v))
  check(caller, 'servicePrincipal', options.servicePrincipal, (v) => /^[^\s@]+@[^\s@]+$/.test(v))
  check(caller, 'otpCommand', options.otpCommand, () => true)
  check(caller, 'otpSecretFile', options.otpSecretFile, () => true)
  if (
    options.otp !== undefined &&
    typeof options.otp !== 'string' &&
    typeof options.otp !== 'function'
  ) {
    throw new SsoTypeError(`${caller}: otp must be a string or a function`, 'ERR_INVALID_ARG_TYPE')
  }
  const attempts = options.otpAttempts
  if (attempts !== undefined && (!Number.isInteger(attempts) || attempts < 1 || attempts > 10)) {
    throw new SsoTypeError(`${caller}: otpAttempts must be a whole number from 1 to 10`)
  }
  if (options.keytab !== undefined && options.principal === undefined) {
    throw new SsoTypeError(`${caller}: a keytab needs the principal it holds`, 'ERR_MISSING_OPTION')
  }
  return Object.freeze({ ...options })
}

/**
 * Kerberos for `cookieSession`: the ticket cache (`KRB5CCNAME`) unless a keytab is given.
 *
 * @example
 * const session = await cookieSession('https://app.cern.ch/', { cern: true, login: kerberos() })
 */
export function kerberos(options: KerberosOptions = {}): KerberosAuth {
  return Object.freeze({ kind: 'kerberos', options: checkKerberosOptions('kerberos', options) })
}
