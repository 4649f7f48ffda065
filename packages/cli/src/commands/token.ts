import { clientCredentials, type TokenSource } from '@ssokit/client'
import { SsoError } from '@ssokit/core/errors'

import {
  clientIdOption,
  PROVIDER_OPTIONS,
  providerChoice,
  readClientSecret,
  refuseSecretArguments,
  SECRET_OPTIONS,
} from '../client-options.js'
import { UsageError, type Command } from '../errors.js'
import {
  abortOnStop,
  chooseLoginMethod,
  chosenLoginMethods,
  loginMethodOptions,
  stderrUi,
} from '../login-methods.js'
import { flagOption, parseOptions, type ValueOption } from '../options.js'

const help = `Usage: ssokit token --client-id <id> (--issuer <url> | --cern) [options]

Prints a valid access token on stdout and nothing else, from the credential cache while it is
fresh, else from the provider:
- with a client secret: the client's own token (client credentials grant); with --cern from
  CERN's api-access endpoint, which honours --audience;
- without one (a public client), or with --device, --browser or --kerberos: the user's token
  from \`ssokit login\`, refreshed with its refresh token. When there is none, --kerberos logs
  you in with your ticket (kinit) at once; otherwise, when stderr is a terminal, it logs you in
  first (the device flow unless --browser); in a script without a terminal it fails with
  "login required" instead of waiting.

Options:
  --client-id <id>            The client (application) id
  --issuer <url>              The provider's issuer URL (https; http only on localhost);
                              default: OIDC_ISSUER
  --cern                      CERN SSO: https://auth.cern.ch/auth/realms/cern
  --audience <client>         The client whose API the token is for (default: the client itself)
  --scope <scopes>            Scopes to ask for, space-separated
  --client-secret-file <f>    Read the client secret from this file (not readable by others)
  --client-secret-stdin       Read the client secret from standard input
                              (default: SSOKIT_CLIENT_SECRET, else OIDC_CLIENT_SECRET)
  --device, --browser         Log in this way when a login is needed (default: --device)
  --kerberos                  ... or with your Kerberos ticket, no browser: takes
                              --redirect-uri and the Kerberos and one-time code options
                              (see ssokit login --help)
  --json                      Print {"access_token", "token_type", "expires_at", ...} instead
  --decode                    Print the token's claims (read, not verified) instead
  -h, --help                  Show this help

The secret is never taken on the command line. Credentials are cached in $SSOKIT_HOME (else
TSGAUTH_AUTHDIR, else ~/.config/ssokit), directory 0700, files 0600.

Examples:
  export SSOKIT_CLIENT_SECRET=...   # or --client-secret-file ~/.config/my-app.secret
  curl -H "Authorization: Bearer $(ssokit token --cern --client-id my-app --audience my-api)" \\
    https://my-api.cern.ch/items
  ssokit token --issuer http://localhost:4000/auth/realms/dev --client-id demo-app --decode
  ssokit token --issuer http://localhost:4000/auth/realms/dev --client-id demo-cli   # a login
  ssokit token --kerberos --cern --client-id my-public-client`

function textOption(): ValueOption<string> {
  return {
    kind: 'value',
    parse(raw) {
      return raw
    },
  }
}

const OPTIONS = {
  'client-id': clientIdOption(),
  audience: clientIdOption(),
  scope: textOption(),
  json: flagOption(),
  decode: flagOption(),
  ...PROVIDER_OPTIONS,
  ...SECRET_OPTIONS,
  ...loginMethodOptions(),
}

function claims(token: string): unknown {
  const [header = '', payload = ''] = token.split('.')
  try {
    return {
      header: JSON.parse(Buffer.from(header, 'base64url').toString('utf8')) as unknown,
      payload: JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown,
    }
  } catch {
    return undefined
  }
}

export const command: Command = {
  help,
  options: OPTIONS,
  async run(args, { out, stopped }) {
    refuseSecretArguments('token', args)
    const values = parseOptions('token', args, OPTIONS)
    const clientId = values['client-id']
    if (clientId === undefined) throw new UsageError('--client-id <id> is required', 'token')
    if (values.json === true && values.decode === true) {
      throw new UsageError('give --json or --decode, not both', 'token')
    }
    const provider = providerChoice('token', values)
    const clientSecret = await readClientSecret('token', values)
    const login = clientSecret === undefined || chosenLoginMethods(values).length > 0
    let source: TokenSource
    const ui = stderrUi()
    if (login) {
      if (values.audience !== undefined) {
        throw new UsageError(
          '--audience needs a client secret (client credentials); a login token is for its own client',
          'token',
        )
      }
      const { method } = chooseLoginMethod('token', values)
      source = await method.source({
        provider,
        clientId,
        clientSecret,
        scope: values.scope,
        timeout: undefined,
        // Never wait on a person nobody can see: a script without a terminal gets an error.
        interactive: (process.stderr.isTTY as boolean | undefined) === true,
        signal: abortOnStop(stopped),
        values,
        ui,
      })
    } else {
      source = clientCredentials({
        ...provider,
        clientId,
        clientSecret,
        ...(values.audience === undefined ? {} : { audience: values.audience }),
        ...(values.scope === undefined ? {} : { scope: values.scope }),
        cache: true,
      })
    }
    let token: string
    try {
      token = await source.token()
    } catch (error) {
      if (login && error instanceof SsoError && error.code === 'login_required') {
        throw new Error(
          `no usable login for ${clientId} is cached: run \`ssokit login --client-id ${clientId} ${'cern' in provider ? '--cern' : `--issuer ${provider.issuer}`}\` first, or give the client secret for a client-credentials token`,
          { cause: error },
        )
      }
      throw error
    } finally {
      ui.done()
    }
    if (values.decode === true) {
      const decoded = claims(token)
      if (decoded === undefined)
        throw new Error('the access token is not a JWT: it has no claims to show')
      out(JSON.stringify(decoded, null, 2))
      return 0
    }
    if (values.json === true) {
      const who = await source.identity()
      out(
        JSON.stringify({
          access_token: token,
          token_type: 'Bearer',
          expires_at: who.expiresAt?.toISOString() ?? null,
          subject: who.subject ?? null,
          audience: who.audience,
        }),
      )
      return 0
    }
    out(token)
    return 0
  },
}
