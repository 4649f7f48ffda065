/** The realm's HTML pages: self-contained (inline CSS, no scripts, no external assets). */

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
}

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c)
}

/** Sent with every page: nothing may load from elsewhere, nothing may frame it. */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/html; charset=utf-8',
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'",
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
}

// Colours are variables so that the page follows the browser's dark mode (prefers-color-scheme).
const STYLE = `
:root{color-scheme:light dark;--bg:#f0f2f5;--card:#fff;--text:#1f2933;--heading:#102a43;--label:#334e68;
--muted:#52606d;--faint:#829ab1;--line:#bcccdc;--accent:#0b6bcb;--accent-hover:#0959aa;--accent-text:#fff;
--soft:#f0f4f8;--shadow:rgba(16,42,67,.12);--error-bg:#fde8e8;--error-text:#8a1c1c;--error-line:#f5b5b5}
@media (prefers-color-scheme:dark){:root{--bg:#10151c;--card:#1b222c;--text:#e4e9f0;--heading:#f0f4f8;
--label:#bcccdc;--muted:#9fb3c8;--faint:#7b8794;--line:#3e4c59;--accent:#4c9aff;--accent-hover:#6aacff;
--accent-text:#0b1118;--soft:#243040;--shadow:rgba(0,0,0,.4);--error-bg:#3b1c1c;--error-text:#ffb4b4;--error-line:#7a2e2e}}
*{box-sizing:border-box}
html{background:var(--bg)}
body{margin:0;min-height:100vh;display:flex;flex-direction:column;align-items:center;
font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--text)}
header{width:100%;padding:28px 16px 20px;text-align:center;color:var(--label);letter-spacing:.08em;
text-transform:uppercase;font-size:13px;font-weight:600}
header .realm{display:block;font-size:22px;letter-spacing:.02em;text-transform:none;color:var(--heading);margin-top:4px}
main{width:100%;max-width:400px;padding:0 16px 40px}
.card{background:var(--card);border-radius:10px;box-shadow:0 1px 3px var(--shadow),0 8px 24px var(--shadow);
padding:32px 32px 28px;border-top:4px solid var(--accent)}
h1{font-size:20px;font-weight:600;margin:0 0 6px;color:var(--heading)}
p.lead{margin:0 0 22px;color:var(--muted)}
label{display:block;font-size:13px;font-weight:600;margin:14px 0 6px;color:var(--label)}
input[type=text],input[type=password]{width:100%;height:42px;padding:0 12px;border:1px solid var(--line);
border-radius:6px;font-size:15px;background:var(--card);color:var(--heading)}
input[type=text]:focus,input[type=password]:focus{outline:none;border-color:var(--accent);box-shadow:0 0 0 3px color-mix(in srgb,var(--accent) 25%,transparent)}
button,.button{display:block;width:100%;height:42px;margin-top:22px;border:0;border-radius:6px;
background:var(--accent);color:var(--accent-text);font-size:15px;font-weight:600;cursor:pointer;text-align:center;text-decoration:none;line-height:42px}
button:hover,.button:hover{background:var(--accent-hover)}
button.secondary{background:transparent;color:var(--muted);margin-top:8px;font-weight:500}
button.secondary:hover{background:var(--soft)}
.alert{border-radius:6px;padding:10px 12px;margin:0 0 18px;font-size:14px}
.alert-error{background:var(--error-bg);color:var(--error-text);border:1px solid var(--error-line)}
.code{font:600 26px/1.2 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;letter-spacing:.12em;
text-align:center;padding:14px;background:var(--soft);border-radius:6px;margin:8px 0 4px}
.user-code input[name=user_code]{text-transform:uppercase;text-align:center;letter-spacing:.12em;font-family:ui-monospace,Menlo,Consolas,monospace}
.user-code input[name=user_code],#op\\.deviceInputForm input[type=text]{width:100%;height:42px;padding:0 12px;border:1px solid var(--line);border-radius:6px;font-size:18px}
dl{display:grid;grid-template-columns:auto 1fr;gap:4px 14px;margin:0;font-size:14px}
dt{color:var(--muted)}dd{margin:0;word-break:break-all}
footer{color:var(--faint);font-size:12px;margin-top:18px;text-align:center}
`

export interface PageOptions {
  readonly realm: string
  readonly title: string
  readonly body: string
}

/** A whole page; `body` must already be escaped HTML. */
export function page({ realm, title, body }: PageOptions): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${escapeHtml(title)} · ${escapeHtml(realm)}</title>
<style>${STYLE}</style>
</head>
<body>
<header>ssokit identity provider<span class="realm">${escapeHtml(realm)}</span></header>
<main>
<div class="card">
${body}
</div>
<footer>Development realm · not for production credentials</footer>
</main>
</body>
</html>
`
}

export interface LoginPageOptions {
  readonly realm: string
  readonly action: string
  readonly client: string
  readonly username?: string
  readonly error?: string
  /** Where "Sign in with Kerberos" leads, when the realm offers Kerberos. */
  readonly kerberos?: string
}

function errorAlert(error: string | undefined): string {
  return error === undefined
    ? ''
    : `<div class="alert alert-error" role="alert"><span id="kc-error-message">${escapeHtml(error)}</span></div>`
}

/** Keycloak's login form ids, so scripts and browser tests written for Keycloak drive it too. */
export function loginPage(o: LoginPageOptions): string {
  const error = errorAlert(o.error)
  // Keycloak lists identity providers below the form; CERN's Kerberos one has this id.
  const kerberos =
    o.kerberos === undefined
      ? ''
      : `\n<div id="kc-social-providers"><a id="social-kerberos" class="button" href="${escapeHtml(o.kerberos)}">Sign in with Kerberos</a></div>`
  return page({
    realm: o.realm,
    title: 'Sign in',
    body: `<h1 id="kc-page-title">Sign in to your account</h1>
<p class="lead">to continue to <strong>${escapeHtml(o.client)}</strong></p>
${error}<form id="kc-form-login" method="post" action="${escapeHtml(o.action)}" novalidate>
<label for="username">Username</label>
<input type="text" id="username" name="username" value="${escapeHtml(o.username ?? '')}" autocomplete="username" autocapitalize="none" spellcheck="false" autofocus required>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit" id="kc-login" name="login" value="login">Sign in</button>
</form>${kerberos}`,
  })
}

export interface OtpPageOptions {
  readonly realm: string
  readonly action: string
  readonly error?: string
}

/** Keycloak's one-time code form (`kc-otp-login-form`, field `otp`). */
export function otpPage(o: OtpPageOptions): string {
  return page({
    realm: o.realm,
    title: 'One-time code',
    body: `<h1 id="kc-page-title">Two-factor authentication</h1>
<p class="lead">Enter the one-time code from your authenticator app.</p>
${errorAlert(o.error)}<form id="kc-otp-login-form" method="post" action="${escapeHtml(o.action)}" novalidate>
<label for="otp">One-time code</label>
<input type="text" id="otp" name="otp" inputmode="numeric" autocomplete="one-time-code" autofocus required>
<button type="submit" id="kc-login" name="login" value="login">Sign in</button>
</form>`,
  })
}

export interface ConsentPageOptions {
  readonly realm: string
  readonly action: string
  readonly client: string
  /** What the client asks for: the scopes not granted yet. */
  readonly scopes: readonly string[]
}

/** Keycloak's consent page (`login-oauth-grant`): `#kc-oauth`, buttons `accept` and `cancel`. */
export function consentPage(o: ConsentPageOptions): string {
  const items = o.scopes.map((scope) => `<li>${escapeHtml(scope)}</li>`).join('')
  return page({
    realm: o.realm,
    title: 'Grant access',
    body: `<h1 id="kc-page-title">Grant access to ${escapeHtml(o.client)}</h1>
<div id="kc-oauth">
<p class="lead">Do you grant these access privileges?</p>
<ul>${items}</ul>
<form id="kc-oauth-form" method="post" action="${escapeHtml(o.action)}">
<button type="submit" id="kc-login" name="accept" value="yes">Yes</button>
<button type="submit" id="kc-cancel" name="cancel" value="no" class="secondary">No</button>
</form>
</div>`,
  })
}

export function messagePage(realm: string, title: string, message: string): string {
  return page({
    realm,
    title,
    body: `<h1>${escapeHtml(title)}</h1><p class="lead">${escapeHtml(message)}</p>`,
  })
}

export function errorPage(realm: string, error: string, description: string | undefined): string {
  return page({
    realm,
    title: 'Error',
    body: `<h1>We could not complete this request</h1>
<p class="lead" id="kc-error-message">${escapeHtml(description ?? 'The request is not valid.')}</p>
<dl><dt>error</dt><dd id="error-code">${escapeHtml(error)}</dd></dl>`,
  })
}

/** `form` is oidc-provider's own form markup (hidden xsrf field, escaped by it). */
export function deviceInputPage(realm: string, form: string, failed: boolean): string {
  const alert = failed
    ? '<div class="alert alert-error" role="alert"><span id="kc-error-message">That code is not valid or has expired. Try again.</span></div>'
    : ''
  return page({
    realm,
    title: 'Device login',
    body: `<h1>Device login</h1>
<p class="lead">Enter the code shown on your device.</p>
${alert}<div class="user-code">${form}</div>
<button type="submit" form="op.deviceInputForm" id="device-submit">Continue</button>`,
  })
}

export function deviceConfirmPage(
  realm: string,
  form: string,
  client: string,
  userCode: string,
): string {
  return page({
    realm,
    title: 'Confirm device',
    body: `<h1>Confirm device login</h1>
<p class="lead"><strong>${escapeHtml(client)}</strong> asks to sign in. Check that your device shows this code:</p>
<div class="code" id="user-code">${escapeHtml(userCode)}</div>
${form}
<button type="submit" form="op.deviceConfirmForm" id="device-confirm">Continue</button>
<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes" class="secondary">Cancel</button>`,
  })
}

export function logoutConfirmPage(realm: string, form: string): string {
  return page({
    realm,
    title: 'Sign out',
    body: `<h1>Sign out</h1>
<p class="lead">Do you want to sign out of ${escapeHtml(realm)}?</p>
${form}
<button type="submit" form="op.logoutForm" name="logout" value="yes" id="kc-logout">Sign out</button>`,
  })
}
