import { listCredentials, removeCredential } from '@ssokit/client'

import {
  clientIdOption,
  readClientSecret,
  refuseSecretArguments,
  SECRET_OPTIONS,
} from '../client-options.js'
import { UsageError, type Command } from '../errors.js'
import { flagOption, parseOptions, urlOption } from '../options.js'

const help = `Usage: ssokit logout (--client-id <id> [--audience <client>] [--issuer <url>] | --all)

Revokes the refresh tokens of the matching cached credentials at the provider (where it offers
revocation) and deletes them from the cache. Client-credentials tokens have no refresh token:
they are deleted.

Options:
  --client-id <id>            Log out of this client's credentials
  --audience <client>         ... only those for this audience
  --issuer <url>              ... only those of this provider
  --all                       Log out of every cached credential
  --client-secret-file <f>    The client secret, for providers that revoke a confidential
  --client-secret-stdin       client's tokens only with it (default: SSOKIT_CLIENT_SECRET,
                              else OIDC_CLIENT_SECRET)
  -h, --help                  Show this help

Examples:
  ssokit logout --client-id my-app
  ssokit logout --all`

const OPTIONS = {
  'client-id': clientIdOption(),
  audience: clientIdOption(),
  issuer: urlOption(['https:', 'http:'], 'https://auth.cern.ch/auth/realms/cern'),
  all: flagOption(),
  ...SECRET_OPTIONS,
}

export const command: Command = {
  help,
  options: OPTIONS,
  async run(args, { out }) {
    refuseSecretArguments('logout', args)
    const values = parseOptions('logout', args, OPTIONS)
    const clientId = values['client-id']
    if (values.all === true && clientId !== undefined) {
      throw new UsageError('give --client-id or --all, not both', 'logout')
    }
    if (values.all !== true && clientId === undefined) {
      throw new UsageError('--client-id <id> or --all is required', 'logout')
    }
    const clientSecret = await readClientSecret('logout', values)
    const issuer = values.issuer?.replace(/\/$/, '')
    const chosen = (await listCredentials()).filter(
      (e) =>
        values.all === true ||
        (e.clientId === clientId &&
          (values.audience === undefined || e.audience === values.audience) &&
          (issuer === undefined || e.issuer === issuer)),
    )
    let revoked = 0
    const failures: string[] = []
    for (const entry of chosen) {
      try {
        if (
          await removeCredential(entry.file, clientSecret === undefined ? {} : { clientSecret })
        ) {
          revoked++
        }
      } catch (error) {
        failures.push(
          `${entry.clientId}${entry.audience === undefined ? '' : ` (${entry.audience})`}: ${error instanceof Error ? error.message : String(error)}`,
        )
      }
    }
    out(
      `Logged out of ${chosen.length} credential${chosen.length === 1 ? '' : 's'}; ${revoked} refresh token${revoked === 1 ? '' : 's'} revoked.`,
    )
    if (failures.length > 0) {
      throw new Error(
        `deleted from the cache, but the provider did not confirm the revocation of: ${failures.join('; ')}`,
      )
    }
    return 0
  },
}
