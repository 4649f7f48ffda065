/**
 * Where credentials live and whether they are written at all, from the environment:
 * `SSOKIT_HOME`, else tsgauth's `TSGAUTH_AUTHDIR`, else `$XDG_CONFIG_HOME/ssokit`, else
 * `~/.config/ssokit`; tsgauth's `TSGAUTH_FORCE_USE_AUTHFILE` and
 * `TSGAUTH_FORCE_DONT_USE_AUTHFILE` override what the code asked for.
 */
import { homedir } from 'node:os'
import { isAbsolute, join, resolve } from 'node:path'

import { SsoTypeError } from '@ssokit/core/errors'

export type Environment = Readonly<Record<string, string | undefined>>

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? join(homedir(), path.slice(1)) : path
}

/** The cache directory for this environment (it may not exist yet). */
export function cacheDirectory(env: Environment = process.env): string {
  const chosen = [env.SSOKIT_HOME, env.TSGAUTH_AUTHDIR].find(
    (value): value is string => value !== undefined && value !== '',
  )
  if (chosen !== undefined) return resolve(expandHome(chosen))
  const xdg = env.XDG_CONFIG_HOME
  // The XDG spec says a relative value is to be ignored.
  const base = xdg !== undefined && xdg !== '' && isAbsolute(xdg) ? xdg : join(homedir(), '.config')
  return join(base, 'ssokit')
}

function flag(env: Environment, name: string): boolean {
  const value = env[name]
  if (value === undefined || value === '') return false
  // tsgauth reads these with int(): 0 is off, any other integer on.
  if (!/^-?\d+$/.test(value.trim())) {
    throw new SsoTypeError(
      `${name} must be an integer (1 to turn it on), not ${JSON.stringify(value)}`,
    )
  }
  return Number(value) !== 0
}

/** Whether to use the disk cache: `requested` unless a tsgauth variable forces it. */
export function useDiskCache(requested: boolean, env: Environment = process.env): boolean {
  const forceOn = flag(env, 'TSGAUTH_FORCE_USE_AUTHFILE')
  const forceOff = flag(env, 'TSGAUTH_FORCE_DONT_USE_AUTHFILE')
  if (forceOn && forceOff) {
    throw new SsoTypeError(
      'TSGAUTH_FORCE_USE_AUTHFILE and TSGAUTH_FORCE_DONT_USE_AUTHFILE are both set: unset one',
    )
  }
  return forceOn ? true : forceOff ? false : requested
}
