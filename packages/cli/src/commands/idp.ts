import {
  DEFAULT_IDP_CONFIG,
  loadIdpConfigFile,
  resolveIdpConfig,
  rotateKeysFile,
  startIdp,
  type ResolvedIdpConfig,
  type RunningIdp,
} from '@ssokit/idp'
import { UsageError, type Command } from '../errors.js'
import { listenFailure } from '../listen.js'
import {
  choiceOption,
  flagOption,
  hostOption,
  integerOption,
  nameOption,
  parseOptions,
  pathOption,
  portOption,
} from '../options.js'
import { writePidFile } from '../pid-file.js'

const help = `Usage: ssokit idp [options]

Runs a development OpenID provider that looks like a Keycloak realm (CERN SSO claims).
Issuer: http://<host>:<port>/auth/realms/<realm>

Options:
  --host <address>            Interface to listen on (default 127.0.0.1)
  --port <number>             Port, 0 for any free port (default 4000)
  --realm <name>              Realm name (default: the config's, else "dev")
  --config <file>             Users and clients, YAML or JSON (default: built-in demo realm)
  --keys <file>               Keep signing keys in this private JWKS file (created 0600,
                              its folder 0700)
  --rotate-keys               Put a new signing key in front of --keys before starting;
                              older keys stay published so their tokens still verify
  --access-token-ttl <secs>   Access and ID token lifetime
  --token-style <style>       keycloak (typ JWT / "Bearer", default) or rfc9068 (at+jwt)
  --pid-file <file>           Write the process id here while running (to stop it later
                              with kill "$(cat <file>)")
  -h, --help                  Show this help

Stop with Ctrl-C or SIGTERM.`

const OPTIONS = {
  host: hostOption(),
  port: portOption(),
  realm: nameOption(),
  config: pathOption(),
  keys: pathOption(),
  'rotate-keys': flagOption(),
  'access-token-ttl': integerOption(1),
  'token-style': choiceOption(['keycloak', 'rfc9068']),
  'pid-file': pathOption(),
}

function describeRealm(config: ResolvedIdpConfig): string[] {
  const lines = ['Users:']
  for (const user of config.users) {
    const roles = Object.entries(user.roles)
      .map(([client, list]) => `${list.join(',')} in ${client === '*' ? 'every client' : client}`)
      .join('; ')
    lines.push(
      `  ${user.username} / ${user.password}${roles ? `  (roles ${roles})` : '  (no roles)'}${user.otp_secret === undefined ? '' : `  (TOTP secret ${user.otp_secret})`}`,
    )
  }
  if (config.kerberos !== undefined) {
    lines.push(
      `Kerberos: principals of ${config.kerberos.realm} sign in as the user of the same name (keytab ${config.kerberos.keytab})`,
    )
  }
  lines.push('Clients:')
  for (const client of config.clients) {
    const secret =
      client.secret !== undefined
        ? `secret ${client.secret}`
        : client.token_endpoint_auth_method === 'private_key_jwt'
          ? 'private_key_jwt'
          : 'public'
    lines.push(`  ${client.client_id}  (${secret}; ${client.grant_types.join(', ')})`)
  }
  return lines
}

export const command: Command = {
  help,
  options: OPTIONS,
  async run(args, { out, stopped }) {
    const values = parseOptions('idp', args, OPTIONS)
    const port = values.port ?? 4000
    const removePidFile =
      values['pid-file'] === undefined ? undefined : await writePidFile(values['pid-file'])
    try {
      if (values['rotate-keys'] === true) {
        if (values.keys === undefined)
          throw new UsageError('--rotate-keys needs --keys <file>', 'idp')
        const keys = await rotateKeysFile(values.keys)
        out(
          `Rotated ${values.keys}: new signing key ${keys[0]?.kid ?? ''}, ${keys.length - 1} older key(s) still published`,
        )
      }

      const config =
        values.config === undefined
          ? resolveIdpConfig(DEFAULT_IDP_CONFIG)
          : await loadIdpConfigFile(values.config)
      let idp: RunningIdp
      try {
        idp = await startIdp({
          host: values.host ?? '127.0.0.1',
          port,
          config: values.config ?? DEFAULT_IDP_CONFIG,
          tokenStyle: values['token-style'] ?? 'keycloak',
          log: out,
          ...(values.realm === undefined ? {} : { realm: values.realm }),
          ...(values.keys === undefined ? {} : { keys: values.keys }),
          ...(values['access-token-ttl'] === undefined
            ? {}
            : { accessTokenTtl: values['access-token-ttl'] }),
        })
      } catch (error) {
        if (error instanceof Error && 'syscall' in error) {
          throw listenFailure(error, 'identity provider', '--port', port)
        }
        throw error
      }
      const oidc = `${idp.issuer}/protocol/openid-connect`
      out(`ssokit idp: realm ready at ${idp.issuer}`)
      for (const [label, url] of [
        ['discovery', `${idp.issuer}/.well-known/openid-configuration`],
        ['authorization', `${oidc}/auth`],
        ['token', `${oidc}/token`],
        ['api-access token', `${idp.issuer}/api-access/token`],
        ['certs (JWKS)', `${oidc}/certs`],
        ['userinfo', `${oidc}/userinfo`],
        ['device authorization', `${oidc}/auth/device`],
        ['device login page', `${idp.issuer}/device`],
        ['introspection', `${oidc}/token/introspect`],
        ['revocation', `${oidc}/revoke`],
        ['logout', `${oidc}/logout`],
      ] as const) {
        out(`  ${label.padEnd(21)} ${url}`)
      }
      for (const line of describeRealm(config)) out(line)
      out('Press Ctrl-C to stop.')
      const signal = await stopped
      out(`Received ${signal}, stopping.`)
      await idp.close()
      return 0
    } finally {
      await removePidFile?.()
    }
  },
}
