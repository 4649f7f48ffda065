import { UsageError, type Command } from '../errors.js'
import {
  clientIdOption,
  PROVIDER_OPTIONS,
  providerChoice,
  readClientSecret,
  refuseSecretArguments,
  SECRET_OPTIONS,
} from '../client-options.js'
import {
  abortOnStop,
  chooseLoginMethod,
  loginMethodHelp,
  loginMethodOptions,
  stderrUi,
  type LoginUi,
} from '../login-methods.js'
import { flagOption, integerOption, parseOptions, type ValueOption } from '../options.js'

const help = `Usage: ssokit login --client-id <id> (--issuer <url> | --cern) [--device | --browser] [options]

Logs you in to a client (usually a public one, without a secret) and keeps the credential, with
its refresh token, in the cache: later \`ssokit token --client-id <id>\` calls print an access
token without asking again until the refresh token ends. Instructions and progress go to stderr.

Login methods:
${loginMethodHelp()}

Options:
  --client-id <id>            The client (application) id
  --issuer <url>              The provider's issuer URL (https; http only on localhost);
                              default: OIDC_ISSUER
  --cern                      CERN SSO: https://auth.cern.ch/auth/realms/cern
  --scope <scopes>            Scopes to ask for, space-separated (default: "openid profile")
  --timeout <seconds>         Give up after this long (default: the device code's lifetime,
                              300 for a browser login)
  --force                     Log in again even when a cached login still works
  --client-secret-file <f>    For a confidential client: its secret, from this file
  --client-secret-stdin       ... or from standard input (default: SSOKIT_CLIENT_SECRET)
  -h, --help                  Show this help

Examples:
  ssokit login --cern --client-id my-public-client
  ssokit login --cern --client-id my-public-client --browser
  ssokit login --issuer http://localhost:4000/auth/realms/dev --client-id demo-cli
  curl -H "Authorization: Bearer $(ssokit token --cern --client-id my-public-client)" \\
    https://my-api.cern.ch/items`

function textOption(): ValueOption<string> {
  return { kind: 'value', parse: (raw) => raw }
}

const OPTIONS = {
  'client-id': clientIdOption(),
  scope: textOption(),
  timeout: integerOption(1, 86_400),
  force: flagOption(),
  ...PROVIDER_OPTIONS,
  ...SECRET_OPTIONS,
  ...loginMethodOptions(),
}

/** Records whether the user was asked, to tell a new login from a cached one. */
function recording(ui: LoginUi): LoginUi & { readonly asked: () => boolean } {
  let asked = false
  return {
    say(text) {
      asked = true
      ui.say(text)
    },
    waiting(text, until) {
      asked = true
      ui.waiting(text, until)
    },
    done: () => {
      ui.done()
    },
    asked: () => asked,
  }
}

export const command: Command = {
  help,
  options: OPTIONS,
  async run(args, { out, stopped }) {
    refuseSecretArguments('login', args)
    const values = parseOptions('login', args, OPTIONS)
    const clientId = values['client-id']
    if (clientId === undefined) throw new UsageError('--client-id <id> is required', 'login')
    const { method } = chooseLoginMethod('login', values)
    const provider = providerChoice('login', values)
    const clientSecret = await readClientSecret('login', values)
    const ui = recording(stderrUi())
    const source = await method.source({
      provider,
      clientId,
      clientSecret,
      scope: values.scope,
      timeout: values.timeout,
      interactive: true,
      signal: abortOnStop(stopped),
      values,
      ui,
    })
    if (values.force === true) await source.logout()
    let who
    try {
      who = await source.identity()
    } finally {
      ui.done()
    }
    const name = who.username ?? who.subject ?? 'an unnamed user'
    const until =
      who.expiresAt === undefined
        ? ''
        : `; the access token is valid until ${who.expiresAt.toISOString()}`
    if (ui.asked()) {
      out(`Logged in as ${name} to ${clientId}${until}.`)
    } else {
      out(`Already logged in as ${name} to ${clientId}${until}. Use --force to log in again.`)
    }
    return 0
  },
}
