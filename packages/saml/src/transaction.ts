/**
 * The AuthnRequest a browser started: its ID and where to return, sealed in a short-lived
 * cookie per parallel flow. The ACS accepts a Response only in reply to an ID this browser's
 * cookies name. The cookie is `SameSite=None` (over https): the IdP's form posts the Response
 * from another site, and a `Lax` cookie would not come along.
 */
import { serializeCookie, type CookieJar } from '@ssokit/core/session-kit'
import type { SamlContext } from './context.js'

const TX_PURPOSE = 'ssokit:saml-transaction'
export const SAML_TX_TTL_S = 600
const MAX_TRANSACTIONS = 5

export interface SamlTransaction {
  readonly requestId: string
  readonly returnTo: string
  readonly startedAt: number
  readonly cookie: string
}

function prefix(context: SamlContext): string {
  return `${context.config.transactionCookiePrefix}saml-`
}

export function transactionCookieName(context: SamlContext, requestId: string): string {
  return `${prefix(context)}${requestId.slice(1, 17)}`
}

export function transactionCookie(
  context: SamlContext,
  name: string,
  value: string,
  maxAge: number,
): string {
  const { secure } = context.config
  return serializeCookie(name, value, {
    path: '/',
    secure,
    maxAge,
    // Browsers drop SameSite=None without Secure; plain-http development stays same-site anyway.
    sameSite: secure ? 'None' : 'Lax',
  })
}

export async function sealTransaction(
  context: SamlContext,
  requestId: string,
  returnTo: string,
): Promise<string> {
  const now = Math.floor(context.config.now() / 1000)
  return context.keyring.seal(
    { rid: requestId, r: returnTo, t: context.config.now() },
    TX_PURPOSE,
    now,
    now + SAML_TX_TTL_S,
  )
}

/** Every open SAML transaction this browser holds, newest first. */
export async function openTransactions(
  context: SamlContext,
  cookies: CookieJar,
): Promise<SamlTransaction[]> {
  const now = Math.floor(context.config.now() / 1000)
  const names = [...cookies.keys()].filter((n) => n.startsWith(prefix(context)))
  const opened = await Promise.all(
    names.slice(0, MAX_TRANSACTIONS * 4).map(async (cookie) => {
      const payload = await context.keyring.open(cookies.get(cookie)?.[0] ?? '', TX_PURPOSE, now)
      const { rid, r, t } = payload ?? {}
      if (typeof rid !== 'string' || typeof r !== 'string' || typeof t !== 'number')
        return undefined
      if (transactionCookieName(context, rid) !== cookie) return undefined
      return { requestId: rid, returnTo: r, startedAt: t, cookie }
    }),
  )
  return opened
    .filter((t): t is SamlTransaction => t !== undefined)
    .sort((a, b) => b.startedAt - a.startedAt)
}

/** Cookie names to expire so that, with a new one, at most MAX_TRANSACTIONS remain. */
export function transactionsToEvict(
  context: SamlContext,
  cookies: CookieJar,
  open: readonly SamlTransaction[],
): string[] {
  const names = [...cookies.keys()].filter((n) => n.startsWith(prefix(context)))
  const keep = new Set(open.slice(0, MAX_TRANSACTIONS - 1).map((t) => t.cookie))
  return names.filter((n) => !keep.has(n))
}
