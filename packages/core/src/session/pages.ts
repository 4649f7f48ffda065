/**
 * The few HTML pages the session routes answer with. Every dynamic text is HTML-escaped and
 * length-capped; pages are never cached and allow no script, style or frame.
 */

const MAX_TEXT = 300

export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;')
}

/** Escapes `text` after cutting it to a readable length and dropping control characters. */
export function displayText(text: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = text.replace(/[\x00-\x1f\x7f]/g, ' ')
  return escapeHtml(clean.length > MAX_TEXT ? `${clean.slice(0, MAX_TEXT)}…` : clean)
}

export const PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
})

export interface PageContent {
  readonly title: string
  /** Paragraphs of plain text; escaped here. */
  readonly paragraphs: readonly string[]
  /** An optional link back into the application (a trusted, already validated URL). */
  readonly link?: { readonly href: string; readonly text: string }
}

export function renderPage(content: PageContent): string {
  const body = content.paragraphs.map((p) => `<p>${displayText(p)}</p>`).join('\n')
  const link = content.link
    ? `\n<p><a href="${escapeHtml(content.link.href)}">${escapeHtml(content.link.text)}</a></p>`
    : ''
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${displayText(content.title)}</title></head>
<body>
<h1>${displayText(content.title)}</h1>
${body}${link}
</body>
</html>
`
}

export function pageResponse(
  status: number,
  content: PageContent,
  extraHeaders: Headers = new Headers(),
): Response {
  const headers = new Headers(PAGE_HEADERS)
  for (const [name, value] of extraHeaders) {
    if (name !== 'set-cookie') headers.set(name, value)
  }
  for (const cookie of extraHeaders.getSetCookie()) headers.append('set-cookie', cookie)
  return new Response(renderPage(content), { status, headers })
}
