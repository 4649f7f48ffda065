/**
 * The loopback redirect listener of a native app's browser login (RFC 8252 §7.3, §8.3): bound to
 * 127.0.0.1 only, on a port the system chooses, answering one request on the exact path with
 * the login's `state`, then closed. A request with another path is 404 and a wrong or missing
 * `state` is 400, and neither ends the wait. The pages say nothing from the query.
 */
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export const CALLBACK_PATH = '/callback'

const HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'content-security-policy': "default-src 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  connection: 'close',
}

function page(res: ServerResponse, status: number, title: string, text: string): void {
  res.writeHead(status, HEADERS)
  res.end(
    `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1><p>${text}</p></body></html>`,
  )
}

export interface LoopbackListener {
  /** `http://127.0.0.1:<port>/callback` */
  readonly redirectUri: string
  /** Resolves with the callback URL of the one request with the right `state`. */
  readonly callback: Promise<URL>
  /** Stops listening (idempotent); a pending `callback` rejects with `reason`. */
  close(reason?: Error): void
}

export async function listenOnLoopback(
  state: string,
  options: { port?: number; host?: string } = {},
): Promise<LoopbackListener> {
  let settle: { resolve: (url: URL) => void; reject: (error: Error) => void } | undefined
  const callback = new Promise<URL>((resolve, reject) => {
    settle = { resolve, reject }
  })
  // The caller awaits callback; an early close before that must not be an unhandled rejection.
  callback.catch(() => undefined)
  let done = false
  const server = createServer((req, res) => {
    if (done) {
      page(res, 410, 'Login finished', 'This login is over. You can close this window.')
      return
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    if (req.method !== 'GET' || url.pathname !== CALLBACK_PATH) {
      page(res, 404, 'Not found', 'This address is not part of the login.')
      return
    }
    if (url.searchParams.get('state') !== state) {
      page(
        res,
        400,
        'Login not accepted',
        'This answer does not belong to the login that is waiting.',
      )
      return
    }
    done = true
    const failed = url.searchParams.has('error')
    page(
      res,
      failed ? 400 : 200,
      failed ? 'Login failed' : 'Signed in',
      failed
        ? 'The identity provider did not sign you in. You can close this window.'
        : 'You are signed in. You can close this window and return to the terminal.',
    )
    res.on('finish', () => {
      close()
    })
    settle?.resolve(new URL(`${redirectUri}${url.search}`))
  })
  const close = (reason?: Error) => {
    done = true
    server.close()
    server.closeAllConnections()
    if (reason !== undefined) settle?.reject(reason)
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port } = server.address() as AddressInfo
  const redirectUri = `http://${options.host ?? '127.0.0.1'}:${port}${CALLBACK_PATH}`
  return { redirectUri, callback, close }
}
