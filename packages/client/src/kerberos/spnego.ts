/**
 * SPNEGO tokens (RFC 4559) from the user's Kerberos credentials, through the optional
 * `kerberos` module (GSSAPI). GSSAPI finds the ticket cache and a client keytab only through
 * `KRB5CCNAME` and `KRB5_CLIENT_KTNAME`, so a login that names its own sets them for the moment
 * of the call, one call at a time.
 */
import { execFile } from 'node:child_process'

import { SsoError } from '@ssokit/core/errors'

interface KerberosClientContext {
  readonly username: string
  step(challenge: string): Promise<string>
}

interface KerberosModule {
  readonly GSS_MECH_OID_SPNEGO: number
  initializeClient(
    service: string,
    options: { mechOID: number; principal?: string },
  ): Promise<KerberosClientContext>
}

export interface KerberosCredentials {
  /** The ticket cache (`KRB5CCNAME` syntax, `FILE:/tmp/krb5cc_1000`). Default: the environment's. */
  readonly ccache?: string | undefined
  /** A client keytab to get a ticket from instead of a ticket cache (with `principal`). */
  readonly keytab?: string | undefined
  /** The client principal (`user@REALM`), to choose among several credentials. */
  readonly principal?: string | undefined
}

let loaded: Promise<KerberosModule> | undefined

/** The `kerberos` module, or `kerberos_unavailable` naming how to install it. */
export function kerberosModule(): Promise<KerberosModule> {
  loaded ??= import('kerberos').then(
    (imported: { default?: KerberosModule } & Partial<KerberosModule>) =>
      imported.default ?? (imported as KerberosModule),
    (cause: unknown) => {
      loaded = undefined
      throw new SsoError(
        'kerberos_unavailable',
        'Kerberos login needs the optional "kerberos" module: run `npm install kerberos` (it compiles against the GSSAPI headers; on Debian or Ubuntu first `apt-get install libkrb5-dev build-essential python3`).',
        { cause },
      )
    },
  )
  return loaded
}

let queue: Promise<unknown> = Promise.resolve()

/** Runs `task` with the environment variables set, no other GSSAPI call in between. */
function withEnvironment<T>(
  variables: Readonly<Record<string, string | undefined>>,
  task: () => Promise<T>,
): Promise<T> {
  const run = async (): Promise<T> => {
    const saved = new Map<string, string | undefined>()
    for (const [name, value] of Object.entries(variables)) {
      if (value === undefined) continue
      saved.set(name, process.env[name])
      process.env[name] = value
    }
    try {
      return await task()
    } finally {
      for (const [name, value] of saved) {
        if (value === undefined) Reflect.deleteProperty(process.env, name)
        else process.env[name] = value
      }
    }
  }
  const result = queue.then(run, run)
  queue = result.catch(() => undefined)
  return result
}

function prefixed(value: string): string {
  return /^[A-Z]+:/.test(value) ? value : `FILE:${value}`
}

/** What GSSAPI's failure means for the user, with the command that fixes it. */
export function translateGssError(error: unknown, credentials: KerberosCredentials): SsoError {
  const text = error instanceof Error ? error.message : String(error)
  const who = credentials.principal ?? 'you@REALM'
  if (/expired/i.test(text)) {
    return new SsoError(
      'kerberos_ticket_expired',
      `The Kerberos ticket has expired: run \`kinit ${who}\` again${credentials.keytab === undefined ? '' : ' (or check the keytab)'}.`,
      { cause: error },
    )
  }
  if (
    /No credentials were supplied|cannot find mechanisms|No Kerberos credentials|credentials cache|No such file/i.test(
      text,
    )
  ) {
    return new SsoError(
      'kerberos_ticket_missing',
      credentials.keytab === undefined
        ? `No Kerberos ticket: run \`kinit ${who}\` first (or give a keytab).`
        : `The keytab gave no Kerberos ticket for ${who}: check the keytab and the principal.`,
      { cause: error },
    )
  }
  if (/Server not found in Kerberos database/i.test(text)) {
    return new SsoError(
      'kerberos_refused',
      'The Kerberos realm does not know the sign-in service of this provider (no HTTP/<host> principal).',
      { cause: error },
    )
  }
  return new SsoError('kerberos_refused', `Kerberos failed: ${text.replace(/\s+/g, ' ')}`, {
    cause: error,
  })
}

/** The default principal of a ticket cache, as `klist` prints it. */
function cachePrincipal(ccache: string | undefined): Promise<string | undefined> {
  return new Promise((resolve) => {
    const args = ccache === undefined ? [] : ['-c', ccache]
    execFile('klist', args, { timeout: 5000 }, (error, stdout) => {
      resolve(error ? undefined : /^Default principal:\s*(\S+)/m.exec(stdout)?.[1])
    })
  })
}

export interface NegotiateResult {
  /** The base64 token for `Authorization: Negotiate <token>`. */
  readonly token: string
  /**
   * The client principal (`alice@EXAMPLE.ORG`): from the server's mutual-authentication reply
   * (`WWW-Authenticate: Negotiate <reply>`) when it sent one, else the credentials' own.
   */
  principal(reply: string | undefined): Promise<string | undefined>
}

/** A token for `service` (`HTTP@host`), with the credentials given or the environment's. */
export async function negotiate(
  service: string,
  credentials: KerberosCredentials,
): Promise<NegotiateResult> {
  const kerberos = await kerberosModule()
  const variables: Record<string, string | undefined> = {}
  if (credentials.keytab !== undefined) {
    variables.KRB5_CLIENT_KTNAME = prefixed(credentials.keytab)
    // A private cache for the ticket the keytab gives, so the user's own cache is left alone.
    variables.KRB5CCNAME =
      credentials.ccache ?? `MEMORY:ssokit-${Math.random().toString(36).slice(2)}`
  } else if (credentials.ccache !== undefined) {
    variables.KRB5CCNAME = credentials.ccache
  }
  return withEnvironment(variables, async () => {
    try {
      const client = await kerberos.initializeClient(service, {
        mechOID: kerberos.GSS_MECH_OID_SPNEGO,
        ...(credentials.principal === undefined ? {} : { principal: credentials.principal }),
      })
      const token = await client.step('')
      return {
        token,
        principal: async (reply) => {
          if (reply !== undefined) {
            try {
              await client.step(reply)
              if (client.username) return client.username
            } catch {
              // A reply that does not verify says nothing about who we are; ask the cache.
            }
          }
          return credentials.principal ?? (await cachePrincipal(credentials.ccache))
        },
      }
    } catch (error) {
      throw translateGssError(error, credentials)
    }
  })
}
