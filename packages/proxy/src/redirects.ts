/**
 * Where a browser may be sent after sign-in when a front server names the page (`rd`, or
 * oauth2-proxy's `X-Auth-Request-Redirect`): a path, or an absolute URL on the public URL's
 * origin or on a configured domain. URLs are read with the WHATWG parser, hosts compared exactly
 * (a leading `.` allows subdomains, at a dot boundary only), ports compared too; anything else
 * falls back to `/`.
 */
import { safeReturnTo } from '@ssokit/core'

const MAX_LENGTH = 2048
// Whitespace, control characters, DEL, backslash or anything beyond ASCII: parsers strip or
// reinterpret them (`https:\\evil.example`, `/\t/evil.example`), so such a value is refused.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\x00-\x20\x7f-\uffff\\]/
const DEFAULT_PORTS: Readonly<Record<string, string>> = { 'http:': '80', 'https:': '443' }

/** Why an `allowedRedirectDomains` entry is refused, or `undefined` when it is valid. */
export function redirectDomainProblem(entry: string): string | undefined {
  const match = /^(\.?)([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(entry)
  if (match === null) {
    return 'is not a host name such as app.example.org, .example.org (with subdomains) or app.example.org:8443'
  }
  const host = match[2] ?? ''
  if (host.startsWith('.') || host.endsWith('.') || host.includes('..')) {
    return 'has an empty label'
  }
  if (match[3] !== undefined && (Number(match[3]) < 1 || Number(match[3]) > 65535)) {
    return 'has a port outside 1-65535'
  }
  return undefined
}

interface DomainRule {
  readonly host: string
  readonly subdomains: boolean
  /** `undefined`: the scheme's default port only. */
  readonly port: string | undefined
}

function parseRule(entry: string): DomainRule {
  const subdomains = entry.startsWith('.')
  const rest = subdomains ? entry.slice(1) : entry
  const colon = rest.lastIndexOf(':')
  return {
    host: (colon === -1 ? rest : rest.slice(0, colon)).toLowerCase(),
    subdomains,
    port: colon === -1 ? undefined : rest.slice(colon + 1),
  }
}

export class RedirectPolicy {
  readonly #public: URL
  readonly #rules: readonly DomainRule[]
  readonly #continuePath: string

  /** `domains` must each pass `redirectDomainProblem` (the configuration checks it). */
  constructor(publicUrl: string, domains: readonly string[], prefix: string) {
    this.#public = new URL(publicUrl)
    this.#rules = domains.map(parseRule)
    this.#continuePath = `${prefix}/continue`
  }

  /** The absolute URL `value` names when it is allowed, else `undefined`. */
  target(value: string | undefined): URL | undefined {
    if (value === undefined || value === '' || value.length > MAX_LENGTH || UNSAFE.test(value)) {
      return undefined
    }
    if (value.startsWith('/')) {
      const path = safeReturnTo(value)
      return path === '/' && value !== '/' ? undefined : new URL(path, this.#public)
    }
    // Exactly `scheme://` then a host: no `https:evil.example`, no `https:///evil.example`.
    if (!/^https?:\/\/[^/]/i.test(value)) return undefined
    let url: URL
    try {
      url = new URL(value)
    } catch {
      return undefined
    }
    if (url.username !== '' || url.password !== '') return undefined
    if (url.origin === this.#public.origin) return url
    // Another origin over http only when the proxy itself is served over http (development).
    if (url.protocol !== 'https:' && this.#public.protocol !== 'http:') return undefined
    const port = url.port === '' ? DEFAULT_PORTS[url.protocol] : url.port
    const host = url.hostname
    const allowed = this.#rules.some(
      (rule) =>
        (host === rule.host || (rule.subdomains && host.endsWith(`.${rule.host}`))) &&
        (rule.port ?? DEFAULT_PORTS[url.protocol]) === port,
    )
    return allowed ? url : undefined
  }

  /**
   * The `returnTo` of the sign-in flow for `value`: its path when it is on the public origin; for
   * an allowed other domain, this proxy's `continue` endpoint, which checks it again and sends
   * the browser on; `/` for anything refused.
   */
  returnTo(value: string | undefined): string {
    const url = this.target(value)
    if (url === undefined) return '/'
    if (url.origin === this.#public.origin)
      return safeReturnTo(url.pathname + url.search + url.hash)
    return `${this.#continuePath}?rd=${encodeURIComponent(url.href)}`
  }
}
