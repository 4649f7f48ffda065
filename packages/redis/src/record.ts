/**
 * How a session is kept in one Redis string. Version 2, written: a JSON header line
 * `{"v":2,"sub","sid"}`, a newline, then the session data as is, so a read parses the small
 * header and not the data twice. Version 1, still read (records written by earlier releases, and
 * by replicas of one still running during a rolling upgrade): one JSON object
 * `{"v":1,"sub","sid","data"}` holding the data as a string. JSON text never holds a raw
 * newline, which tells the two apart. `DELETE_IF_OWNED` reads both too.
 */
import type { StoredSession } from '@ssokit/core'

const LEGACY_FORMAT_VERSION = 1
const HEADER_FORMAT_VERSION = 2

interface Header {
  readonly v: number
  readonly sub: string
  readonly sid: string | null
}

interface LegacyRecord extends Header {
  readonly data: string
}

export function encodeSession(session: StoredSession): string {
  const header: Header = {
    v: HEADER_FORMAT_VERSION,
    sub: session.subject,
    sid: session.sid ?? null,
  }
  return `${JSON.stringify(header)}\n${session.data}`
}

function parse(text: string): Partial<LegacyRecord> | undefined {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return undefined
  }
  if (typeof value !== 'object' || value === null) return undefined
  return value
}

/** A record this version cannot read (corrupt, or written by a newer format) means "no session". */
export function decodeSession(raw: string | null): StoredSession | undefined {
  if (raw === null) return undefined
  const newline = raw.indexOf('\n')
  const r = parse(newline === -1 ? raw : raw.slice(0, newline))
  if (r === undefined || typeof r.sub !== 'string') return undefined
  if (r.sid !== null && typeof r.sid !== 'string') return undefined
  let data: string
  if (newline !== -1 && r.v === HEADER_FORMAT_VERSION) data = raw.slice(newline + 1)
  else if (newline === -1 && r.v === LEGACY_FORMAT_VERSION && typeof r.data === 'string')
    data = r.data
  else return undefined
  return { subject: r.sub, sid: r.sid ?? undefined, data }
}
