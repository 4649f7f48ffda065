/**
 * Plain-language reasons a server of the command line could not listen, and the check that a
 * `localhost` URL really reaches the server that printed it.
 */
import { lookup } from 'node:dns/promises'
import { createServer } from 'node:net'

function errorCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null || !('code' in error)) return undefined
  return typeof error.code === 'string' ? error.code : undefined
}

/** A server that could not start: the message says what to change, `cause` keeps the detail. */
export class ListenError extends Error {
  override readonly name = 'ListenError'
}

/**
 * What to tell the user when `what` (e.g. "identity provider") could not listen on `port`;
 * `flag` is the option that changes it.
 */
export function listenFailure(
  error: unknown,
  what: string,
  flag: string,
  port: number,
): ListenError {
  switch (errorCode(error)) {
    case 'EADDRINUSE':
      return new ListenError(
        `port ${port} is already in use, so the ${what} cannot start; stop whatever uses it or choose another port with ${flag}`,
        { cause: error },
      )
    case 'EACCES':
      return new ListenError(
        `port ${port} needs privileges this user lacks, so the ${what} cannot start; choose another port with ${flag}`,
        { cause: error },
      )
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
      return new ListenError(
        `the ${what} cannot start: this machine has no address ${JSON.stringify(hostOf(error))}; choose another with --host`,
        { cause: error },
      )
    default:
      return new ListenError(
        `the ${what} cannot start: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      )
  }
}

function hostOf(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    if ('hostname' in error && typeof error.hostname === 'string') return error.hostname
    if ('address' in error && typeof error.address === 'string') return error.address
  }
  return ''
}

/**
 * Throws `EADDRINUSE` when `port` is taken on any address `localhost` may mean other than `own`
 * (the one the server itself listens on): what the resolver says, and both loopback addresses,
 * since browsers resolve localhost themselves and may pick `::1` whatever /etc/hosts says.
 * A process there would answer the printed URL instead of ours.
 */
export async function assertLocalhostFree(port: number, own: string): Promise<void> {
  const resolved = await lookup('localhost', { all: true }).catch(() => [])
  const addresses = new Set(['127.0.0.1', '::1', ...resolved.map((entry) => entry.address)])
  for (const address of addresses) {
    if (address === own) continue
    await new Promise<void>((resolve, reject) => {
      const probe = createServer()
      probe.once('error', (error) => {
        // An address family this machine cannot bind (no IPv6) cannot be reached either.
        if (errorCode(error) === 'EADDRNOTAVAIL' || errorCode(error) === 'EAFNOSUPPORT') resolve()
        else reject(error)
      })
      probe.listen({ port, host: address, exclusive: true }, () => {
        probe.close(() => {
          resolve()
        })
      })
    })
  }
}
