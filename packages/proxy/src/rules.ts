/**
 * Access rules: a path pattern of whole segments (`*` stands for exactly one segment) and what it
 * needs. A pattern covers its own path and everything below it, never a longer segment:
 * `/public` covers `/public` and `/public/x`, not `/publicity` nor `/admin/public`. There are no
 * regular expressions, so no pattern can be left unanchored.
 */
import { claimPathReader, SsoError, type Identity } from '@ssokit/core'
import { segmentsOf } from './paths.js'

/** A claim value a rule accepts: compared with `===`, so `"true"` never matches `true`. */
export type ClaimValue = string | number | boolean

export interface RuleSpec {
  /** `/public`, `/api/*\/status`, or `/` for every path. */
  readonly path: string
  /** No sign-in needed (and no identity sent upstream). Default `false`. */
  readonly public?: boolean
  /** Roles the user must hold, every one of them (403 otherwise). Default none. */
  readonly roles?: readonly string[]
  /**
   * Groups of which the user must hold at least one (403 otherwise). Groups are the identity's
   * roles, the list the groups header carries. Default none.
   */
  readonly groups?: readonly string[]
  /**
   * Claims the verified token must carry, by name or dotted path (`realm_access.roles`), each
   * with the value or one of the values accepted. A claim holding a list matches when any of its
   * entries is accepted. Every listed claim must match (403 otherwise). Default none.
   */
  readonly claims?: Readonly<Record<string, ClaimValue | readonly ClaimValue[]>>
}

interface ClaimCheck {
  readonly name: string
  readonly read: (claims: Readonly<Record<string, unknown>>) => unknown
  readonly accepted: readonly ClaimValue[]
}

export interface Decision {
  readonly public: boolean
  readonly roles: readonly string[]
  readonly groups: readonly string[]
  readonly claims: readonly ClaimCheck[]
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

const NONE: readonly never[] = Object.freeze([])
const AUTHENTICATED: Decision = Object.freeze({
  public: false,
  roles: NONE,
  groups: NONE,
  claims: NONE,
})

function acceptedValues(wanted: ClaimValue | readonly ClaimValue[]): readonly ClaimValue[] {
  // `Array.isArray` does not narrow a readonly array type, so the scalar case is tested instead.
  return typeof wanted === 'object' ? [...wanted] : [wanted]
}

function compileClaims(claims: RuleSpec['claims']): readonly ClaimCheck[] {
  return Object.freeze(
    Object.entries(claims ?? {}).map(([name, wanted]) =>
      Object.freeze({
        name,
        read: claimPathReader(name),
        accepted: Object.freeze(acceptedValues(wanted)),
      }),
    ),
  )
}

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
        groups: Object.freeze([...(spec.groups ?? [])]),
        claims: compileClaims(spec.claims),
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

function claimMatches(value: unknown, accepted: readonly ClaimValue[]): boolean {
  const one = (v: unknown) => accepted.some((a) => a === v)
  return Array.isArray(value) ? value.some(one) : one(value)
}

/** What a refused request lacked, from the rule alone: never one of the user's own claims. */
export type Requirement =
  | { readonly kind: 'roles'; readonly roles: readonly string[] }
  | { readonly kind: 'groups'; readonly groups: readonly string[] }
  | { readonly kind: 'claim'; readonly claim: string; readonly values: readonly ClaimValue[] }

/** `role_required` (403) with the requirement that was not met. */
export class AccessDenied extends SsoError {
  override readonly name = 'AccessDenied'
  constructor(
    readonly requirement: Requirement,
    message: string,
    options: { readonly claim?: string; readonly requiredRoles?: readonly string[] } = {},
  ) {
    super('role_required', message, options)
  }
}

/**
 * Throws `role_required` (403, an `AccessDenied` naming the unmet requirement) unless the
 * identity meets the decision: every role, at least one of the groups, and every claim. An
 * unauthenticated request never gets here (401 / sign-in).
 */
export function requireAccess(identity: Identity, decision: Decision): void {
  if (decision.roles.length > 0 && decision.roles.some((role) => !identity.roles.has(role))) {
    throw new AccessDenied(
      { kind: 'roles', roles: decision.roles },
      'A required role is missing.',
      {
        requiredRoles: decision.roles,
      },
    )
  }
  if (decision.groups.length > 0 && !decision.groups.some((g) => identity.roles.has(g))) {
    throw new AccessDenied(
      { kind: 'groups', groups: decision.groups },
      'A required group is missing.',
    )
  }
  for (const check of decision.claims) {
    if (!claimMatches(check.read(identity.claims), check.accepted)) {
      throw new AccessDenied(
        { kind: 'claim', claim: check.name, values: check.accepted },
        'A required claim is missing or has another value.',
        { claim: check.name },
      )
    }
  }
}
