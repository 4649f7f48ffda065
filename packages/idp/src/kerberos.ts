/**
 * Kerberos sign-in (SPNEGO, RFC 4559): the browser or script answers `WWW-Authenticate: Negotiate`
 * with a GSSAPI token, checked here against the realm's keytab with the optional `kerberos` module.
 */
import type { ResolvedKerberos } from './config.js'

interface KerberosServerContext {
  readonly username: string
  readonly response: string
  readonly contextComplete: boolean
  step(token: string): Promise<string>
}

interface KerberosModule {
  initializeServer(service: string): Promise<KerberosServerContext>
}

/** Kerberos is configured but cannot be used on this machine. */
export class KerberosSetupError extends Error {
  override readonly name = 'KerberosSetupError'
  readonly code = 'ERR_KERBEROS_UNAVAILABLE'
}

export type NegotiateResult =
  | { readonly ok: true; readonly principal: string; readonly reply: string | undefined }
  | { readonly ok: false; readonly reason: string }

export interface KerberosAcceptor {
  /** Checks the base64 token of an `Authorization: Negotiate` header. */
  accept(token: string): Promise<NegotiateResult>
  /** The realm's user for a principal, or undefined when it maps to none. */
  userFor(principal: string): string | undefined
}

/**
 * Loads the `kerberos` module and points GSSAPI at the keytab. The keytab is named through
 * `KRB5_KTNAME` because the module offers no other way: one keytab per process.
 */
export async function createKerberosAcceptor(config: ResolvedKerberos): Promise<KerberosAcceptor> {
  let module: KerberosModule
  try {
    const imported = (await import('kerberos')) as { default?: KerberosModule } & KerberosModule
    module = imported.default ?? imported
  } catch (cause) {
    throw new KerberosSetupError(
      'kerberos is configured but the "kerberos" module is not installed: run `npm install kerberos` (it builds against the GSSAPI headers, Debian/Ubuntu: apt-get install libkrb5-dev build-essential)',
      { cause },
    )
  }
  process.env.KRB5_KTNAME = /^[A-Z]+:/.test(config.keytab) ? config.keytab : `FILE:${config.keytab}`
  const suffix = `@${config.realm}`
  return {
    async accept(token) {
      if (!/^[A-Za-z0-9+/]+=*$/.test(token)) return { ok: false, reason: 'malformed token' }
      try {
        const server = await module.initializeServer(config.service)
        const reply = await server.step(token)
        if (!server.contextComplete || !server.username) {
          return { ok: false, reason: 'the Kerberos exchange did not complete' }
        }
        return { ok: true, principal: server.username, reply: reply || undefined }
      } catch (error) {
        return { ok: false, reason: error instanceof Error ? error.message : String(error) }
      }
    },
    userFor(principal) {
      const mapped = config.principals[principal]
      if (mapped !== undefined) return mapped
      if (!principal.endsWith(suffix)) return undefined
      const name = principal.slice(0, -suffix.length)
      return name.includes('/') ? undefined : name
    },
  }
}
