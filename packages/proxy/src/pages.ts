/** The proxy's own error answers: JSON for scripts, a short HTML page for browsers. */
import type { IncomingMessage, ServerResponse } from 'node:http'

const MESSAGES: Readonly<Record<number, readonly [code: string, title: string, text: string]>> = {
  400: ['invalid_request', 'Bad request', 'This address cannot be served.'],
  404: ['not_found', 'Not found', 'There is nothing here.'],
  405: ['method_not_allowed', 'Method not allowed', 'This method is not served here.'],
  501: [
    'upgrade_not_supported',
    'Not implemented',
    'Only WebSocket connection upgrades are served here.',
  ],
  502: [
    'upstream_unavailable',
    'Application unavailable',
    'The application behind this sign-in service cannot be reached. Please try again shortly.',
  ],
  504: [
    'upstream_timeout',
    'Application timed out',
    'The application behind this sign-in service took too long to answer. Please try again.',
  ],
}

/** Whether the client asked for JSON (an API call or XHR) rather than a page. */
export function wantsJson(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? ''
  return (
    /\bapplication\/(?:[\w.+-]+\+)?json\b/i.test(accept) ||
    req.headers['x-requested-with'] !== undefined ||
    !/text\/html/i.test(accept)
  )
}

/** The proxy's own HTML page: `title` and paragraphs that are HTML already (escaped by the caller). */
export function pageHtml(title: string, paragraphs: readonly string[]): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>` +
    `<body><h1>${title}</h1>${paragraphs.map((html) => `<p>${html}</p>`).join('')}</body></html>`
  )
}

export function sendError(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  extra: Readonly<Record<string, string>> = {},
): void {
  const [code, title, text] = MESSAGES[status] ?? ['error', 'Error', 'Something went wrong.']
  res.statusCode = status
  res.setHeader('cache-control', 'no-store')
  for (const [name, value] of Object.entries(extra)) res.setHeader(name, value)
  if (wantsJson(req)) {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ error: code }))
    return
  }
  res.setHeader('content-type', 'text/html; charset=utf-8')
  res.setHeader('content-security-policy', "default-src 'none'")
  res.end(pageHtml(title, [text]))
}
