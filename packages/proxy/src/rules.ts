/**
 * Access rules: a path pattern of whole segments (`*` stands for exactly one segment) and what it
 * needs. A pattern covers its own path and everything below it, never a longer segment:
 * `/public` covers `/public` and `/public/x`, not `/publicity` nor `/admin/public`. There are no
 * regular expressions, so no pattern can be left unanchored.
 */
import { segmentsOf } from './paths.js'

export interface RuleSpec {
  /** `/public`, `/api/*\/status`, or `/` for every path. */
  readonly path: string
  /** No sign-in needed (and no identity sent upstream). Default `false`. */
  readonly public?: boolean
  /** Roles the user must hold, every one of them (403 otherwise). Default none. */
  readonly roles?: readonly string[]
}

export interface Decision {
  readonly public: boolean
  readonly roles: readonly string[]
}

interface CompiledRule extends Decision {
  readonly segments: readonly string[]
  readonly wildcards: number
  readonly order: number
}

const SEGMENT = /^[A-Za-z0-9\-._~!$&'()+,=:@]+$/

/** Why a rule's path pattern is refused, or `undefined` when it is valid. */
export function patternProblem(pattern: string): string | undefined {
  if (!pattern.startsWith('/')) return 'must start with "/"'
  if (pattern === '/') return undefined
  if (/[?#]/.test(pattern)) return 'is matched on the path only: remove the query or fragment'
  if (/[\^$\\()[\]{}|]/.test(pattern) || pattern.includes('.*')) {
    return 'is a path of whole segments ("*" for one segment), not a regular expression'
  }
  const segments = pattern.slice(1).split('/')
  for (const segment of segments) {
    if (segment === '') return 'has an empty segment (a doubled or trailing "/")'
    if (segment === '.' || segment === '..') return 'has a "." or ".." segment'
    if (segment !== '*' && !SEGMENT.test(segment)) {
      return `has a segment ${JSON.stringify(segment)} with characters a canonical path never holds`
    }
  }
  return undefined
}

const AUTHENTICATED: Decision = Object.freeze({ public: false, roles: Object.freeze([]) })

export class Rules {
  readonly #rules: readonly CompiledRule[]

  constructor(specs: readonly RuleSpec[]) {
    this.#rules = specs.map((spec, order) => {
      const segments = spec.path === '/' ? [] : spec.path.slice(1).split('/')
      return {
        segments,
        wildcards: segments.filter((s) => s === '*').length,
        order,
        public: spec.public === true,
        roles: Object.freeze([...(spec.roles ?? [])]),
      }
    })
  }

  /** What a canonical path needs: the most specific rule covering it, else sign-in only. */
  decide(path: string): Decision {
    const segments = segmentsOf(path)
    let best: CompiledRule | undefined
    for (const rule of this.#rules) {
      if (rule.segments.length > segments.length) continue
      if (!rule.segments.every((s, i) => s === '*' || s === segments[i])) continue
      if (
        best === undefined ||
        rule.segments.length > best.segments.length ||
        (rule.segments.length === best.segments.length && rule.wildcards < best.wildcards)
      ) {
        best = rule
      }
    }
    return best ?? AUTHENTICATED
  }
}
