import { parseArgs } from 'node:util'
import {
  DEFAULT_IDP_CONFIG,
  loadIdpConfigFile,
  resolveIdpConfig,
  rotateKeysFile,
  startIdp,
  type ResolvedIdpConfig,
  type TokenStyle,
} from '@ssokit/idp'
import { UsageError, type Command } from '../errors.js'

const help = `Usage: ssokit idp [options]

Runs a development OpenID provider that looks like a Keycloak realm (CERN SSO claims).
Issuer: http://<host>:<port>/auth/realms/<realm>

Options:
  --host <address>            Interface to listen on (default 127.0.0.1)
  --port <number>             Port, 0 for any free port (default 4000)
  --realm <name>              Realm name (default: the config's, else "dev")
  --config <file>             Users and clients, YAML or JSON (default: built-in demo realm)
  --keys <file>               Keep signing keys in this private JWKS file (created 0600)
  --rotate-keys               Put a new signing key in front of --keys before starting;
                              older keys stay published so their tokens still verify
  --access-token-ttl <secs>   Access and ID token lifetime
  --token-style <style>       keycloak (typ JWT / "Bearer", default) or rfc9068 (at+jwt)
  -h, --help                  Show this help

Stop with Ctrl-C.`

function integer(value: string | undefined, flag: string, min: number): number | undefined {
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value) || Number(value) < min) {
    throw new UsageError(
      `${flag} must be a whole number${min > 0 ? ` of at least ${min}` : ''}`,
      'idp',
    )
  }
  return Number(value)
}

function describeRealm(config: ResolvedIdpConfig): string[] {
  const lines = ['Users:']
  for (const user of config.users) {
    const roles = Object.entries(user.roles)
      .map(([client, list]) => `${list.join(',')} in ${client === '*' ? 'every client' : client}`)
      .join('; ')
    lines.push(
      `  ${user.username} / ${user.password}${roles ? `  (roles ${roles})` : '  (no roles)'}`,
    )
  }
  lines.push('Clients:')
  for (const client of config.clients) {
    const secret = client.secret === undefined ? 'public' : `secret ${client.secret}`
    lines.push(`  ${client.client_id}  (${secret}; ${client.grant_types.join(', ')})`)
  }
  return lines
}

export const command: Command = {
  help,
  async run(args, { out, stopped }) {
    let values
    try {
      ;({ values } = parseArgs({
        args: [...args],
        strict: true,
        allowPositionals: false,
        options: {
          host: { type: 'string' },
          port: { type: 'string' },
          realm: { type: 'string' },
          config: { type: 'string' },
          keys: { type: 'string' },
          'rotate-keys': { type: 'boolean' },
          'access-token-ttl': { type: 'string' },
          'token-style': { type: 'string' },
        },
      }))
    } catch (error) {
      throw new UsageError(error instanceof Error ? error.message : String(error), 'idp')
    }
    const style = values['token-style'] ?? 'keycloak'
    if (style !== 'keycloak' && style !== 'rfc9068') {
      throw new UsageError('--token-style must be keycloak or rfc9068', 'idp')
    }
    const port = integer(values.port, '--port', 0) ?? 4000
    if (port > 65535) throw new UsageError('--port must be at most 65535', 'idp')
    const accessTokenTtl = integer(values['access-token-ttl'], '--access-token-ttl', 1)
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
    const idp = await startIdp({
      host: values.host ?? '127.0.0.1',
      port,
      config: values.config ?? DEFAULT_IDP_CONFIG,
      tokenStyle: style satisfies TokenStyle,
      log: out,
      ...(values.realm === undefined ? {} : { realm: values.realm }),
      ...(values.keys === undefined ? {} : { keys: values.keys }),
      ...(accessTokenTtl === undefined ? {} : { accessTokenTtl }),
    })
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
  },
}
