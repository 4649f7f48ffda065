/**
 * The demo application's pages: self-contained HTML with one inline style sheet, no script. Every
 * value that comes from a token or a request is escaped here, in one place.
 */
import { createHash } from 'node:crypto'
import type { Identity, SessionPage } from '@ssokit/core'

export function escapeHtml(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&#39;')
}

const STYLE = `
:root {
  color-scheme: light dark;
  --bg: #f5f6f8; --card: #ffffff; --text: #1d2330; --muted: #5d6678; --line: #e3e6ec;
  --accent: #2f5bea; --accent-text: #ffffff; --chip: #eef2ff; --chip-text: #2f4bb8;
  --warn: #b3261e; --warn-bg: #fdecea;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #12151c; --card: #1b1f29; --text: #e6e9ef; --muted: #9aa3b5; --line: #2b3140;
    --accent: #6d8cff; --accent-text: #0b0e14; --chip: #26304d; --chip-text: #c4d0ff;
    --warn: #ff8a80; --warn-bg: #3a1d1b;
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 16px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif;
}
header {
  background: var(--card); border-bottom: 1px solid var(--line);
}
.bar {
  max-width: 760px; margin: 0 auto; padding: 14px 24px;
  display: flex; align-items: center; gap: 24px;
}
.brand { font-weight: 700; letter-spacing: -0.01em; color: var(--text); text-decoration: none; }
.brand span { color: var(--accent); }
nav { display: flex; gap: 18px; margin-left: auto; }
nav a { color: var(--muted); text-decoration: none; font-size: 15px; }
nav a:hover, nav a[aria-current="page"] { color: var(--text); }
main { max-width: 760px; margin: 0 auto; padding: 40px 24px 64px; }
h1 { font-size: 34px; line-height: 1.2; margin: 0 0 8px; letter-spacing: -0.02em; }
h2 { font-size: 18px; margin: 0 0 16px; }
.lead { color: var(--muted); margin: 0 0 32px; }
.card {
  background: var(--card); border: 1px solid var(--line); border-radius: 12px;
  padding: 24px; margin-bottom: 24px;
}
.card p:last-child { margin-bottom: 0; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 10px 24px; margin: 0 0 20px; }
dt { color: var(--muted); }
dd { margin: 0; word-break: break-word; }
dl:last-child { margin-bottom: 0; }
.chips { display: flex; flex-wrap: wrap; gap: 6px; }
.chip {
  background: var(--chip); color: var(--chip-text); border-radius: 999px;
  padding: 1px 10px; font-size: 14px;
}
.none { color: var(--muted); font-style: italic; }
.button, .session button {
  display: inline-block; border: 0; border-radius: 8px; padding: 10px 18px; cursor: pointer;
  background: var(--accent); color: var(--accent-text); font: inherit; font-weight: 600;
  text-decoration: none;
}
.button.secondary {
  background: transparent; color: var(--text); border: 1px solid var(--line);
}
.actions { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
.actions form { margin: 0; }
.session form { margin: 0 0 16px; }
.notice { border-color: var(--warn); background: var(--warn-bg); }
.notice h1 { color: var(--warn); }
code {
  font: 14px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace;
  background: var(--bg); border: 1px solid var(--line); border-radius: 6px; padding: 1px 6px;
}
pre {
  margin: 0; overflow-x: auto; background: var(--bg); border: 1px solid var(--line);
  border-radius: 8px; padding: 12px 14px;
}
pre code { border: 0; padding: 0; background: none; }
`

const ICON = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="8" fill="#2f5bea"/><path d="M10 15v-3a6 6 0 0 1 12 0v3" fill="none" stroke="#fff" stroke-width="2.5"/><rect x="8" y="15" width="16" height="11" rx="2" fill="#fff"/></svg>`

/** The favicon, served by the app itself so the page needs nothing from elsewhere. */
export const FAVICON_SVG = ICON

const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64')

/**
 * Headers of every page: the inline style sheet is allowed by its hash, scripts not at all, and
 * forms may post only to the app and (for the logout redirect) to the identity provider.
 */
export function pageHeaders(issuerOrigin: string): Record<string, string> {
  return {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'same-origin',
    'content-security-policy': pagePolicy(issuerOrigin),
  }
}

/** The Content-Security-Policy of every page (see `pageHeaders`). */
export function pagePolicy(issuerOrigin: string): string {
  return [
    "default-src 'none'",
    `style-src 'sha256-${STYLE_HASH}'`,
    "img-src 'self'",
    // Lets a page's own script call the JSON API with its session cookie.
    "connect-src 'self'",
    `form-action 'self' ${issuerOrigin}`,
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; ')
}

export type Section = 'home' | 'admin' | 'whoami' | 'other'

interface Layout {
  readonly title: string
  readonly section: Section
  readonly body: string
}

function navLink(href: string, text: string, current: boolean): string {
  return `<a href="${href}"${current ? ' aria-current="page"' : ''}>${text}</a>`
}

function layout({ title, section, body }: Layout): string {
  return layoutHtml(escapeHtml(title), section, body)
}

function layoutHtml(titleHtml: string, section: Section, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${titleHtml} · ssokit demo</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<style>${STYLE}</style>
</head>
<body>
<header><div class="bar">
<a class="brand" href="/">ssokit <span>demo</span></a>
<nav>
${navLink('/', 'Home', section === 'home')}
${navLink('/api/whoami', 'API', section === 'whoami')}
${navLink('/admin', 'Admin', section === 'admin')}
</nav>
</div></header>
<main>
${body}
</main>
</body>
</html>
`
}

function roleChips(roles: ReadonlySet<string>): string {
  if (roles.size === 0) return '<span class="none">none</span>'
  const chips = [...roles]
    .sort()
    .map((role) => `<span class="chip">${escapeHtml(role)}</span>`)
    .join('')
  return `<span class="chips" id="roles">${chips}</span>`
}

function value(text: string | undefined, id: string): string {
  return text === undefined || text === ''
    ? `<span class="none" id="${id}">not provided</span>`
    : `<span id="${id}">${escapeHtml(text)}</span>`
}

function serverTime(now: Date): string {
  const text = now.toUTCString().replace('GMT', 'UTC')
  return `<time datetime="${now.toISOString()}" id="server-time">${escapeHtml(text)}</time>`
}

export interface HomePage {
  readonly now: Date
  /** The signed-in user, when there is one. */
  readonly identity: Identity | undefined
  readonly loginUrl: string
  readonly logoutUrl: string
  /** The app's own origin, for the curl example. */
  readonly publicUrl: string
}

export function homePage({ now, identity, loginUrl, logoutUrl, publicUrl }: HomePage): string {
  const time = `<p class="lead">Server time: ${serverTime(now)}</p>`
  if (identity === undefined) {
    return layout({
      title: 'Hello, World!',
      section: 'home',
      body: `<h1>Hello, World!</h1>
${time}
<section class="card">
<h2>You are not signed in</h2>
<p>This application lets its identity provider check who you are. Sign in with one of the demo
accounts: <code>alice</code> / <code>alice</code> (an administrator) or <code>bob</code> /
<code>bob</code> (no roles).</p>
<div class="actions"><a class="button" id="login" href="${escapeHtml(loginUrl)}">Log in</a></div>
</section>`,
    })
  }
  const greeting = identity.name ?? identity.username
  return layout({
    title: 'Hello, World!',
    section: 'home',
    body: `<h1>Hello, World!</h1>
${time}
<section class="card">
<h2>Signed in as ${escapeHtml(greeting)}</h2>
<dl>
<dt>Name</dt><dd>${value(identity.name, 'name')}</dd>
<dt>Username</dt><dd>${value(identity.username, 'username')}</dd>
<dt>Email</dt><dd>${value(identity.email, 'email')}</dd>
<dt>Roles</dt><dd>${roleChips(identity.roles)}</dd>
</dl>
<div class="actions">
<form method="post" action="${escapeHtml(logoutUrl)}"><button class="button" id="logout" type="submit">Log out</button></form>
<a class="button secondary" href="/api/whoami">View as JSON</a>
${identity.roles.has('admin') ? '<a class="button secondary" href="/admin">Admin</a>' : ''}
</div>
</section>
<section class="card">
<h2>Call the API from a script</h2>
<p>The same routes accept a bearer token from the identity provider instead of the session cookie:</p>
<pre><code>curl -H "Authorization: Bearer $TOKEN" ${escapeHtml(publicUrl)}/api/whoami</code></pre>
</section>`,
  })
}

export interface AdminPage {
  readonly now: Date
  readonly identity: Identity
  readonly issuer: string
  readonly store: string
  readonly startedAt: Date
}

export function adminPage({ now, identity, issuer, store, startedAt }: AdminPage): string {
  const uptime = Math.max(0, Math.floor((now.getTime() - startedAt.getTime()) / 1000))
  const hours = Math.floor(uptime / 3600)
  const minutes = Math.floor((uptime % 3600) / 60)
  const seconds = uptime % 60
  const name = identity.name ?? identity.username
  return layout({
    title: 'Administration',
    section: 'admin',
    body: `<h1>Administration</h1>
<p class="lead">Only accounts holding the <code>admin</code> role see this page. Welcome, ${escapeHtml(name)}.</p>
<section class="card">
<h2>This application</h2>
<dl>
<dt>Identity provider</dt><dd><code>${escapeHtml(issuer)}</code></dd>
<dt>Client</dt><dd><code>demo-app</code></dd>
<dt>Session store</dt><dd>${escapeHtml(store)}</dd>
<dt>Up for</dt><dd>${hours}h ${minutes}m ${seconds}s</dd>
<dt>Server time</dt><dd>${serverTime(now)}</dd>
</dl>
</section>`,
  })
}

export function forbiddenPage(identity: Identity, role: string): string {
  const name = identity.name ?? identity.username
  return layout({
    title: 'Access denied',
    section: 'admin',
    body: `<section class="card notice">
<h1>Access denied</h1>
<p>You are signed in as ${escapeHtml(name)}, but this page is for accounts with the
<code>${escapeHtml(role)}</code> role, which yours does not have.</p>
<p>Ask an administrator for the role, or sign in with another account.</p>
<div class="actions"><a class="button secondary" href="/">Back to the home page</a></div>
</section>`,
  })
}

export function messagePage(title: string, text: string): string {
  return layout({
    title,
    section: 'other',
    body: `<section class="card">
<h1>${escapeHtml(title)}</h1>
<p>${escapeHtml(text)}</p>
<div class="actions"><a class="button secondary" href="/">Back to the home page</a></div>
</section>`,
  })
}

/** The pages of the session routes (a failed sign-in, the store down), in the demo's layout. */
export function sessionPage({ status, titleHtml, bodyHtml }: SessionPage): string {
  return layoutHtml(
    titleHtml,
    'other',
    `<section class="card session${status >= 400 ? ' notice' : ''}">
<h1>${titleHtml}</h1>
${bodyHtml}
<div class="actions"><a class="button secondary" href="/">Back to the home page</a></div>
</section>`,
  )
}
