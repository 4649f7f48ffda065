import { resolve } from 'node:path'
import { DEFAULT_IDP_CONFIG, resolveIdpConfig } from '@ssokit/idp'
import { UsageError, type Command } from '../errors.js'
import { parseOptions, pathOption, portOption, urlOption } from '../options.js'
import { writePidFile } from '../pid-file.js'
import {
  DEMO_CLI_CLIENT_ID,
  DEMO_CLIENT_ID,
  DEMO_CLIENT_SECRET,
  redactUrl,
  startDemo,
} from '../demo/index.js'

const help = `Usage: ssokit demo [options]

Starts a development identity provider and a small web application protected by it, so you
can log in, log out and call a protected API on your own machine in one command.

Options:
  --idp-port <number>   Port of the identity provider, 0 for any free port (default 4000)
  --app-port <number>   Port of the application, 0 for any free port (default 3000)
  --redis <url>         Keep sessions in Redis, e.g. redis://127.0.0.1:6379 (default: in memory)
  --pid-file <file>     Write the process id here while running (to stop it later with
                        kill "$(cat <file>)")
  --kerberos-keytab <file>  Offer "Sign in with Kerberos", checking tickets with this keytab
                        (HTTP/127.0.0.1@REALM and HTTP/localhost@REALM keys)
  --kerberos-realm <REALM>  With --kerberos-keytab: the realm whose principals sign in
                        (alice@REALM as alice)
  -h, --help            Show this help

Stop with Ctrl-C or SIGTERM.`

const OPTIONS = {
  'idp-port': portOption(),
  'app-port': portOption(),
  redis: urlOption(['redis:', 'rediss:'], 'redis://127.0.0.1:6379'),
  'pid-file': pathOption(),
  'kerberos-keytab': pathOption(),
  'kerberos-realm': { kind: 'value' as const, parse: pathOption().parse },
}

/** The built-in realm's users, as the provider will see them, for the banner. */
function demoUsers(): string[] {
  const { users } = resolveIdpConfig(DEFAULT_IDP_CONFIG)
  const width = Math.max(...users.map((u) => `${u.username} / ${u.password}`.length))
  return users.map((user) => {
    const roles = [...(user.roles['*'] ?? []), ...(user.roles[DEMO_CLIENT_ID] ?? [])]
    const login = `${user.username} / ${user.password}`.padEnd(width)
    return `  ${login}   ${roles.length === 0 ? 'no roles' : `roles ${roles.join(', ')}`}`
  })
}

export const command: Command = {
  help,
  options: OPTIONS,
  async run(args, { out, stopped }) {
    const values = parseOptions('demo', args, OPTIONS)
    const idpPort = values['idp-port'] ?? 4000
    const appPort = values['app-port'] ?? 3000
    const redis = values.redis
    if (idpPort === appPort && idpPort !== 0) {
      throw new UsageError(
        `--idp-port and --app-port are both ${idpPort}; the identity provider and the application need different ports`,
        'demo',
      )
    }

    const keytab = values['kerberos-keytab']
    const krbRealm = values['kerberos-realm']
    if ((keytab === undefined) !== (krbRealm === undefined)) {
      throw new UsageError('give --kerberos-keytab and --kerberos-realm together', 'demo')
    }
    const removePidFile =
      values['pid-file'] === undefined ? undefined : await writePidFile(values['pid-file'])
    try {
      const demo = await startDemo({
        idpPort,
        appPort,
        log: out,
        ...(redis === undefined ? {} : { redis }),
        ...(keytab === undefined || krbRealm === undefined
          ? {}
          : { kerberos: { keytab: resolve(keytab), realm: krbRealm } }),
      })
      const { app, idp } = demo
      const tokenUrl = `${idp.issuer}/protocol/openid-connect/token`
      const lines = [
        'ssokit demo is running.',
        '',
        `  Application        ${app.url}`,
        `  Identity provider  ${idp.issuer}`,
        `  Sessions           ${redis === undefined ? 'in memory (lost when the demo stops)' : `Redis at ${redactUrl(redis)}`}`,
        '',
        `Open ${app.url} and log in as:`,
        ...demoUsers(),
        `  (${app.url}/admin needs the admin role)`,
        '',
        `Call the API with a token (client credentials of ${DEMO_CLIENT_ID}):`,
        `  TOKEN=$(curl -s -u ${DEMO_CLIENT_ID}:${DEMO_CLIENT_SECRET} -d grant_type=client_credentials ${tokenUrl} | node -p 'JSON.parse(require("fs").readFileSync(0)).access_token')`,
        `  curl -H "Authorization: Bearer $TOKEN" ${app.url}/api/whoami`,
        'Or with ssokit token, which caches and renews it:',
        `  export SSOKIT_CLIENT_SECRET=${DEMO_CLIENT_SECRET}`,
        `  curl -H "Authorization: Bearer $(ssokit token --issuer ${idp.issuer} --client-id ${DEMO_CLIENT_ID})" ${app.url}/api/whoami`,
        `As yourself (alice / alice): log in once with the device flow, then the same call:`,
        `  ssokit login --issuer ${idp.issuer} --client-id ${DEMO_CLI_CLIENT_ID}`,
        `  curl -H "Authorization: Bearer $(ssokit token --issuer ${idp.issuer} --client-id ${DEMO_CLI_CLIENT_ID})" ${app.url}/api/whoami`,
        ...(krbRealm === undefined
          ? []
          : [
              `With a Kerberos ticket (kinit alice@${krbRealm}), cookies for curl:`,
              `  ssokit cookie ${app.url}/admin --issuer ${idp.issuer} -o cookies.txt`,
              `  curl -b cookies.txt ${app.url}/api/whoami`,
            ]),
        '',
        'Put the same sign-in in front of an app in any language (here Python), with ssokit proxy:',
        '  python3 -m http.server 8000 --bind 127.0.0.1 &',
        `  OIDC_CLIENT_SECRET=${DEMO_CLIENT_SECRET} ssokit proxy --upstream http://127.0.0.1:8000 --issuer ${idp.issuer} --client-id ${DEMO_CLIENT_ID} --public-url http://localhost:4180 --port 4180`,
        '  then open http://localhost:4180/ (the app gets X-Forwarded-User and friends; docs/proxy.md)',
        '',
        'The session secret and passwords are public demo values: never deploy this.',
        'Press Ctrl-C to stop.',
      ]
      for (const line of lines) out(line)
      const signal = await stopped
      out(`Received ${signal}, stopping.`)
      await demo.close()
      return 0
    } finally {
      await removePidFile?.()
    }
  },
}
