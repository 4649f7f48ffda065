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

/** A button that submits a form to one of the session routes (a trusted URL). */
export interface PageForm {
  readonly method: 'get' | 'post'
  readonly action: string
  readonly button: string
  /** Hidden fields sent along; names and values are escaped here. */
  readonly fields?: Readonly<Record<string, string>>
}

export interface PageContent {
  readonly title: string
  /** Paragraphs of plain text; escaped here. */
  readonly paragraphs: readonly string[]
  /** An optional form with one button, before the link. */
  readonly form?: PageForm
  /** An optional link back into the application (a trusted, already validated URL). */
  readonly link?: { readonly href: string; readonly text: string }
}

/** A page of the session side, handed to `pages.render` to be laid out like the application. */
export interface SessionPage {
  readonly status: number
  /** The title, escaped for HTML (for `<title>` and the heading). */
  readonly titleHtml: string
  /** The message: paragraphs, maybe a form with one button and a link, as escaped HTML. */
  readonly bodyHtml: string
}

/** The `pages` option of `createSessionAuth`: the application's own look for its few pages. */
export interface SessionPageOptions {
  /** The whole HTML document for `page`. Put `titleHtml` and `bodyHtml` in as they are. */
  readonly render: (page: SessionPage) => string
  /**
   * Sent with rendered pages instead of the default, which allows no style or script at all; it
   * must allow what `render` uses (e.g. `style-src 'sha256-...'`).
   */
  readonly contentSecurityPolicy?: string
}

function formHtml(form: PageForm): string {
  const fields = Object.entries(form.fields ?? {})
    .map(
      ([name, value]) =>
        `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`,
    )
    .join('')
  return `\n<form method="${form.method}" action="${escapeHtml(form.action)}">${fields}<button type="submit">${escapeHtml(form.button)}</button></form>`
}

function bodyHtml(content: PageContent): string {
  const body = content.paragraphs.map((p) => `<p>${displayText(p)}</p>`).join('\n')
  const form = content.form ? formHtml(content.form) : ''
  const link = content.link
    ? `\n<p><a href="${escapeHtml(content.link.href)}">${escapeHtml(content.link.text)}</a></p>`
    : ''
  return body + form + link
}

export function renderPage(content: PageContent): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${displayText(content.title)}</title></head>
<body>
<h1>${displayText(content.title)}</h1>
${bodyHtml(content)}
</body>
</html>
`
}

/** The document for `content`: the application's `pages.render`, else the plain default. */
export function renderWith(
  pages: SessionPageOptions | undefined,
  status: number,
  content: PageContent,
): string {
  if (pages === undefined) return renderPage(content)
  return pages.render({
    status,
    titleHtml: displayText(content.title),
    bodyHtml: bodyHtml(content),
  })
}

/** The page headers, with the application's policy when it renders the pages itself. */
export function pageHeaders(pages: SessionPageOptions | undefined): Record<string, string> {
  const policy = pages?.contentSecurityPolicy
  return policy === undefined
    ? { ...PAGE_HEADERS }
    : { ...PAGE_HEADERS, 'content-security-policy': policy }
}

// The session routes build their pages deep inside each step; what each page says is kept here
// so that the one exit of the routes can lay it out with the application's `pages.render`.
const contents = new WeakMap<Response, { status: number; content: PageContent }>()

/** `response` as the application renders it, when it is one of our pages and `pages` is set. */
export function applyPages(
  pages: SessionPageOptions | undefined,
  response: Response | undefined,
): Response | undefined {
  const page = response === undefined ? undefined : contents.get(response)
  if (pages === undefined || response === undefined || page === undefined) return response
  const headers = new Headers(response.headers)
  for (const [name, value] of Object.entries(pageHeaders(pages))) headers.set(name, value)
  return new Response(renderWith(pages, page.status, page.content), {
    status: response.status,
    headers,
  })
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
  const response = new Response(renderPage(content), { status, headers })
  contents.set(response, { status, content })
  return response
}
