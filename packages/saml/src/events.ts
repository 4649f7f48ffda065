/** What the SAML side reports: refused messages and metadata problems, never XML or secrets. */

export type SamlRefusalReason =
  | 'body_too_large'
  | 'malformed'
  | 'doctype'
  | 'signature'
  | 'in_response_to'
  | 'unsolicited'
  | 'issuer'
  | 'audience'
  | 'destination'
  | 'recipient'
  | 'expired'
  | 'replay'
  | 'status'
  | 'no_subject'
  | 'invalid'

export interface SamlEvent {
  readonly type: 'saml_login_refused' | 'saml_logout_refused' | 'idp_metadata_unavailable'
  readonly reason: SamlRefusalReason | 'metadata'
  readonly message: string
}

export type SamlEventHandler = (event: SamlEvent) => void

/** A message refused by a check of this package, with the reason its event reports. */
export class SamlRefusal extends Error {
  override readonly name = 'SamlRefusal'
  readonly reason: SamlRefusalReason
  constructor(reason: SamlRefusalReason, message: string) {
    super(message)
    this.reason = reason
  }
}

export function defaultEventHandler(event: SamlEvent): void {
  process.stderr.write(`ssokit saml: ${event.message}\n`)
}

/** The reason behind a message the library refused, from its error text. */
export function reasonOf(error: unknown): SamlRefusalReason {
  const message = error instanceof Error ? error.message : ''
  if (/InResponseTo is missing/i.test(message)) return 'unsolicited'
  if (/InResponseTo/i.test(message)) return 'in_response_to'
  // A bearer confirmation past its NotOnOrAfter is "no valid subject confirmation".
  if (/no valid subject confirmation/i.test(message)) return 'expired'
  if (/signature|multiple assertions/i.test(message)) return 'signature'
  if (/audience/i.test(message)) return 'audience'
  if (/issuer/i.test(message)) return 'issuer'
  if (/NotOnOrAfter|NotBefore|expired|too old|not yet valid/i.test(message)) return 'expired'
  if (/status|SAML provider returned/i.test(message)) return 'status'
  return 'invalid'
}

/** A library or parser message made safe for a log line: one line, bounded, no markup. */
export function loggableMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return message.replace(/[\r\n\t<>]+/g, ' ').slice(0, 200)
}
