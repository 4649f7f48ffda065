/**
 * The front servers whose `X-Forwarded-*`, `X-Original-*` and `Forwarded` headers are believed.
 * The list is empty unless configured: a header anyone can send proves nothing, so from a peer
 * not listed these headers are ignored (reverse proxy) or the request is refused (forward auth).
 */
import { BlockList, isIP } from 'node:net'

/** Why a `trustedProxies` entry is refused, or `undefined` when it is an address or CIDR range. */
export function trustedProxyProblem(entry: string): string | undefined {
  const slash = entry.indexOf('/')
  const address = slash === -1 ? entry : entry.slice(0, slash)
  const family = isIP(address)
  if (family === 0) return 'is not an IP address or a CIDR range such as 10.0.0.0/8 or ::1'
  if (slash === -1) return undefined
  const bits = entry.slice(slash + 1)
  const max = family === 4 ? 32 : 128
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) {
    return `has a CIDR prefix length that is not a number from 0 to ${max}`
  }
  return undefined
}

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack socket) is `10.0.0.1`. */
function normalise(address: string): string {
  const mapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)
  return mapped?.[1] ?? address
}

/** The `for=` node of one `Forwarded` element, without quotes, brackets or port. */
function forwardedFor(element: string): string | undefined {
  for (const pair of element.split(';')) {
    const eq = pair.indexOf('=')
    if (eq === -1 || pair.slice(0, eq).trim().toLowerCase() !== 'for') continue
    let node = pair
      .slice(eq + 1)
      .trim()
      .replace(/^"(.*)"$/, '$1')
    if (node.startsWith('[')) node = node.slice(1, node.indexOf(']'))
    else if (node.split(':').length === 2) node = node.slice(0, node.indexOf(':'))
    return node
  }
  return undefined
}

export class TrustedProxies {
  readonly #list = new BlockList()
  readonly size: number

  /** `entries` must each pass `trustedProxyProblem` (the configuration checks it). */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [address = '', bits] = entry.split('/')
      const type = isIP(address) === 6 ? 'ipv6' : 'ipv4'
      if (bits === undefined) this.#list.addAddress(address, type)
      else this.#list.addSubnet(address, Number(bits), type)
    }
    this.size = entries.length
  }

  /** Whether `address` (a TCP peer or a forwarded hop) is one of the trusted front servers. */
  trusts(address: string | undefined): boolean {
    if (address === undefined || this.size === 0) return false
    const plain = normalise(address)
    const family = isIP(plain)
    if (family === 0) return false
    return this.#list.check(plain, family === 6 ? 'ipv6' : 'ipv4')
  }

  /**
   * The client's address: the TCP peer, unless the peer is trusted; then the rightmost hop of
   * `X-Forwarded-For` (or `Forwarded: for=`) that is not itself trusted. Hops left of an
   * untrusted one are the client's own claims and never count.
   */
  clientAddress(peer: string | undefined, header: (name: string) => readonly string[]): string {
    const direct = normalise(peer ?? '')
    if (!this.trusts(direct)) return direct
    const xff = header('x-forwarded-for')
    const hops =
      xff.length > 0
        ? xff.flatMap((value) => value.split(',')).map((hop) => hop.trim())
        : header('forwarded')
            .flatMap((value) => value.split(','))
            .map((element) => forwardedFor(element) ?? '')
    let client = direct
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = normalise(hops[i] ?? '')
      if (isIP(hop) === 0) break
      client = hop
      if (!this.trusts(hop)) break
    }
    return client
  }
}
