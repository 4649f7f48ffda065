/**
 * The cookie files `ssokit cookie` wrote, listed in the cache directory (`cookie-files.list`,
 * one absolute path a line) so that `ssokit status` can show them.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

import { cacheDirectory, readCookieFile } from '@ssokit/client'

const LIST = 'cookie-files.list'

async function listed(): Promise<string[]> {
  try {
    const text = await readFile(join(cacheDirectory(), LIST), 'utf8')
    return [...new Set(text.split('\n').filter((line) => line.startsWith('/')))]
  } catch {
    return []
  }
}

export async function rememberCookieFile(path: string): Promise<void> {
  const files = await listed()
  if (files.includes(path)) return
  const dir = cacheDirectory()
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const target = join(dir, LIST)
  const temporary = `${target}.${process.pid}.tmp`
  await writeFile(temporary, `${[...files, path].join('\n')}\n`, { mode: 0o600 })
  await rename(temporary, target)
}

export interface CookieFileStatus {
  readonly file: string
  readonly owner: string | undefined
  readonly cookies: number
  readonly domains: readonly string[]
  /** The earliest expiry among the cookies. */
  readonly expiresAt: Date | undefined
  readonly valid: boolean
}

/** The remembered files that still exist, with their cookies' expiry. */
export async function cookieFileStatus(now = Date.now()): Promise<CookieFileStatus[]> {
  const out: CookieFileStatus[] = []
  for (const file of await listed()) {
    let parsed
    let all
    try {
      parsed = await readCookieFile(file, 0)
      all = await parsed.jar.store.getAllCookies()
    } catch {
      continue
    }
    const expiries = all
      .map((c) => (c.expires instanceof Date ? c.expires.getTime() : Infinity))
      .filter((t) => Number.isFinite(t))
    const earliest = expiries.length === 0 ? undefined : Math.min(...expiries)
    out.push({
      file,
      owner: parsed.owner,
      cookies: all.length,
      domains: [...new Set(all.map((c) => c.domain ?? ''))].sort(),
      expiresAt: earliest === undefined ? undefined : new Date(earliest),
      valid: all.length > 0 && (earliest === undefined || earliest > now),
    })
  }
  return out
}
