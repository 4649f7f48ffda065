/**
 * The client's diagnostics on stderr, at the level of tsgauth's `TSGAUTH_LOGLEVEL` (default
 * ERROR, so nothing is printed ordinarily). Lines name what happened, never a token or secret.
 */
import { SsoTypeError } from '@ssokit/core/errors'

import type { Environment } from './cache/location.js'

export type LogLevel = 'debug' | 'info' | 'warning' | 'error'

const RANKS: Readonly<Record<string, number>> = {
  NOTSET: 0,
  DEBUG: 10,
  INFO: 20,
  WARNING: 30,
  ERROR: 40,
  CRITICAL: 50,
}

const LEVEL_RANK: Readonly<Record<LogLevel, number>> = {
  debug: 10,
  info: 20,
  warning: 30,
  error: 40,
}

export type Logger = (level: LogLevel, message: string) => void

/** A logger for `TSGAUTH_LOGLEVEL`; an unknown level is a `TypeError`, as in tsgauth. */
export function envLogger(
  env: Environment = process.env,
  write: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Logger {
  const raw = env.TSGAUTH_LOGLEVEL
  const rank = raw === undefined || raw === '' ? RANKS.ERROR : RANKS[raw.toUpperCase()]
  if (rank === undefined) {
    throw new SsoTypeError(
      `TSGAUTH_LOGLEVEL must be one of ${Object.keys(RANKS).join(', ')}, not ${JSON.stringify(raw)}`,
    )
  }
  return (level, message) => {
    if (LEVEL_RANK[level] >= rank) write(`ssokit ${level}: ${message}`)
  }
}
