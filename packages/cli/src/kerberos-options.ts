/**
 * What `ssokit token --kerberos`, `ssokit login --kerberos` and `ssokit cookie` share: whose
 * Kerberos credentials, and where one-time codes come from for two-factor accounts.
 */
import type { KerberosOptions } from '@ssokit/client'

import { UsageError } from './errors.js'
import { integerOption, pathOption, type ValueOption } from './options.js'

function text(): ValueOption<string> {
  return { kind: 'value', parse: (raw) => raw }
}

export const KERBEROS_OPTIONS = {
  ccache: text(),
  keytab: pathOption(),
  principal: text(),
  'service-principal': text(),
  otp: text(),
  'otp-command': text(),
  'otp-secret-file': pathOption(),
  'otp-attempts': integerOption(1),
}

export const KERBEROS_HELP = `Kerberos (the ticket cache of kinit, KRB5CCNAME, unless a keytab is given):
  --ccache <name>             The ticket cache, e.g. FILE:/tmp/krb5cc_1000
  --keytab <file>             Sign in with a keytab instead (needs --principal)
  --principal <user@REALM>    The principal to use
  --service-principal <s>     HTTP@host to get a ticket for (default: HTTP@<provider host>)
One-time codes for two-factor accounts, first given wins:
  --otp <code>                The current code
  --otp-command <command>     A command printing the code (e.g. oathtool --totp -b ...)
  SSOKIT_OTP                  The code, from the environment
  --otp-secret-file <file>    A file (mode 0600) with the base32 TOTP secret
                              (default: asked on the terminal)
  --otp-attempts <n>          Codes tried at most (default 3)`

export function kerberosOptions(
  command: string,
  values: {
    ccache?: string | undefined
    keytab?: string | undefined
    principal?: string | undefined
    'service-principal'?: string | undefined
    otp?: string | undefined
    'otp-command'?: string | undefined
    'otp-secret-file'?: string | undefined
    'otp-attempts'?: number | undefined
  },
): KerberosOptions {
  if (values.keytab !== undefined && values.principal === undefined) {
    throw new UsageError('--keytab needs --principal <user@REALM>', command)
  }
  if (values.otp !== undefined && !/^\d{6,8}$/.test(values.otp)) {
    throw new UsageError('--otp must be the 6 to 8 digit code', command)
  }
  const pick = <T>(value: T | undefined, key: string) =>
    value === undefined ? {} : { [key]: value }
  return {
    ...pick(values.ccache, 'ccache'),
    ...pick(values.keytab, 'keytab'),
    ...pick(values.principal, 'principal'),
    ...pick(values['service-principal'], 'servicePrincipal'),
    ...pick(values.otp, 'otp'),
    ...pick(values['otp-command'], 'otpCommand'),
    ...pick(values['otp-secret-file'], 'otpSecretFile'),
    ...pick(values['otp-attempts'], 'otpAttempts'),
  }
}
