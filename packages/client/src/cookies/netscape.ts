/**
 * Netscape cookie files, the format `curl -b`/`-c`, wget and Python's MozillaCookieJar read:
 * one cookie per line (domain, include-subdomains, path, secure, expiry, name, value), HttpOnly
 * cookies prefixed `#HttpOnly_`. ssokit's files also name whose login the cookies are
 * (`# ssokit-owner: alice@CERN.CH`), are written 0600 atomically, and are never written through
 * a symlink or over another user's file.
 */
import { lstat, readFile } from 'node:fs/promises'
import { userInfo } from 'node:os'

import { SsoError } from '@ssokit/core/errors'
import type { Cookie, CookieJar } from 'tough-cookie'

import { loadToughCookie, loadWriteFileAtomic } from '../lazy.js'

/** How long a cookie without an expiry is written as valid: a Keycloak session's usual 10 h. */
export const SESSION_COOKIE_LIFETIME_MS = 10 * 3600 * 1000

const HEADER = '# Netscape HTTP Cookie File'
const OWNER = '# ssokit-owner: '

export interface CookieFile {
  readonly jar: CookieJar
  /** The principal (or local user) whose login the cookies are, from the owner line. */
  readonly owner: string | undefined
}

function bool(text: string | undefined): boolean {
  return text?.toUpperCase() === 'TRUE'
}

/** Reads a cookie file into a jar; expired cookies are left out. */
export async function readCookieFile(path: string, now = Date.now()): Promise<CookieFile> {
  const text = await readFile(path, 'utf8')
  const { Cookie, CookieJar } = await loadToughCookie()
  const jar = new CookieJar()
  let owner: string | undefined
  for (const raw of text.split(/\r?\n/)) {
    let line = raw
    if (line.startsWith(OWNER)) {
      owner = line.slice(OWNER.length).trim() || undefined
      continue
    }
    let httpOnly = false
    if (line.startsWith('#HttpOnly_')) {
      httpOnly = true
      line = line.slice('#HttpOnly_'.length)
    } else if (line.startsWith('#') || line.trim() === '') continue
    const [domain, sub, path_, secure, expiry, name, ...rest] = line.split('\t')
    if (domain === undefined || name === undefined || path_ === undefined) continue
    const seconds = Number(expiry)
    const expires = Number.isFinite(seconds) && seconds > 0 ? new Date(seconds * 1000) : 'Infinity'
    if (expires !== 'Infinity' && expires.getTime() <= now) continue
    const includeSubdomains = bool(sub) || domain.startsWith('.')
    const cookie = new Cookie({
      key: name,
      value: rest.join('\t'),
      domain: domain.replace(/^\./, ''),
      path: path_,
      secure: bool(secure),
      httpOnly,
      hostOnly: !includeSubdomains,
      expires,
    })
    await jar.store.putCookie(cookie)
  }
  return { jar, owner }
}

export interface WriteCookieFileOptions {
  /** Whose login the cookies are; written on the owner line. */
  readonly owner: string | undefined
  /** Replace a file whose owner line names someone else. Default `false`. */
  readonly force?: boolean
  readonly now?: number
}

/** The owner line of an existing file, or `undefined` when there is no file. */
export async function cookieFileOwner(path: string): Promise<string | undefined | null> {
  try {
    return (await readCookieFile(path)).owner ?? null
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return undefined
    throw new SsoError('credential_cache_unsafe', `The cookie file ${path} cannot be read.`, {
      cause: error,
    })
  }
}

/** Refuses a path that is a symlink or another local user's file, and a file of another owner. */
export async function checkCookieFile(
  path: string,
  owner: string | undefined,
  force: boolean,
): Promise<void> {
  let info
  try {
    info = await lstat(path)
  } catch (error) {
    if ((error as { code?: unknown }).code === 'ENOENT') return
    throw new SsoError('credential_cache_unsafe', `The cookie file ${path} cannot be read.`, {
      cause: error,
    })
  }
  if (info.isSymbolicLink() || !info.isFile()) {
    throw new SsoError(
      'credential_cache_unsafe',
      `The cookie file ${path} is a symlink or not a regular file; it was not written.`,
    )
  }
  if (typeof process.getuid === 'function' && info.uid !== process.getuid()) {
    throw new SsoError(
      'credential_cache_unsafe',
      `The cookie file ${path} belongs to another local user; it was not written.`,
    )
  }
  if (force) return
  const existing = await cookieFileOwner(path)
  if (typeof existing === 'string' && owner !== undefined && existing !== owner) {
    throw new SsoError(
      'credential_cache_unsafe',
      `The cookie file ${path} holds the cookies of ${existing}, not ${owner}; give --force (force: true) to replace it.`,
    )
  }
}

function line(cookie: Cookie, now: number): string {
  const domain = cookie.domain ?? ''
  const includeSubdomains = cookie.hostOnly === false
  const expires =
    cookie.expires instanceof Date
      ? Math.floor(cookie.expires.getTime() / 1000)
      : Math.floor((now + SESSION_COOKIE_LIFETIME_MS) / 1000)
  return [
    `${cookie.httpOnly ? '#HttpOnly_' : ''}${includeSubdomains ? '.' : ''}${domain}`,
    includeSubdomains ? 'TRUE' : 'FALSE',
    cookie.path ?? '/',
    cookie.secure ? 'TRUE' : 'FALSE',
    String(expires),
    cookie.key,
    cookie.value,
  ].join('\t')
}

/** Writes every unexpired cookie of the jar, mode 0600, replacing the file atomically. */
export async function writeCookieFile(
  path: string,
  jar: CookieJar,
  options: WriteCookieFileOptions,
): Promise<void> {
  const now = options.now ?? Date.now()
  await checkCookieFile(path, options.owner, options.force ?? false)
  const cookies = (await jar.store.getAllCookies()).filter(
    (c) => !(c.expires instanceof Date) || c.expires.getTime() > now,
  )
  const lines = [
    HEADER,
    '# Written by ssokit cookie; curl -b this-file reads it. Keep it private: it signs you in.',
    `${OWNER}${options.owner ?? userInfo().username}`,
    '',
    ...cookies.map((c) => line(c, now)),
    '',
  ]
  try {
    const writeFileAtomic = await loadWriteFileAtomic()
    await writeFileAtomic(path, lines.join('\n'), { mode: 0o600, fsync: true })
  } catch (error) {
    throw new SsoError('credential_cache_unsafe', `The cookie file ${path} cannot be written.`, {
      cause: error,
    })
  }
}
