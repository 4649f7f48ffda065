/**
 * The one way tests start a real browser: Debian's Chromium driven by playwright-core (no
 * browser download). Always close what this returns in an `after` hook.
 */
import { access, constants } from 'node:fs/promises'
import { chromium, type Browser } from 'playwright-core'

export const CHROMIUM_PATH = '/usr/bin/chromium'

export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
]

/** `extraArgs` add to the defaults, e.g. `--host-resolver-rules` to give loopback servers names. */
export async function launchBrowser(extraArgs: readonly string[] = []): Promise<Browser> {
  try {
    await access(CHROMIUM_PATH, constants.X_OK)
  } catch {
    throw new Error(
      `Chromium is not installed at ${CHROMIUM_PATH}; install it with: apt-get install chromium`,
    )
  }
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS, ...extraArgs],
  })
}
