import type { Command } from './errors.js'

export interface CommandEntry {
  /** One line for `ssokit --help`. */
  readonly summary: string
  /** Loaded only when the command runs, so every command starts fast. */
  readonly load: () => Promise<{ readonly command: Command }>
}

/**
 * Every `ssokit` subcommand. To add one, write `commands/<name>.ts` exporting `command` and add
 * an entry here.
 */
export const COMMANDS: Readonly<Record<string, CommandEntry>> = {
  demo: {
    summary: 'Try SSO locally: a development provider and a protected web app in one command',
    load: () => import('./commands/demo.js'),
  },
  login: {
    summary: 'Log in to a client (device flow or browser) and keep the credential for ssokit token',
    load: () => import('./commands/login.js'),
  },
  token: {
    summary:
      'Print a valid access token (client credentials, or a cached login), renewed as needed',
    load: () => import('./commands/token.js'),
  },
  cookie: {
    summary: 'Sign in to a cookie-protected site with Kerberos and write a cookie file for curl -b',
    load: () => import('./commands/cookie.js'),
  },
  status: {
    summary: 'List the cached credentials: who, expiry, refreshable',
    load: () => import('./commands/status.js'),
  },
  logout: {
    summary: 'Revoke and delete cached credentials',
    load: () => import('./commands/logout.js'),
  },
  idp: {
    summary: 'Run a development OpenID provider shaped like a Keycloak realm (CERN SSO claims)',
    load: () => import('./commands/idp.js'),
  },
  proxy: {
    summary: 'Put single sign-on in front of any web application, handing it identity headers',
    load: () => import('./commands/proxy.js'),
  },
  completion: {
    summary: 'Print the shell completion script for bash, zsh or fish',
    load: () => import('./commands/completion.js'),
  },
}
