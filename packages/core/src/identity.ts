/** Who made a request, whichever way they proved it. */
export interface Identity {
  /** The `sub` claim: the stable key of this principal at its issuer. */
  readonly subject: string
  /**
   * For display, never a key (not unique, and it can change): `preferred_username`, else the
   * configured `usernameClaim` (default `cern_upn`), else `email`, else `sub`.
   */
  readonly username: string
  readonly email: string | undefined
  readonly name: string | undefined
  /** Roles from the configured source (`cern_roles`, `resource_access.<client>.roles`, `groups`, ...). */
  readonly roles: ReadonlySet<string>
  /** `service` for client-credentials tokens (`service-account-*` subjects), else `user`. */
  readonly kind: 'user' | 'service'
  /** How the request proved it: a bearer token or a browser session. */
  readonly via: 'bearer' | 'session'
  /** The verified claims, frozen. */
  readonly claims: Readonly<Record<string, unknown>>
}
