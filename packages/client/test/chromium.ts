/**
 * A real Chromium (Debian's, never a downloaded one) driven by playwright-core, for the steps a
 * person does in a browser during a login: the idp's device page and its login form, or a login
 * that ends at the client's loopback listener.
 */
import { chromium, type Browser, type Page } from 'playwright-core'

export const CHROMIUM = '/usr/bin/chromium'

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  })
}

/** A page in a fresh context (no cookies from an earlier login); closed with its context. */
export async function freshPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext()
  return context.newPage()
}

/** Signs in on the idp's login form if it is shown. */
async function signIn(page: Page, username: string, password: string): Promise<void> {
  await page.waitForSelector('#username')
  await page.fill('#username', username)
  await page.fill('#password', password)
  await page.click('#kc-login')
}

/**
 * Approves (or with `cancel`, refuses) a device login at `verificationUriComplete` as its user:
 * confirm the code, sign in. Resolves with the text of the page the idp ends on.
 */
export async function approveDeviceInChromium(
  browser: Browser,
  verificationUriComplete: string,
  user: { username: string; password: string; cancel?: boolean },
): Promise<string> {
  const page = await freshPage(browser)
  try {
    await page.goto(verificationUriComplete)
    await page.waitForSelector('#device-confirm')
    if (user.cancel === true) {
      await page.click('button[name=abort]')
    } else {
      await page.click('#device-confirm')
      await signIn(page, user.username, user.password)
    }
    await page.waitForSelector('h1')
    await page.waitForLoadState()
    return await page.innerText('body')
  } finally {
    await page.context().close()
  }
}

/**
 * Follows a browser login from `url` (the authorization request) through the idp's form to
 * wherever it redirects; resolves with the final page's URL and text.
 */
export async function browserSignIn(
  browser: Browser,
  url: string,
  user: { username: string; password: string },
): Promise<{ url: string; text: string }> {
  const page = await freshPage(browser)
  try {
    await page.goto(url)
    await signIn(page, user.username, user.password)
    await page.waitForURL((u) => u.hostname === '127.0.0.1' && u.pathname === '/callback')
    await page.waitForLoadState()
    return { url: page.url(), text: await page.innerText('body') }
  } finally {
    await page.context().close()
  }
}
