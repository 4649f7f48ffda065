import { cacheDirectory, listCredentials, type CachedCredential } from '@ssokit/client'

import { cookieFileStatus, type CookieFileStatus } from '../cookie-files.js'
import { type Command } from '../errors.js'
import { flagOption, parseOptions } from '../options.js'

const help = `Usage: ssokit status [--json]

Lists the cached credentials: client, audience, who, expiry, and whether a refresh token is
held; then the cookie files ssokit cookie wrote: whose, how many cookies, the first expiry.
Exits 0 when every access token and cookie file is valid, 1 when one is expired (ssokit token
or ssokit cookie renews it).

Options:
  --json      Print a JSON array instead of the table
  -h, --help  Show this help

The cache is $SSOKIT_HOME, else TSGAUTH_AUTHDIR, else $XDG_CONFIG_HOME/ssokit or ~/.config/ssokit.

Examples:
  ssokit status
  ssokit status --json | jq '.[] | select(.valid | not)'`

function remaining(expiresAt: Date | undefined, now: number): string {
  if (expiresAt === undefined) return 'unknown'
  const seconds = Math.round((expiresAt.getTime() - now) / 1000)
  if (seconds <= 0) return 'expired'
  if (seconds < 120) return `in ${seconds}s`
  if (seconds < 7200) return `in ${Math.round(seconds / 60)}m`
  return `in ${Math.round(seconds / 3600)}h`
}

function table(rows: string[][]): string[] {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
  return rows.map((row) =>
    row
      .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  )
}

function asJson(entry: CachedCredential): Record<string, unknown> {
  return {
    file: entry.file,
    issuer: entry.issuer,
    client_id: entry.clientId,
    grant: entry.grant,
    audience: entry.audience ?? null,
    subject: entry.subject ?? null,
    username: entry.username ?? null,
    expires_at: entry.expiresAt?.toISOString() ?? null,
    valid: entry.valid,
    refreshable: entry.refreshable,
  }
}

function cookieJson(entry: CookieFileStatus): Record<string, unknown> {
  return {
    kind: 'cookies',
    file: entry.file,
    owner: entry.owner ?? null,
    cookies: entry.cookies,
    domains: entry.domains,
    expires_at: entry.expiresAt?.toISOString() ?? null,
    valid: entry.valid,
  }
}

const OPTIONS = { json: flagOption() }

export const command: Command = {
  help,
  options: OPTIONS,
  async run(args, { out }) {
    const values = parseOptions('status', args, OPTIONS)
    const entries = await listCredentials()
    const cookieFiles = await cookieFileStatus()
    const allValid = entries.every((entry) => entry.valid) && cookieFiles.every((f) => f.valid)
    if (values.json === true) {
      out(JSON.stringify([...entries.map(asJson), ...cookieFiles.map(cookieJson)], null, 2))
      return allValid ? 0 : 1
    }
    const now = Date.now()
    if (entries.length === 0) {
      out(`No cached credentials in ${cacheDirectory()}.`)
      printCookieFiles(cookieFiles, now, out)
      return allValid ? 0 : 1
    }
    const rows = [
      ['CLIENT', 'AUDIENCE', 'WHO', 'EXPIRES', 'VALID', 'REFRESHABLE', 'ISSUER'],
      ...entries.map((e) => [
        e.clientId,
        e.audience ?? '-',
        e.username ?? e.subject ?? '-',
        remaining(e.expiresAt, now),
        e.valid ? 'yes' : 'no',
        e.refreshable ? 'yes' : 'no',
        e.issuer,
      ]),
    ]
    for (const line of table(rows)) out(line)
    printCookieFiles(cookieFiles, now, out)
    return allValid ? 0 : 1
  },
}

function printCookieFiles(
  files: readonly CookieFileStatus[],
  now: number,
  out: (line: string) => void,
): void {
  if (files.length === 0) return
  out('')
  const rows = [
    ['COOKIE FILE', 'OWNER', 'COOKIES', 'EXPIRES', 'VALID', 'SITES'],
    ...files.map((f) => [
      f.file,
      f.owner ?? '-',
      String(f.cookies),
      remaining(f.expiresAt, now),
      f.valid ? 'yes' : 'no',
      f.domains.join(','),
    ]),
  ]
  for (const line of table(rows)) out(line)
}
