/**
 * The login transaction: state, nonce and PKCE verifier sealed into a short-lived cookie
 * between /login and /callback, one cookie per parallel flow (tab).
 */
import type { CookieJar } from './cookies.js'
import { nowS, type SessionConfig, type SessionContext } from './context.js'
import { safeReturnTo } from './return-to.js'
import { safeEqual } from './seal.js'

/** A login transaction lives at most this long (between /login and /callback). */
export const TRANSACTION_TTL_S = 600
/**
 * Transaction cookies are `__Host-` cookies, which need `Path=/`: a sibling host can set a
 * `__Secure-` cookie with `Domain=<parent>` and so plant its own sign-in in a victim's browser,
 * but no host other than this one can set a `__Host-` cookie for it.
 */
export const TRANSACTION_PATH = '/'
/** Parallel login flows (tabs) kept per browser; the oldest transaction is dropped beyond it. */
const MAX_TRANSACTIONS = 5
const TX_PURPOSE = 'ssokit:transaction'

export interface Transaction {
  readonly state: string
  readonly nonce: string
  readonly verifier: string
  readonly returnTo: string
  readonly issuer: string
}

export function transactionCookie(config: SessionConfig, state: string): string {
  // The name carries a short, non-secret slice of the state so the callback finds its own flow.
  return `${config.transactionCookiePrefix}${state.slice(0, 12)}`
}

export async function sealTransaction(
  context: SessionContext,
  transaction: Omit<Transaction, 'issuer'>,
): Promise<string> {
  const { config, keyring } = context
  const now = nowS(config)
  return keyring.seal(
    {
      s: transaction.state,
      n: transaction.nonce,
      cv: transaction.verifier,
      r: transaction.returnTo,
      iss: config.issuer,
      t: config.now(),
    },
    TX_PURPOSE,
    now,
    now + TRANSACTION_TTL_S,
  )
}

/** Transaction cookies to drop so that, with the new one, at most MAX_TRANSACTIONS remain. */
export async function transactionsToEvict(
  context: SessionContext,
  cookies: CookieJar,
): Promise<string[]> {
  const { config, keyring } = context
  const names = [...cookies.keys()].filter((n) => n.startsWith(config.transactionCookiePrefix))
  if (names.length < MAX_TRANSACTIONS) return []
  const now = nowS(config)
  const aged = await Promise.all(
    names.slice(0, MAX_TRANSACTIONS * 4).map(async (name) => {
      const value = cookies.get(name)?.[0] ?? ''
      const payload = await keyring.open(value, TX_PURPOSE, now)
      return { name, started: typeof payload?.t === 'number' ? payload.t : 0 }
    }),
  )
  aged.sort((a, b) => b.started - a.started)
  const keep = new Set(aged.slice(0, MAX_TRANSACTIONS - 1).map((a) => a.name))
  return names.filter((n) => !keep.has(n))
}

export async function openTransaction(
  context: SessionContext,
  cookies: CookieJar,
  state: string,
): Promise<Transaction | undefined> {
  const { config, keyring } = context
  const sealed = cookies.get(transactionCookie(config, state))?.[0]
  if (sealed === undefined) return undefined
  const payload = await keyring.open(sealed, TX_PURPOSE, nowS(config))
  if (!payload) return undefined
  const { s, n, cv, r, iss } = payload
  if (
    typeof s !== 'string' ||
    typeof n !== 'string' ||
    typeof cv !== 'string' ||
    typeof r !== 'string' ||
    typeof iss !== 'string'
  ) {
    return undefined
  }
  if (!safeEqual(s, state) || iss !== config.issuer) return undefined
  return { state: s, nonce: n, verifier: cv, returnTo: safeReturnTo(r), issuer: iss }
}
